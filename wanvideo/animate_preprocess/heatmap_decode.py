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


def _blur_keep_peak(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Gaussian-blur each map [K,H,W] (zero-padded) and rescale it to its original maximum.

    The padded maps are stacked into one tall image and blurred in one OpenCV call: each kept pixel's kernel
    reaches only into its own map's zero padding, so every map equals a separate blur.
    """
    border = (kernel - 1) // 2
    k, h, w = heatmaps.shape
    peaks = heatmaps.reshape(k, -1).max(axis=1)
    padded = np.zeros((k, h + 2 * border, w + 2 * border), dtype=np.float32)
    padded[:, border:-border, border:-border] = heatmaps
    tall = cv2.GaussianBlur(padded.reshape(k * (h + 2 * border), w + 2 * border), (kernel, kernel), 0)
    blurred = tall.reshape(k, h + 2 * border, w + 2 * border)[:, border:-border, border:-border].copy()
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero map gives NaN, never used (its point is -1)
        blurred *= (peaks / blurred.reshape(k, -1).max(axis=1))[:, None, None]
    return blurred


def _taylor_steps(logmaps: np.ndarray, points: np.ndarray) -> None:
    """One Newton step on each log heatmap around its arg-max (skipped near borders or on a flat spot), in place."""
    k, h, w = logmaps.shape
    px, py = points[:, 0].astype(int), points[:, 1].astype(int)
    inside = np.flatnonzero((px > 1) & (px < w - 2) & (py > 1) & (py < h - 2))
    if not len(inside):
        return
    m, x, y = logmaps[inside], px[inside], py[inside]
    r = np.arange(len(inside))

    def at(dy, dx):
        return m[r, y + dy, x + dx]

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    ok = dxx * dyy - dxy ** 2 != 0
    if not ok.any():
        return
    hessian = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)[ok]
    derivative = np.stack([dx, dy], -1)[ok][..., None]
    offset = -(np.linalg.inv(hessian) @ derivative)[..., 0]
    points[inside[ok]] += offset


def decode_heatmaps(heatmaps: np.ndarray, center, scale_px, kernel: int = DARK_KERNEL):
    """Heatmaps float [N,K,H,W] + box centres [N,2] and sizes [N,2] in pixels -> (points [N,K,2] px, scores [N,K,1])."""
    heatmaps = np.array(heatmaps, dtype=np.float32)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale_px = np.asarray(scale_px, dtype=np.float64).reshape(-1, 2)
    n, k, h, w = heatmaps.shape
    points, scores = _argmax_points(heatmaps)
    for i in range(n):
        _taylor_steps(np.log(np.maximum(_blur_keep_peak(heatmaps[i], kernel), 1e-10)), points[i])
    for i in range(n):
        out = np.ones_like(points[i])
        out[:, 0] = points[i][:, 0] * (scale_px[i][0] / w) + center[i][0] - scale_px[i][0] * 0.5
        out[:, 1] = points[i][:, 1] * (scale_px[i][1] / h) + center[i][1] - scale_px[i][1] * 0.5
        points[i] = out
    return points, scores
