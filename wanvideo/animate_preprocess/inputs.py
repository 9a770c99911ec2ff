"""Checks and conversions of what a user hands the preprocessing: frames, the character image, sizes."""
from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError

log = logging.getLogger("wanvideo")


def as_rgb_uint8(image, what: str) -> np.ndarray:
    """uint8 [H,W,3] RGB from uint8 or 0..1 float, grey, RGB or RGBA (alpha dropped, as cv2.imread does)."""
    if hasattr(image, "detach"):  # a torch tensor (ComfyUI IMAGE frame)
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f"{what} must be an image [height, width, 3] (got shape {tuple(array.shape)}).")
    if array.shape[0] < 16 or array.shape[1] < 16:
        raise InputError(f"{what} is {array.shape[1]}x{array.shape[0]} pixels; give at least 16x16.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{what} must be uint8 (0..255) or float (0..1), not {array.dtype}.")
        array = np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array[:, :, :3])


def character_rgb(image) -> np.ndarray:
    """The character image as RGB; an alpha channel is dropped (the official reader ignores it) and logged."""
    array = np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[2] == 4:
        log.info("WanAnimate preprocess: the character image's alpha channel is ignored (as the official "
                 "preprocessing reads it); cut the character out on the background you want first")
    return as_rgb_uint8(array, "The character image")


class FrameSource:
    """Random access to driving frames (a list, an array [T,H,W,C], a tensor or a lazy reader), one at a time."""

    def __init__(self, frames):
        if frames is None:
            raise InputError("No driving video frames were given.")
        self.frames = frames
        self.count = len(frames)
        if self.count == 0:
            raise InputError("The driving video has no frames; give a clip with at least one frame.")
        self.size = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        frame = as_rgb_uint8(self.frames[int(index)], f"Driving frame {index}")
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise InputError(f"Driving frame {index} is {frame.shape[1]}x{frame.shape[0]} but the first is "
                             f"{self.size[1]}x{self.size[0]}; all frames of a clip must have one size "
                             "(resize them, e.g. with an Upscale Image node).")
        return frame
