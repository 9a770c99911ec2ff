"""The face video: a box around the face points (area x1.3, grown mostly upwards) cropped to 512x512."""
from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger("wanvideo")

FACE_SIZE = 512


def face_bbox(meta: dict, image_hw, scale: float = 1.3) -> tuple[int, int, int, int]:
    """(x1, x2, y1, y2) in pixels of the face crop, from the 68 face points of `meta` (scores not used).

    The box keeps its aspect ratio and grows to `scale` times its area; three quarters of the extra
    height go above the face (forehead), as in the official code (the later of its two definitions).
    """
    h, w = image_hw[:2]
    points = np.asarray(meta["keypoints_face"])[1:, :2] * (w, h)
    min_x, min_y = np.min(points, axis=0)
    max_x, max_y = np.max(points, axis=0)
    width, height = max_x - min_x, max_y - min_y
    area = width * height * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        new_w = np.sqrt(area * (width / height))
        new_h = np.sqrt(area * (height / width))
    dw = (new_w - width) / 2
    dh = (new_h - height) / 4
    box = (max(min_x - dw, 0), min(max_x + dw, w), max(min_y - 3 * dh, 0), min(max_y + dh, h))
    if not all(np.isfinite(v) for v in box):
        return (0, 0, 0, 0)
    return tuple(int(v) for v in box)


def _usable(box) -> bool:
    x1, x2, y1, y2 = box
    return x2 > x1 and y2 > y1


class FaceCropper:
    """Cuts face crops frame by frame; an empty face box (no face found) reuses the last good one."""

    def __init__(self, image_hw):
        self.image_hw = tuple(image_hw[:2])
        self.last_box = None
        self.fallbacks = 0

    def box(self, meta: dict) -> tuple[int, int, int, int]:
        box = face_bbox(meta, self.image_hw)
        if _usable(box):
            self.last_box = box
            return box
        self.fallbacks += 1
        if self.last_box is not None:
            return self.last_box
        # No face yet at all: the top-centre square of the frame, where a face usually is.
        h, w = self.image_hw
        side = min(h, w) // 2
        return ((w - side) // 2, (w - side) // 2 + side, 0, side)

    def __call__(self, frame: np.ndarray, meta: dict) -> np.ndarray:
        x1, x2, y1, y2 = self.box(meta)
        return cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2]), (FACE_SIZE, FACE_SIZE))


def face_crops(frames, metas: list[dict]) -> np.ndarray:
    """RGB uint8 frames + their metas -> uint8 [T,512,512,3] face crops (boxes from the first frame's size)."""
    frames = list(frames)
    if not frames:
        return np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    cropper = FaceCropper(np.asarray(frames[0]).shape)
    crops = np.stack([cropper(np.asarray(f), m) for f, m in zip(frames, metas, strict=False)])
    if cropper.fallbacks:
        log.warning("WanAnimate preprocess: no face found in %d of %d frames; those frames reuse the last "
                    "face box", cropper.fallbacks, len(frames))
    return crops
