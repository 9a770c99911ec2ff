"""WanAnimate's driving inputs checked together, before any model call: inputs that disagree are refused (or, for
frame rates, resampled and said so), never silently combined.

- NaN/infinite pixels in the character image or any driving video (as the InfiniteTalk path checks its inputs);
- driving videos of different lengths (the face would run at another speed than the pose, or stop early);
- a face video that is not square (the face crops are stretched and the expressions come out distorted);
- a person mask of another size than the background, a mask that is empty (the character can never appear) or
  full (nothing of the clip is kept);
- `resample_to_rate`: a face/background/mask video at another frame rate than the pose video is resampled to the
  pose video's rate (the command line, which knows each file's rate).
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import InputError, NonFiniteError

log = logging.getLogger(__name__)

LENGTH_TOLERANCE = 1  # frames: a one-frame difference is a rounding of the preprocessing's resampling
SQUARE_TOLERANCE = 0.02  # of the longer side: a few pixels off square are cropping noise
EMPTY_MASK = 1.0 / 255.0  # below half a grey level everywhere: no person at all
FULL_MASK = 1.0 - 1.0 / 255.0


def _tensor(frames):
    """The frames as a tensor when they are in memory (IMAGE batches, arrays); None for a lazy reader."""
    if isinstance(frames, torch.Tensor):
        return frames
    if isinstance(frames, np.ndarray):
        return torch.from_numpy(frames)
    return None


def check_finite_inputs(inputs: dict) -> None:
    """Refuse NaN/infinite pixels in any input given as floats (a broken node upstream, or an fp16 overflow)."""
    for name, frames in inputs.items():
        data = _tensor(frames)
        if data is None or not data.is_floating_point():
            continue
        if not bool(torch.isfinite(data).all()):
            count = int((~torch.isfinite(data)).sum())
            raise NonFiniteError(f"the {name} holds {count:,} NaN/infinite value(s): the node that made it failed "
                                 "(check it, or load the file again); the models are not the cause")


def check_lengths(videos: dict) -> None:
    lengths = {name: len(v) for name, v in videos.items() if v is not None}
    if max(lengths.values()) - min(lengths.values()) > LENGTH_TOLERANCE:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise InputError(f"the driving videos differ in length ({listed} frames): they must come from one clip, "
                         "frame for frame (a shorter face video would run at another speed or stop early). Make them "
                         "from the same clip at the same frame rate, or trim them to the same length")


def check_face_square(face) -> None:
    h, w = face.size
    if abs(h - w) > SQUARE_TOLERANCE * max(h, w):
        raise InputError(f"the face video is {w}x{h}, not square: the model takes square face crops and would see "
                         "this face stretched. Crop it square around the face (the Animate preprocess node and the "
                         "official preprocessing make 512x512 crops)")


def check_mask(mask, background) -> None:
    """The person mask: the background's size, and neither empty nor full."""
    if mask.size != background.size:
        raise InputError(f"the person mask is {mask.size[1]}x{mask.size[0]} but the background video is "
                         f"{background.size[1]}x{background.size[0]}: they must be the same size, made from the same "
                         "clip (the mask would land beside the person)")
    data = _tensor(mask.source.frames) if hasattr(mask.source, "frames") else None
    if data is None:
        return
    data = data.float()
    if data.numel() and data.max() > 1.5:  # uint8 frames
        data = data / 255.0
    if data.numel() and float(data.max()) <= EMPTY_MASK:
        raise InputError("the person mask is empty (black in every frame): the character would never appear. Connect "
                         "the mask of the person to replace (white = the person)")
    if data.numel() and float(data.min()) >= FULL_MASK:
        raise InputError("the person mask is full (white in every frame): nothing of the clip would be kept. Connect "
                         "the mask of the person only (white = the person), or animate without background and mask")


def check_driving_inputs(image, videos: dict) -> None:
    """Every check above on the character image and the driving videos (DrivingVideo objects)."""
    raw = {"character image": image}
    raw.update({f"{name} video": v.source.frames for name, v in videos.items()
                if v is not None and hasattr(v.source, "frames")})
    check_finite_inputs(raw)
    check_lengths(videos)
    check_face_square(videos["face"])
    if videos.get("mask") is not None:
        check_mask(videos["mask"], videos["background"])


def resample_to_rate(frames, fps: float, target_fps: float, name: str):
    """`frames` at `fps` shown at `target_fps`: each output frame is the input frame on screen at its time."""
    if fps <= 0 or target_fps <= 0 or abs(fps - target_fps) < 1e-3:
        return frames
    count = max(1, int(round(len(frames) * target_fps / fps)))
    # the frame on screen at each output frame's time (as a player shows it)
    index = torch.clamp(torch.floor(torch.arange(count, dtype=torch.float64) * (fps / target_fps) + 1e-6).long(),
                        max=len(frames) - 1)
    log.warning("WanAnimate: the %s video is at %g fps, the pose video at %g fps: resampled to %g fps (%d -> %d "
                "frames) so it keeps time with the pose", name, fps, target_fps, target_fps, len(frames), count)
    return frames[index]
