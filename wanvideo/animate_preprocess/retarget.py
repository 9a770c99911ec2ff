"""Pose retargeting: the driver's bones rescaled to the character's proportions and placed on its canvas.

Follows the official `get_retarget_pose` without the FLUX-edited reference poses: one bone-length ratio per
limb (character / driver, on the first driving frame and the character image), limbs rebuilt outwards from
the neck with the driver's angles, a global offset from the feet (full body) or the neck, hands scaled
about their root and moved with the wrists. Unlike the official function, the arguments are left as given.
"""
from __future__ import annotations

import math

import numpy as np

from .render import LIMBS

THRESHOLD = 0.4
FOOT_TO_CALF = 0.5
# Pairs of limbs (indices into LIMBS) that take the larger of their two ratios, so left and right match.
_SYMMETRIC_LIMBS = [(0, 1), (2, 4), (3, 5), (6, 9), (7, 10), (8, 11), (17, 18)]


def _body(meta) -> list[list[float]]:
    return np.asarray(meta["keypoints_body"], dtype=np.float64).tolist()


def _body_height(body, height, top, a, b):
    return height * abs((body[a][1] + body[b][1]) / 2 - body[top][1])


def _scale(src, dst, src_hw, dst_hw) -> float:
    """Driver size / character size: nose-to-ankles if both show them, else nose-to-hips, else the area."""
    for a, b in ((10, 13), (8, 11)):
        if all(k[i][2] > 0.5 for k in (src, dst) for i in (0, a, b)):
            return 1.0 * _body_height(src, src_hw[0], 0, a, b) / _body_height(dst, dst_hw[0], 0, a, b)
    return float(np.sqrt(src_hw[0] * src_hw[1]) / np.sqrt(dst_hw[0] * dst_hw[1]))


def _body_flag(body, threshold=THRESHOLD) -> int:
    """2 full body (ankles and hips seen), 1 three-quarter (hips), 0 half body."""
    def seen(i):
        return body[i][1] <= 1 and body[i][2] >= threshold
    if all(seen(i) for i in (10, 13, 8, 11)):
        return 2
    return 1 if seen(8) and seen(11) else 0


def _limb_length(body, a, b, height, width):
    x = np.array([body[a - 1][0], body[b - 1][0]]) * float(width)
    y = np.array([body[a - 1][1], body[b - 1][1]]) * float(height)
    return ((x[0] - x[1]) ** 2 + (y[0] - y[1]) ** 2) ** 0.5


