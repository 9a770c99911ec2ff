"""Turning the loop's inputs (frames, text, CLIP features, audio) into checked model-ready tensors."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError, NonFiniteError
from .sizes import resize_and_crop_image

CLIP_TOKENS = 257


class ReferenceFrames:
    """The reference image (1 frame) or the source video (several) for dubbing.

    `frames` is anything indexable of H×W×C images: a ComfyUI IMAGE tensor [N, H, W, C] in 0..1,
    a uint8 numpy array, or a list of either. Frames are converted one at a time, when needed.
    """

    def __init__(self, frames):
        if isinstance(frames, (torch.Tensor, np.ndarray)) and frames.ndim == 3:
            frames = frames[None]
        if frames is None or len(frames) == 0:
            raise InputError("no image: connect the reference image (or the source video frames for dubbing)")
        self.frames = frames
        first = self._raw(0)
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def is_video(self) -> bool:
        return len(self.frames) > 1

    def _raw(self, index: int):
        frame = self.frames[index]
        if frame.ndim == 2:
            frame = frame[..., None]
        if frame.ndim != 3 or frame.shape[-1] not in (1, 3, 4):
            raise InputError(f"image frames must be [height, width, channels] with 1, 3 or 4 channels, "
                             f"got shape {tuple(frame.shape)}")
        return frame

    def rgb(self, index: int) -> torch.Tensor:
        """[3, H, W] float32 in 0..1 (alpha dropped, grey expanded)."""
        frame = self._raw(min(index, len(self) - 1))
        if isinstance(frame, np.ndarray):
            tensor = torch.from_numpy(np.ascontiguousarray(frame))
        else:
            tensor = frame.detach().cpu()
        if tensor.dtype == torch.uint8:
            tensor = tensor.float() / 255.0
        tensor = tensor.float()
        if (tensor.shape[0], tensor.shape[1]) != (self.height, self.width):
            raise InputError(f"source video frames differ in size: frame {index} is {tuple(tensor.shape[:2])}, "
                             f"frame 0 is {(self.height, self.width)}")
        tensor = tensor[..., :3] if tensor.shape[-1] >= 3 else tensor.expand(-1, -1, 3)
        return tensor.permute(2, 0, 1).clamp(0.0, 1.0).contiguous()

    def conditioning(self, index: int, height: int, width: int) -> torch.Tensor:
        """[3, 1, height, width] in [-1, 1]: the frame resized to cover and centre-cropped."""
        image = resize_and_crop_image(self.rgb(index), height, width)
        return (image * 2.0 - 1.0)[:, None]


def prepare_context(context, text_dim: int, text_len: int, name: str) -> torch.Tensor:
    """[1, L, text_dim] text embeddings (None = empty prompt), cut to the model's text length."""
    if context is None:
        # The model zero-pads the context to text_len, so one zero row is exactly an all-padding prompt.
        return torch.zeros(1, 1, text_dim)
    context = torch.as_tensor(context).float()
    if context.ndim == 2:
        context = context[None]
    if context.ndim != 3 or context.shape[0] != 1:
        raise InputError(f"{name} text embeddings must be [1, tokens, {text_dim}], got {tuple(context.shape)}")
    if context.shape[-1] != text_dim:
        raise InputError(f"{name} text embeddings have {context.shape[-1]} features, the model expects {text_dim}: "
                         "encode the prompt with the umt5-xxl text encoder Wan 2.1 uses")
    if context.shape[1] == 0:
        return torch.zeros(1, 1, text_dim)
    return context[:, :text_len]


def same_context(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when two contexts are equal once zero-padded to a common length (what the model sees)."""
    n = max(a.shape[1], b.shape[1])

    def pad(t):
        return torch.cat([t, t.new_zeros(1, n - t.shape[1], t.shape[2])], 1)

    return torch.equal(pad(a), pad(b))


def prepare_clip(clip_fea, clip_dim: int, frames: int) -> torch.Tensor:
    """[N, 257, clip_dim] CLIP image tokens: one row for all windows, or one per source frame."""
    if clip_fea is None:
        raise InputError("no CLIP vision features: connect clip_vision_output (CLIP Vision Encode of the image "
                         "with clip_vision_h)")
    clip_fea = torch.as_tensor(clip_fea).float()
    if clip_fea.ndim == 2:
        clip_fea = clip_fea[None]
    if clip_fea.ndim != 3 or clip_fea.shape[1] != CLIP_TOKENS or clip_fea.shape[2] != clip_dim:
        raise InputError(f"CLIP vision features must be [N, {CLIP_TOKENS}, {clip_dim}] (penultimate hidden states "
                         f"of clip_vision_h), got {tuple(clip_fea.shape)}")
    if clip_fea.shape[0] not in (1, frames):
        raise InputError(f"CLIP vision features hold {clip_fea.shape[0]} images: give one (used for every window) "
                         f"or one per source frame ({frames})")
    return clip_fea


def check_audio(audio, config: dict) -> None:
    """Clear errors when the audio embeddings cannot drive this model."""
    if audio is None:
        return
    if not config.get("audio_adapter", True):
        raise InputError("this model has no InfiniteTalk audio weights (plain Wan 2.1 I2V): load the InfiniteTalk "
                         "model, or disconnect the audio embeddings for plain image-to-video")
    speakers = audio.speakers
    if not speakers or speakers[0].shape[0] == 0:
        raise InputError("the audio embeddings are empty (no frames): check the audio input")
    if len(speakers) > 2:
        raise InputError(f"InfiniteTalk handles one or two speakers, the embeddings have {len(speakers)}")
    layers, channels = config.get("audio_layers"), config.get("audio_channels")
    for i, emb in enumerate(speakers):
        if emb.ndim != 3:
            raise InputError(f"speaker {i + 1} embeddings must be [frames, layers, channels], got {tuple(emb.shape)}")
        if emb.shape[0] != speakers[0].shape[0]:
            raise InputError("the speakers' embeddings differ in length; build them with the audio embeds node")
        if emb.is_floating_point() and not bool(torch.isfinite(emb).all()):
            raise NonFiniteError(f"speaker {i + 1}'s audio embeddings hold NaN/infinite values: the wav2vec2 model "
                                 "that made them is damaged or overflowed in fp16; rebuild them with fp32")
        if layers is not None and (emb.shape[1], emb.shape[2]) != (layers, channels):
            raise InputError(f"audio embeddings have {emb.shape[1]} layers x {emb.shape[2]} channels, the model "
                             f"expects {layers} x {channels}: use the wav2vec2 model InfiniteTalk was trained with "
                             "(chinese-wav2vec2-base)")
