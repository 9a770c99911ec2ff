"""Face boxes per frame for face-only dubbing (`face_only`), without a model file.

The face is found as the largest skin-coloured region of each frame (the classic YCrCb skin range of Chai & Ngan:
Cr 133-173, Cb 77-127), on a small copy of the frame; frames where none is found take the nearest frame's box, and
the boxes are smoothed over time (a moving median) so the mask does not jitter. This is a heuristic: it expects one
visible, lit face that is the largest skin-coloured area (hands or bare shoulders larger than the face, or several
people, mislead it). Where it does not fit, draw the mask and give it as `edit_mask`; the WanAnimate
preprocessing's detector-based face box can replace `locate_face` without changing anything else.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

CR_RANGE, CB_RANGE = (133.0, 173.0), (77.0, 127.0)
_SEARCH_SIDE = 96  # the long side of the copy the skin region is searched on
_MIN_AREA = 0.004  # a face smaller than this share of the frame is not a face (noise, a hand far away)
_SMOOTH_FRAMES = 5


def skin_mask(rgb: torch.Tensor) -> torch.Tensor:
    """[3, H, W] float 0..1 -> [H, W] bool: pixels in the YCrCb skin range."""
    r, g, b = (rgb * 255.0).unbind(0)
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    return (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1])


def _largest_region(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) exclusive of the largest 4-connected True region of a small bool grid."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    best, best_box = 0, None
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack, count = [(y0, x0)], 0
        seen[y0, x0] = True
        top, left, bottom, right = y0, x0, y0, x0
        while stack:
            y, x = stack.pop()
            count += 1
            top, bottom, left, right = min(top, y), max(bottom, y), min(left, x), max(right, x)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if count > best:
            best, best_box = count, (int(top), int(left), int(bottom) + 1, int(right) + 1)
    if best < _MIN_AREA * h * w:
        return None
    return best_box


def locate_face(rgb: torch.Tensor) -> tuple[float, float, float, float] | None:
    """[3, H, W] float 0..1 -> the face box (top, left, bottom, right) in pixels, or None where none is found."""
    _, h, w = rgb.shape
    scale = min(1.0, _SEARCH_SIDE / max(h, w))
    small = F.interpolate(rgb[None].float(), size=(max(1, round(h * scale)), max(1, round(w * scale))),
                          mode="area")[0] if scale < 1 else rgb.float()
    box = _largest_region(skin_mask(small).numpy())
    if box is None:
        return None
    sy, sx = h / small.shape[1], w / small.shape[2]
    top, left, bottom, right = box
    return top * sy, left * sx, bottom * sy, right * sx


def face_boxes(frames, count: int) -> np.ndarray:
    """[count, 4] float boxes (top, left, bottom, right) of the face in frames 0..count-1 (frames: rgb(i) ->
    [3, H, W] 0..1), missing ones from the nearest frame with a face, smoothed over time. An InputError when no
    frame shows a face."""
    found = [locate_face(frames.rgb(i)) for i in range(count)]
    have = [i for i, b in enumerate(found) if b is not None]
    if not have:
        raise InputError("face_only found no face in the source video (it looks for the largest skin-coloured "
                         "area): draw the region to change and connect it as edit_mask (--edit-mask) instead")
    boxes = np.array([found[min(have, key=lambda j, i=i: abs(j - i))] for i in range(count)], dtype=np.float64)
    half = _SMOOTH_FRAMES // 2
    padded = np.concatenate([boxes[:1].repeat(half, 0), boxes, boxes[-1:].repeat(half, 0)])
    return np.stack([np.median(padded[i:i + _SMOOTH_FRAMES], axis=0) for i in range(count)])


def box_mask(box, height: int, width: int, margin: float) -> torch.Tensor:
    """[height, width] float 0/1: the box enlarged by `margin` x its size on every side (the chin and the jaw move
    when talking; the hair and ears stay inside), clipped to the frame."""
    top, left, bottom, right = (float(v) for v in box)
    dy, dx = (bottom - top) * margin, (right - left) * margin
    y0, y1 = max(0, int(np.floor(top - dy))), min(height, int(np.ceil(bottom + dy)))
    x0, x1 = max(0, int(np.floor(left - dx))), min(width, int(np.ceil(right + dx)))
    mask = torch.zeros(height, width)
    mask[y0:y1, x0:x1] = 1.0
    return mask
