"""Replacement masks: dilation, the official coarse grid, the background video and the SAM2 prompts."""
from __future__ import annotations

import cv2
import numpy as np

SAM2_CHUNK = 400
SAM2_BODY_POINTS = [0, 1, 2, 5, 8, 11, 10, 13]  # nose, neck, shoulders, hips, ankles


def mask_body(mask: np.ndarray, k: int = 7, iterations: int = 3) -> np.ndarray:
    """Dilate a 0/1 person mask with a k x k square, `iterations` times (uint8 [H,W] out)."""
    return cv2.dilate(np.ascontiguousarray(mask, dtype=np.uint8), np.ones((k, k), np.uint8), iterations=iterations)


def aug_mask(mask: np.ndarray, w_len: int = 1, h_len: int = 1) -> np.ndarray:
    """Fill every cell of a w_len x h_len grid over the mask's bounding box that the mask touches.

    Cells cover [x_min, x_max) x [y_min, y_max) with steps int(width / w_len), int(height / h_len), as the
    official grid (so the last column and row of the box stay as they are). An empty mask stays empty;
    a mask narrower than the grid (where the official code fails) uses a step of one pixel.
    """
    out = np.array(mask, dtype=np.uint8, copy=True)
    ys, xs = np.nonzero(out)
    if not len(xs):
        return out
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    w_step = max(int(np.int32((x1 - x0) / w_len)), 1)
    h_step = max(int(np.int32((y1 - y0) / h_len)), 1)
    for x in range(x0, x1, w_step):
        xe = min(x + w_step, x1)
        for y in range(y0, y1, h_step):
            ye = min(y + h_step, y1)
            if out[y:ye, x:xe].sum() > 0:
                out[y:ye, x:xe] = 1
    return out


def replacement_mask(mask: np.ndarray, k: int = 7, iterations: int = 3, w_len: int = 1, h_len: int = 1):
    """The mask the replacement mode uses: dilated then gridded; `iterations == 0` keeps the mask as is."""
    if iterations > 0:
        return aug_mask(mask_body(mask, k, iterations), w_len, h_len)
    return np.array(mask, dtype=np.uint8, copy=True)


def background(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The driving frame with the (replacement) mask blacked out."""
    return frame * (1 - mask[:, :, None])


def sam2_chunks(frame_num: int, chunk: int = SAM2_CHUNK) -> list[tuple[int, int]]:
    """(start, end) of the official SAM2 chunks: one chunk under `chunk` frames, else (n + chunk) // chunk."""
    steps = 1 if frame_num < chunk else (frame_num + chunk) // chunk
    return [(i * chunk, min((i + 1) * chunk, frame_num)) for i in range(steps) if i * chunk < frame_num]


def sam2_prompts(metas: list[dict], chunk: int = SAM2_CHUNK) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per chunk, the key frames (int64 [K], chunk-relative) and their 8 body points (int32 [K,8,2] px).

    Four key frames at range(0, n, n // 4) (five when n // 4 does not divide n), one if the chunk has
    4 frames or fewer; points scaled by the first frame's width and height, whatever their scores.
    """
    if not metas:
        return []
    wh = np.array([[metas[0]["width"], metas[0]["height"]]])
    prompts = []
    for start, end in sam2_chunks(len(metas), chunk):
        n = end - start
        key = np.arange(0, n, n // (4 if n > 4 else 1), dtype=np.int64)
        points = [(np.asarray(metas[start + int(i)]["keypoints_body"])[SAM2_BODY_POINTS, :2] * wh).astype(np.int32)
                  for i in key]
        prompts.append((key, np.stack(points)))
    return prompts


def pose_hull_mask(meta: dict, height: int, width: int, threshold: float = 0.3) -> np.ndarray:
    """A coarse person mask without SAM2: the convex hull of the body, hand and face points seen.

    The caller dilates and grids it as a SAM2 mask; the hull misses hair, loose clothes and anything the
    points do not reach, so the dilation matters more here.
    """
    wh = np.array([width, height], dtype=np.float64)
    parts = [np.asarray(meta[k], np.float64) for k in
             ("keypoints_body", "keypoints_left_hand", "keypoints_right_hand", "keypoints_face")]
    points = np.concatenate([p[p[:, 2] >= threshold, :2] for p in parts]) * wh
    mask = np.zeros((height, width), np.uint8)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) >= 3:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    return mask
