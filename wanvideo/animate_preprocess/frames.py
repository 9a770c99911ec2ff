"""Frame sampling and the official resizing helpers (driving-clip frame indices, area resize, letterbox)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import InputError


def frame_indices(frame_num: int, video_fps: float, fps: float = 30) -> np.ndarray:
    """Indices of the driving frames that make a clip at `fps` (the official nearest-frame sampling).

    `fps == -1` keeps the clip's own rate. The count is `int(frame_num / video_fps * fps)`, so a 25 fps clip
    of 17 frames gives 20 frames at 30 fps; indices are rounded half to even, as numpy does.
    """
    if frame_num <= 0:
        raise InputError("The driving video has no frames; give a clip with at least one frame.")
    if not video_fps or video_fps <= 0:
        raise InputError(f"The driving video's frame rate must be positive (got {video_fps}).")
    if fps == -1:
        fps = video_fps
    if fps <= 0:
        raise InputError(f"The output frame rate must be positive or -1 for the clip's own rate (got {fps}).")
    target_num = int(frame_num / video_fps * fps)
    times = np.arange(0, target_num) / fps
    return np.clip(np.round(times * video_fps).astype(np.int64), 0, frame_num - 1)


def area_size(width: int, height: int, area: int, divisor: int = 16) -> tuple[int, int]:
    """(width, height) of `resize_by_area`: the aspect ratio kept at `area` pixels, floored to `divisor`.

    The official size search fails on every call (its validity check is called with one argument too
    many), so its fallback is the rule in force; this is that rule.
    """
    new_h = math.sqrt(area / (width / height))
    new_w = area / new_h
    new_w, new_h = int((new_w // divisor) * divisor), int((new_h // divisor) * divisor)
    if new_w <= 0 or new_h <= 0:
        raise InputError(f"Resolution area {area} is too small for a {width}x{height} image "
                         f"(sides are multiples of {divisor}); raise the area.")
    return new_w, new_h


def padding_resize(image: np.ndarray, height: int, width: int, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """Fit `image` into `height` x `width` keeping its aspect ratio, centred on black (uint8 out)."""
    ori_h, ori_w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 1
    out = np.zeros((height, width, channels))
    if ori_h / ori_w > height / width:
        new_w = int(height / ori_h * ori_w)
        resized = cv2.resize(image, (new_w, height), interpolation=interpolation)
        pad = int((width - new_w) / 2)
        out[:, pad:pad + new_w, :] = resized.reshape(height, new_w, channels)
    else:
        new_h = int(width / ori_w * ori_h)
        resized = cv2.resize(image, (width, new_h), interpolation=interpolation)
        pad = int((height - new_h) / 2)
        out[pad:pad + new_h, :, :] = resized.reshape(new_h, width, channels)
    out = np.uint8(out)
    return out if image.ndim == 3 else out[:, :, 0]


def resize_by_area(image: np.ndarray, area: int, divisor: int = 16) -> np.ndarray:
    """Resize to about `area` pixels with sides divisible by `divisor` (the official `resize_by_area`)."""
    h, w = image.shape[:2]
    new_w, new_h = area_size(w, h, area, divisor)
    interpolation = cv2.INTER_AREA if new_w * new_h < w * h else cv2.INTER_LINEAR
    return padding_resize(image, new_h, new_w, interpolation=interpolation)
