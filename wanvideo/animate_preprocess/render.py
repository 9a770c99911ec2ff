"""The official WanAnimate pose drawing: body limbs as filled ellipses, joints as dots, thin hand lines."""
from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

SCORE_THRESHOLD = 0.5
EPS = 0.01

# (start, end) body point pairs, 1-based as the official limb table; one colour per limb / joint.
LIMBS = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
         (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18), (14, 19), (11, 20)]
COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
          (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
          (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85), (200, 200, 0), (100, 100, 0)]
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
              (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
# Hand edge colours: evenly spaced hues, as float RGB (OpenCV rounds them when drawing).
HAND_COLORS = [tuple(c * 255 for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0))
               for i in range(len(HAND_EDGES))]


def _body_stick(height: int, width: int) -> int:
    return max(int(min(height, width) / 200) - 1, 1)


def _draw_body(canvas: np.ndarray, kps: np.ndarray, scores: np.ndarray, stick: int) -> None:
    for (a, b), color in zip(LIMBS, COLORS, strict=False):
        p1, p2 = kps[a - 1], kps[b - 1]
        if scores[a - 1] < SCORE_THRESHOLD or scores[b - 1] < SCORE_THRESHOLD:
            continue
        if not (np.isfinite(p1).all() and np.isfinite(p2).all()):
            continue
        mid_x, mid_y = np.mean([p1[0], p2[0]]), np.mean([p1[1], p2[1]])
        length = ((p1[1] - p2[1]) ** 2 + (p1[0] - p2[0]) ** 2) ** 0.5
        angle = math.degrees(math.atan2(p1[1] - p2[1], p1[0] - p2[0]))
        polygon = cv2.ellipse2Poly((int(mid_x), int(mid_y)), (int(length / 2), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [int(float(c) * 0.6) for c in color])
    for point, score, color in zip(kps, scores, COLORS, strict=False):
        if score < SCORE_THRESHOLD or not np.isfinite(point).all():
            continue
        cv2.circle(canvas, (int(point[0]), int(point[1])), stick, color, thickness=-1)


def _draw_hand(canvas: np.ndarray, kps: np.ndarray, scores: np.ndarray, stick: int) -> None:
    visible = [bool(s >= SCORE_THRESHOLD) and bool(np.isfinite(p).all()) for p, s in zip(kps, scores, strict=False)]
    for (a, b), color in zip(HAND_EDGES, HAND_COLORS, strict=False):
        if not (visible[a] and visible[b]):
            continue
        x1, y1, x2, y2 = int(kps[a][0]), int(kps[a][1]), int(kps[b][0]), int(kps[b][1])
        if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
            cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=stick)
    for point, ok in zip(kps, visible, strict=False):
        if ok and int(point[0]) > EPS and int(point[1]) > EPS:
            cv2.circle(canvas, (int(point[0]), int(point[1])), stick, (0, 0, 255), thickness=-1)


def draw_pose(canvas: np.ndarray, body, body_p, lhand, lhand_p, rhand, rhand_p) -> np.ndarray:
    """Draw pixel-space keypoints on `canvas` (uint8 [H,W,3], changed in place and returned)."""
    height, width = canvas.shape[:2]
    stick = _body_stick(height, width)
    _draw_body(canvas, np.asarray(body, np.float64), np.asarray(body_p, np.float64), stick)
    hand_stick = max(stick // 2, 1)
    _draw_hand(canvas, np.asarray(lhand, np.float64), np.asarray(lhand_p, np.float64), hand_stick)
    _draw_hand(canvas, np.asarray(rhand, np.float64), np.asarray(rhand_p, np.float64), hand_stick)
    return canvas


def render_pose(meta: dict, height: int, width: int) -> np.ndarray:
    """A pose meta (normalised points) drawn on a black `height` x `width` canvas -> uint8 [H,W,3]."""
    wh = np.array([width, height], dtype=np.float64)
    parts = [np.asarray(meta[k], dtype=np.float64)
             for k in ("keypoints_body", "keypoints_left_hand", "keypoints_right_hand")]
    canvas = np.zeros((height, width, 3), np.uint8)
    return draw_pose(canvas, parts[0][:, :2] * wh, parts[0][:, 2], parts[1][:, :2] * wh, parts[1][:, 2],
                     parts[2][:, :2] * wh, parts[2][:, 2])


def render_retargeted(pose: dict, height: int, width: int) -> np.ndarray:
    """A retargeted pose (pixels of the character, NaN for missing points) drawn on a black canvas."""
    canvas = np.zeros((height, width, 3), np.uint8)
    return draw_pose(canvas, pose["kps_body"], pose["kps_body_p"], pose["kps_lhand"], pose["kps_lhand_p"],
                     pose["kps_rhand"], pose["kps_rhand_p"])
