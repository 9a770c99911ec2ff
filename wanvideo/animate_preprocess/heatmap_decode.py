"""Keypoints from the pose model's heatmaps: arg-max, then DARK sub-pixel refinement (kernel 11)."""
from __future__ import annotations

import cv2
import numpy as np

DARK_KERNEL = 11


def _argmax_points(heatmaps: np.ndarray):
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape((n, k, -1))
    idx = np.argmax(flat, 2).reshape((n, k, 1))
    maxvals = np.amax(flat, 2).reshape((n, k, 1))
    points = np.tile(idx, (1, 1, 2)).astype(np.float32)
    points[:, :, 0] = points[:, :, 0] % w
    points[:, :, 1] = points[:, :, 1] // w
    # A map with no positive value has no keypoint: (-1, -1), as the official decode.
    points = np.where(np.tile(maxvals, (1, 1, 2)) > 0.0, points, -1)
    return points, maxvals


def _blur_keep_peak(heatmap: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian-blur one map (zero-padded) and rescale it to its original maximum."""
    border = (kernel - 1) // 2
    peak = np.max(heatmap)
    padded = np.zeros((heatmap.shape[0] + 2 * border, heatmap.shape[1] + 2 * border), dtype=np.float32)
    padded[border:-border, border:-border] = heatmap
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border].copy()
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero map gives NaN, never used (its point is -1)
        blurred *= peak / np.max(blurred)
    return blurred


def _taylor_step(logmap: np.ndarray, point: np.ndarray) -> np.ndarray:
    """One Newton step on the log heatmap around the arg-max (skipped near borders or on a flat spot)."""
    h, w = logmap.shape
    px, py = int(point[0]), int(point[1])
    if not (1 < px < w - 2 and 1 < py < h - 2):
        return point
    m = logmap
    dx = 0.5 * (m[py][px + 1] - m[py][px - 1])
    dy = 0.5 * (m[py + 1][px] - m[py - 1][px])
    dxx = 0.25 * (m[py][px + 2] - 2 * m[py][px] + m[py][px - 2])
    dxy = 0.25 * (m[py + 1][px + 1] - m[py - 1][px + 1] - m[py + 1][px - 1] + m[py - 1][px - 1])
    dyy = 0.25 * (m[py + 2][px] - 2 * m[py][px] + m[py - 2][px])
    if dxx * dyy - dxy ** 2 == 0:
        return point
    offset = -np.linalg.inv(np.array([[dxx, dxy], [dxy, dyy]])) @ np.array([[dx], [dy]])
    point += offset[:, 0]
    return point


def decode_heatmaps(heatmaps: np.ndarray, center, scale_px, kernel: int = DARK_KERNEL):
    """Heatmaps float [N,K,H,W] + box centres [N,2] and sizes [N,2] in pixels -> (points [N,K,2] px, scores [N,K,1])."""
    heatmaps = np.array(heatmaps, dtype=np.float32)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale_px = np.asarray(scale_px, dtype=np.float64).reshape(-1, 2)
    n, k, h, w = heatmaps.shape
    points, scores = _argmax_points(heatmaps)
    for i in range(n):
        for j in range(k):
            logmap = np.log(np.maximum(_blur_keep_peak(heatmaps[i, j], kernel), 1e-10))
            points[i][j] = _taylor_step(logmap, points[i][j])
    for i in range(n):
        out = np.ones_like(points[i])
        out[:, 0] = points[i][:, 0] * (scale_px[i][0] / w) + center[i][0] - scale_px[i][0] * 0.5
        out[:, 1] = points[i][:, 1] * (scale_px[i][1] / h) + center[i][1] - scale_px[i][1] * 0.5
        points[i] = out
    return points, scores
