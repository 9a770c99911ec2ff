"""LongCat-Video-Avatar 1.5 on the one window loop: the official long-video demo (segment 1 image+audio to video,
then continuations) as a runner for `run_windows`, so it gets the frame store, resume, Cancel and progress.

Segment k makes `num_frames` (93) frames starting at output frame 80k. Segment 1 denoises with the image latent as
its clean first latent. Each later segment VAE-encodes the last `num_cond_frames` (13) frames the previous one
decoded (as 8-bit frames, as the official demo hands PIL images on) into its condition latents, prepends the
image latent as the reference, fills the model's key/value cache with them and denoises the rest
(sampling/longcat_sample.py); its first 13 frames repeat the previous segment's and are dropped.

Differences, on purpose: exactly the speech's frame count comes out (the official demo makes whole segments);
each segment's noise comes from its own generator (`window_noise`), so a resumed run equals an uninterrupted one
(the official demo draws all noise from one CUDA generator); optional colour correction (off by default).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..audio.longcat_embeds import LongCatAudio, speaker_windows
from ..errors import InputError, NonFiniteError
from ..options import LongCatSettings
from ..video.frame_store import FrameStore
from .color import match_and_blend_colors
from .conditioning import ReferenceFrames
from .denoise import window_noise
from .fingerprint import Digest, module_fingerprint
from .longcat_sample import longcat_sample
from .longcat_sizes import longcat_size
from .loop import run_windows
from .settings import GenerationInterrupted, Progress
from .vae import LATENT_CHANNELS, SPATIAL_STRIDE, TEMPORAL_STRIDE
from .windows import Window

log = logging.getLogger(__name__)

STORE_FORMAT_REVISION = 1  # bump when this loop's numbers change, so old stores are not resumed
CARRY = "cond_frames"  # the last decoded frames a segment hands to the next (uint8, kept in the store)
DEFAULT_FACE_SCALE = 0.1  # the official multi-speaker demo's default masks


def default_longcat_masks(src_h: int, src_w: int, face_scale: float = DEFAULT_FACE_SCALE) -> torch.Tensor:
    """[3, H, W]: speaker 1 (left half), speaker 2 (right half) with a `face_scale` margin, background = neither."""
    masks = torch.zeros(3, src_h, src_w)
    top, bottom = int(src_h * face_scale), int(src_h * (1 - face_scale))
    half = src_w // 2
    masks[0, top:bottom, int(half * face_scale):int(half * (1 - face_scale))] = 1
    masks[1, top:bottom, int(half * face_scale + half):int(half * (1 - face_scale) + half)] = 1
    masks[2] = ((masks[0] + masks[1]) == 0).float()
    return masks


def speaker_masks_from(masks, src_h: int, src_w: int) -> torch.Tensor:
    """[3, H, W] from two user masks [H, W] (speaker 1, speaker 2): background = neither."""
    m = [torch.as_tensor(x).float().reshape(x.shape[-2], x.shape[-1]) for x in masks]
    if len(m) != 2 or m[0].shape != m[1].shape:
        raise InputError("two speakers need two masks of the same size (speaker 1, speaker 2), or none for the "
                         "default left / right halves")
    if tuple(m[0].shape) != (src_h, src_w):
        raise InputError(f"the speaker masks are {tuple(m[0].shape)}, the image is {(src_h, src_w)}: draw them on the "
                         "image itself")
    one, two = (m[0] > 0).float(), (m[1] > 0).float()
    return torch.stack([one, two, ((one + two) == 0).float()])


@dataclass
class LongCatRunPlan:
    reference: torch.Tensor  # [3, 1, H, W] in [-1, 1], the image as the model sees it
    windows: list
    total: int
    height: int
    width: int
    texts: tuple  # ((embeds [1,1,L,C], mask [1,L]), (negative embeds, mask))
    masks: torch.Tensor | None  # [3, H_src, W_src] with two speakers

    @property
    def lat_shape(self) -> tuple:
        return self.height // SPATIAL_STRIDE, self.width // SPATIAL_STRIDE


def segment_windows(total: int, num_frames: int, num_cond_frames: int) -> list[Window]:
    """Official segments (start 80k, 93 frames, first 13 dropped after the first) until `total` frames are made."""
    step = num_frames - num_cond_frames
    windows = [Window(0, 0, num_frames, 0, min(num_frames, total), 1)]
    while windows[-1].end < total:
        k = len(windows)
        start = k * step
        keep = min(step, total - (start + num_cond_frames))
        windows.append(Window(k, start, num_frames, num_cond_frames, keep, num_cond_frames))
    return windows


def _text(embeds, mask, caption_dim: int, name: str):
    """([1, 1, L, C], [1, L] int64): text embeddings as the model takes them; None = one zero token."""
    if embeds is None:
        return torch.zeros(1, 1, 1, caption_dim), torch.ones(1, 1, dtype=torch.int64)
    embeds = torch.as_tensor(embeds).float()
    while embeds.dim() < 4:
        embeds = embeds[None]
    if embeds.shape[0] != 1 or embeds.shape[1] != 1 or embeds.shape[-1] != caption_dim:
        raise InputError(f"{name} text embeddings must be [1, L, {caption_dim}] (UMT5-XXL for LongCat), got "
                         f"{tuple(embeds.shape)}")
    length = embeds.shape[2]
    mask = torch.ones(1, length, dtype=torch.int64) if mask is None else torch.as_tensor(mask).reshape(1, length).long()
    return embeds, mask


def plan_longcat(model, image, audio: LongCatAudio, context, context_null, speaker_masks, s: LongCatSettings,
                 context_mask=None, context_null_mask=None) -> LongCatRunPlan:
    """Check the inputs against the model and decide size, segments and text."""
    config = dict(getattr(model, "config", {}) or {})
    if config.get("model_type") != "longcat_avatar":
        raise InputError("this is not a LongCat-Video-Avatar model: load it with the LongCat model loader")
    if not isinstance(audio, LongCatAudio):
        raise InputError("connect LongCat audio embeddings (Whisper features from the LongCat audio node)")
    channels = audio.speakers[0].shape[-1]
    if audio.speakers[0].shape[1] != config["audio_block"] or channels != config["audio_channel"]:
        raise InputError(f"the audio features are {audio.speakers[0].shape[1]} x {channels}, the model takes "
                         f"{config['audio_block']} x {config['audio_channel']}: use Whisper-large-v3 (LongCat 1.5)")
    source = ReferenceFrames(image)
    total = audio.num_frames if s.max_frames == 0 else min(audio.num_frames, s.max_frames)
    if s.width and s.height:
        height, width = s.height, s.width
    else:
        height, width = longcat_size(source.height, source.width, s.resolution)
    masks = None
    if audio.num_speakers >= 2:
        masks = (default_longcat_masks(source.height, source.width) if speaker_masks is None
                 else speaker_masks_from(speaker_masks, source.height, source.width))
    caption = int(config["caption_channels"])
    texts = (_text(context, context_mask, caption, "positive"), _text(context_null, context_null_mask, caption,
                                                                      "negative"))
    return LongCatRunPlan(source.conditioning(0, height, width), segment_windows(total, s.num_frames,
                          s.num_cond_frames), total, height, width, texts, masks)


def _uint8(video: torch.Tensor) -> np.ndarray:
    """[3, n, H, W] in [-1, 1] -> [n, H, W, 3] uint8, truncated as the official postprocess (x*255 to uint8)."""
    pixels = ((video.float() / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).contiguous().cpu().numpy()


class LongCatSegmentRunner:
    """Conditions, samples, decodes and stores one segment (the LongCat body of the window loop)."""

    carry_name = CARRY
    unit = "segment"

    def __init__(self, model, vae, plan: LongCatRunPlan, audio: LongCatAudio, s: LongCatSettings,
                 store: FrameStore, on_progress=None, should_stop=None, prepare_model=None):
        self.model, self.vae, self.plan, self.audio, self.s, self.store = model, vae, plan, audio, s, store
        self.on_progress, self.should_stop, self.prepare_model = on_progress, should_stop, prepare_model
        self.device = torch.device(getattr(model, "main_device", None) or next(model.parameters()).device)
        self.resumed = store.finished_windows
        self._image_latent = None

    def report(self, window: Window, step: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(window.index + 1, len(self.plan.windows), step, self.s.steps, self.resumed,
                                      unit=self.unit))

    def image_latent(self) -> torch.Tensor:
        """[1, 16, 1, h, w]: the image's latent: segment 1's clean first latent and every continuation's reference."""
        if self._image_latent is None:
            self._image_latent = self.vae.encode(self.plan.reference).float()[None].to(self.device)
        return self._image_latent

    def _step(self, window: Window):
        def callback(step, total):
            self.report(window, step)
            if self.should_stop is not None and self.should_stop():
                raise GenerationInterrupted(f"stopped after step {step}/{total}")
        return callback

    def run(self, window: Window, cond_frames):
        """Sample, decode and store one segment; returns the next segment's condition frames."""
        plan, s = self.plan, self.s
        started = time.perf_counter()
        self.report(window, 0)
        lat_h, lat_w = plan.lat_shape
        shape = (LATENT_CHANNELS, 1 + (s.num_frames - 1) // TEMPORAL_STRIDE, lat_h, lat_w)
        if window.index == 0:
            mode, cond = "ai2v", self.image_latent()
        else:
            if cond_frames is None:
                raise InputError(f"cannot continue at segment {window.index + 1}: the previous segment's frames are "
                                 f"missing from {self.store.path}; delete that folder to start again")
            pixels = cond_frames.to(torch.float32).permute(3, 0, 1, 2) / 255.0 * 2.0 - 1.0
            mode, cond = "avc", self.vae.encode(pixels).float()[None].to(self.device)
        audio = speaker_windows(self.audio, window.index, s.num_frames, s.num_cond_frames).to(self.device)
        masks = plan.masks.to(self.device) if plan.masks is not None else None
        (pos, pos_mask), (neg, neg_mask) = ((e.to(self.device), m.to(self.device)) for e, m in plan.texts)
        if self.prepare_model is not None:
            self.prepare_model((1, *shape))
        noise = window_noise(s.seed, window.index, shape, self.device)[None]
        latents = longcat_sample(
            self.model, mode, noise, cond, pos, pos_mask, neg, neg_mask, audio, s.steps, s.use_distill, s.text_cfg,
            s.audio_cfg, s.shift, ref_target_masks=masks, ref_latent=self.image_latent() if mode == "avc" else None,
            ref_img_index=s.ref_img_index, mask_frame_range=s.mask_frame_range, num_cond_frames=s.num_cond_frames,
            enhance_hf=s.enhance_hf, callback=self._step(window))
        with torch.no_grad():
            video = self.vae.decode(latents[0])
        del latents
        if not bool(torch.isfinite(video).all()):
            raise NonFiniteError("the VAE decoded NaN/infinite pixels: the VAE file is damaged or overflowed in fp16")
        if s.color_correction > 0:
            video = match_and_blend_colors(video, plan.reference[:, 0].to(video.device), s.color_correction)
        frames = _uint8(video)
        del video
        last = window.index == len(plan.windows) - 1
        carry = None if last else torch.from_numpy(frames[-s.num_cond_frames:].copy())
        self.store.write_window(window.index, frames[window.drop:window.drop + window.keep],
                                {CARRY: carry} if carry is not None else None)
        log.info("LongCat: segment %d/%d done in %.1f s (%d/%d frames)", window.index + 1, len(plan.windows),
                 time.perf_counter() - started, len(self.store), plan.total)
        return carry


def _run_key(model, vae, plan: LongCatRunPlan, audio: LongCatAudio, s: LongCatSettings) -> str:
    """Digest of everything that decides the frames; equal digests mean a rerun may resume the store."""
    d = Digest()
    d.add("kind", "longcat-avatar")
    d.add("revision", STORE_FORMAT_REVISION)
    d.add("settings", {k: v for k, v in vars(s).items()})
    d.add("size", [plan.total, plan.height, plan.width])
    d.add("model_config", {k: v for k, v in (getattr(model, "config", {}) or {}).items()})
    d.add("model_dtype", str(getattr(model, "dtype", "")))
    d.add("model_weights", module_fingerprint(model) if isinstance(model, torch.nn.Module) else repr(model))
    d.add("vae", vae.fingerprint() if hasattr(vae, "fingerprint") else repr(vae))
    d.add("reference", plan.reference)
    d.add("audio", [audio.fps, audio.num_speakers, audio.num_frames])
    d.add("audio_speakers", list(audio.speakers))
    for embeds, mask in plan.texts:
        d.add("text", embeds)
        d.add("text_mask", mask)
    d.add("masks", plan.masks)
    return d.hexdigest()[:32]


def generate_longcat(
    model,
    vae,
    image,
    audio: LongCatAudio,
    *,
    context=None,
    context_null=None,
    context_mask=None,
    context_null_mask=None,
    speaker_masks=None,
    settings: LongCatSettings | None = None,
    store_root: str,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_window_done: Callable[[int, FrameStore], None] | None = None,
    prepare_model: Callable[[tuple], None] | None = None,
    lock_wait: float = 0.0,
) -> FrameStore:
    """The whole talking video into a FrameStore under `store_root` (resuming a matching unfinished one).

    image: the portrait (IMAGE [1, H, W, C] in 0..1 or uint8 [H, W, C]); audio: `longcat_audio_embeds(...)`;
    context / context_null: UMT5 text embeddings [1, L, C] (None = one zero token), their masks [1, L] optional
    (all tokens valid); speaker_masks: two [H, W] masks for two speakers (None: the official default halves).
    """
    s = (settings or LongCatSettings()).validated()
    plan = plan_longcat(model, image, audio, context, context_null, speaker_masks, s, context_mask, context_null_mask)
    store = FrameStore.open_for_run(
        store_root, _run_key(model, vae, plan, audio, s), width=plan.width, height=plan.height, fps=audio.fps,
        total_frames=plan.total, num_windows=len(plan.windows),
        info=dict(mode="longcat-avatar", settings=vars(s), speakers=audio.num_speakers), lock_wait=lock_wait)
    if store.complete:
        log.info("LongCat: all %d segments of this run are already on disk (%s)", len(plan.windows), store.path)
        store.release()
        return store
    if store.finished_windows and store.windows_to_make():
        log.info("LongCat: resuming at segment %d/%d (%d frames on disk in %s)", store.windows_to_make()[0] + 1,
                 len(plan.windows), len(store), store.path)
    try:
        runner = LongCatSegmentRunner(model, vae, plan, audio, s, store, on_progress, should_stop, prepare_model)
        run_windows(runner, plan.windows, store, on_window_done)
        store.mark_complete()
    finally:
        store.release()
    return store


__all__ = ["LongCatRunPlan", "LongCatSegmentRunner", "generate_longcat", "plan_longcat", "segment_windows"]