def _limb_ratios(src, dst, src_hw, dst_hw) -> list[float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = [_limb_length(dst, a, b, *dst_hw) / _limb_length(src, a, b, *src_hw) for a, b in LIMBS]
    for i, j in _SYMMETRIC_LIMBS:
        ratios[i] = ratios[j] = max(ratios[i], ratios[j])
    ratios[13] = ratios[15] = (ratios[13] + ratios[15]) / 2  # eyes
    ratios[14] = ratios[16] = (ratios[14] + ratios[16]) / 2  # ears
    return ratios


def _limb_geometry(points):
    lengths, angles = [], []
    for a, b in LIMBS:
        p, q = points[a - 1], points[b - 1]
        lengths.append(((p[1] - q[1]) ** 2 + (p[0] - q[0]) ** 2) ** 0.5)
        angles.append(math.degrees(math.atan2(p[1] - q[1], p[0] - q[0])))
    return lengths, angles


def _rebuild(points, lengths, angles):
    """Rebuild limbs outwards from the neck with new lengths and the old angles (in LIMBS order)."""
    points = [list(p) for p in points]
    for (a, b), length, angle in zip(LIMBS, lengths, angles, strict=False):
        start = points[a - 1]
        points[b - 1] = [start[0] - length * math.cos(math.radians(angle)),
                         start[1] - length * math.sin(math.radians(angle))] + points[b - 1][2:]
    return points


def _scaled_hand(hand, ratio, threshold):
    """Hand points (normalised) scaled by `ratio` about the hand's root; low scores become (-1, -1, 0)."""
    root = hand[0]
    dx, dy = root[0] * (ratio - 1), root[1] * (ratio - 1)
    return [[p[0] * ratio - dx, p[1] * ratio - dy, p[2]] if p[2] >= threshold else [-1, -1, 0] for p in hand]


def _placed_hand(hand, delta, src_hw):
    """Hand points in character pixels (truncated to int, as the official); score 0 -> NaN."""
    out = np.full((len(hand), 2), np.nan)
    scores = np.zeros(len(hand))
    for i, (x, y, s) in enumerate(hand):
        if s != 0:
            out[i] = (int(x * src_hw[1] + delta[0]), int(y * src_hw[0] + delta[1]))
            scores[i] = s
    return out, scores


class _Placement:
    """What every frame shares: limb ratios, body type, the global offset and the driver/character scale."""

    def __init__(self, tpl_meta0, refer_meta):
        src, dst = _body(tpl_meta0), _body(refer_meta)
        src_hw = (tpl_meta0["height"], tpl_meta0["width"])
        self.dst_size = (refer_meta["width"], refer_meta["height"])
        self.scale = _scale(src, dst, src_hw, (refer_meta["height"], refer_meta["width"]))
        dst_h, dst_w = int(refer_meta["height"] * self.scale), int(refer_meta["width"] * self.scale)
        self.full_body = min(_body_flag(dst), _body_flag(src))
        self.ratios = _limb_ratios(src, dst, src_hw, (dst_h, dst_w))
        src_px = [[p[0] * src_hw[1], p[1] * src_hw[0]] for p in src]
        lengths, angles = _limb_geometry(src_px)
        rescaled = _rebuild(src_px, [n * r for n, r in zip(lengths, self.ratios, strict=False)], angles)
        if self.full_body == 2:
            foot_y = max((dst[10][1] + dst[19][1]) / 2, (dst[13][1] + dst[18][1]) / 2) * dst_h
            self.delta_y = max(rescaled[10][1], rescaled[13][1]) - foot_y
            self.ground_x = (rescaled[8][0] + rescaled[11][0]) / 2
            self.delta_x = self.ground_x - (dst[8][0] + dst[11][0]) * dst_w / 2
        else:
            self.delta_y = rescaled[1][1] - dst[1][1] * dst_h
            self.ground_x = rescaled[1][0]
            self.delta_x = rescaled[1][0] - dst[1][0] * dst_w


def _frame_pose(meta, place: _Placement, first: bool) -> dict:
    src_hw = (meta["height"], meta["width"])
    points = [[p[0] * src_hw[1], p[1] * src_hw[0], p[2]] for p in _body(meta)]
    lengths, angles = _limb_geometry(points)
    lengths = [n * r for n, r in zip(lengths, place.ratios, strict=False)]
    for foot, calf in ((18, 8), (17, 11)):  # a foot no longer than half its calf
        if lengths[foot] > lengths[calf] * FOOT_TO_CALF:
            lengths[foot] = lengths[calf] * FOOT_TO_CALF
    body = _rebuild(points, lengths, angles)
    delta_x = place.delta_x
    if first:  # the official code re-centres only the first frame (a local variable in a loop)
        if place.full_body == 2:
            delta_x += (body[8][0] + body[11][0]) / 2 - place.ground_x
        elif place.full_body == 0:
            delta_x += body[1][0] - place.ground_x
    body = [[(p[0] - delta_x) / place.scale, (p[1] - place.delta_y) / place.scale, p[2]] for p in body]

    ratio = max(place.ratios[0], place.ratios[1]) / place.scale
    # Named as the official code names them: "left" is built from the right-hand points, and so on.
    left = _scaled_hand(np.asarray(meta["keypoints_right_hand"], np.float64).tolist(), ratio, THRESHOLD)
    right = _scaled_hand(np.asarray(meta["keypoints_left_hand"], np.float64).tolist(), ratio, THRESHOLD)
    left_delta = np.array(body[4][:2]) - np.array(points[4][:2])
    right_delta = np.array(body[7][:2]) - np.array(points[7][:2])
    if left[0][0] != -1:
        left_delta += (points[4][0] - left[0][0] * src_hw[1], points[4][1] - left[0][1] * src_hw[0])
    if right[0][0] != -1:
        right_delta += (points[7][0] - right[0][0] * src_hw[1], points[7][1] - right[0][1] * src_hw[0])
    root = (left[0][0] * src_hw[1], left[0][1] * src_hw[0])
    dist_left = ((points[4][0] - root[0]) ** 2 + (points[4][1] - root[1]) ** 2) ** 0.5
    dist_right = ((points[7][0] - root[0]) ** 2 + (points[7][1] - root[1]) ** 2) ** 0.5
    if dist_left > dist_right:
        rhand, lhand = _placed_hand(left, right_delta, src_hw), _placed_hand(right, left_delta, src_hw)
    else:
        lhand, rhand = _placed_hand(left, left_delta, src_hw), _placed_hand(right, right_delta, src_hw)

    w, h = place.dst_size
    norm = np.array([[p[0] / w, p[1] / h, p[2]] for p in body])
    return {"kps_body": norm[:, :2] * (w, h), "kps_body_p": norm[:, 2], "kps_lhand": lhand[0],
            "kps_lhand_p": lhand[1], "kps_rhand": rhand[0], "kps_rhand_p": rhand[1],
            "size_wh": np.array([w, h], dtype=np.int64)}


def retarget_pose(tpl_meta0: dict, refer_meta: dict, tpl_metas: list[dict]) -> list[dict]:
    """Driving metas retargeted onto the character: one dict per frame (pixels of the character image)."""
    place = _Placement(tpl_meta0, refer_meta)
    return [_frame_pose(meta, place, i == 0) for i, meta in enumerate(tpl_metas)]
