"""WanAnimate's inputs: the driving clip's pose / face / background / mask videos and the character image.

Any indexable of H×W×C frames works (a ComfyUI IMAGE batch [N, H, W, C] in 0..1, a uint8 array, a lazy
reader); frames are converted only when a clip needs them, so memory does not grow with the video's length.
Sizes follow the official preprocessing and loop: faces are resized to the model's face size without keeping
the aspect ratio (cv2.resize to 512×512), the other videos to the output size, and the character image is
letterboxed into the output size (`padding_resize`: scaled to fit, centred, black bars).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ..errors import InputError
from .conditioning import ReferenceFrames

log = logging.getLogger(__name__)

SIZE_MULTIPLE = 16  # the official working sizes are multiples of 16


class DrivingVideo:
    """One driving video (pose, face, background or mask), read frame by frame."""

    def __init__(self, frames, name: str):
        if frames is None or len(frames) == 0:
            raise InputError(f"the {name} video is empty: connect its frames (a Load Video output)")
        self.name = name
        if getattr(frames, "ndim", 4) == 3:  # a MASK batch [N, H, W]: one channel per frame
            frames = frames[..., None]
        self.source = ReferenceFrames(frames)

    def __len__(self) -> int:
        return len(self.source)

    @property
    def size(self) -> tuple[int, int]:
        return self.source.height, self.source.width

    def pixels(self, indices, height: int, width: int) -> torch.Tensor:
        """[3, len(indices), height, width] in [-1, 1], each frame resized (bilinear) to the size."""
        frames = [self.source.rgb(i) for i in indices]
        video = torch.stack(frames, dim=1)  # [3, T, H, W] 0..1
        if video.shape[2:] != (height, width):
            video = F.interpolate(video.transpose(0, 1), size=(height, width), mode="bilinear", align_corners=False,
                                  antialias=True).transpose(0, 1)
        return video.clamp(0, 1) * 2.0 - 1.0

    def mask(self, indices, height: int, width: int) -> torch.Tensor:
        """[len(indices), height, width] in 0..1 from the frames' first channel (white = the person)."""
        return (self.pixels(indices, height, width)[0] + 1.0) / 2.0


def output_size(pose: DrivingVideo, width: int = 0, height: int = 0) -> tuple[int, int]:
    """(height, width): the setting when given, else the pose video's size; floored to multiples of 16."""
    h, w = (height, width) if width > 0 and height > 0 else pose.size
    if (width > 0) != (height > 0):
        raise InputError("set both width and height, or neither (0 = the pose video's size)")
    h, w = h // SIZE_MULTIPLE * SIZE_MULTIPLE, w // SIZE_MULTIPLE * SIZE_MULTIPLE
    if h < SIZE_MULTIPLE or w < SIZE_MULTIPLE:
        raise InputError(f"output size {w}x{h} is too small: at least {SIZE_MULTIPLE}x{SIZE_MULTIPLE}")
    return h, w


def letterbox(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[3, H, W] 0..1 -> [3, height, width]: scaled to fit inside, centred, black bars (official padding_resize)."""
    _, h, w = image.shape
    out = image.new_zeros(3, height, width)
    if h / w > height / width:
        new_w = max(1, int(height / h * w))
        scaled = F.interpolate(image[None], size=(height, new_w), mode="bilinear", align_corners=False, antialias=True)
        left = int((width - new_w) / 2)
        out[:, :, left:left + new_w] = scaled[0]
    else:
        new_h = max(1, int(width / w * h))
        scaled = F.interpolate(image[None], size=(new_h, width), mode="bilinear", align_corners=False, antialias=True)
        top = int((height - new_h) / 2)
        out[:, top:top + new_h] = scaled[0]
    return out.clamp(0, 1)


def driving_length(videos: dict) -> int:
    """The number of driving frames: the shortest connected video's, with a warning when they disagree."""
    lengths = {name: len(v) for name, v in videos.items() if v is not None}
    shortest = min(lengths.values())
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        log.warning("WanAnimate: the driving videos differ in length (%s frames); using the shortest, %d frames",
                    listed, shortest)
    return shortest


def check_face_video(face: DrivingVideo, face_size: int) -> None:
    h, w = face.size
    if h != w:
        log.warning("WanAnimate: the face crops are %dx%d, not square; they are stretched to %dx%d as the official "
                    "preprocessing does (crop them square to keep the face's proportions)", w, h, face_size, face_size)
