"""COCO-WholeBody keypoints (133 per person) -> the official pose meta (20 body, 2x21 hand, 69 face points)."""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("wanvideo")

# Body point i is the mean of COCO-WholeBody points _BODY_A[i] and _BODY_B[i]: the neck is the mean of the
# shoulders, the toes the means of the toe pairs; the others are the same point twice.
_BODY_A = [0, 6, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 17, 20]
_BODY_B = [0, 5, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3, 18, 21]
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
FACE = slice(22, 91)  # 69 points: the last foot point, then the 68 face points


def pose_metas_from_keypoints(kp2ds: np.ndarray, width: int, height: int) -> list[dict]:
    """Per-frame keypoints [T,133,3] (pixels, score) -> list of metas with normalised x/y.

    A frame whose every body point has a negative coordinate (the person left the frame) takes the
    previous frame's body, as the official code does; on the first frame (where the official code
    fails) the frame keeps its own points and a line is logged.
    """
    metas, last_body = [], None
    for t, kps in enumerate(np.asarray(kp2ds)):
        kps = kps.copy()
        kps[:, 0] /= width
        kps[:, 1] /= height
        body = (kps[_BODY_A] + kps[_BODY_B]) / 2
        if body[:, :2].min(axis=1).max() < 0:
            if last_body is None:
                log.warning("WanAnimate preprocess: no body point inside frame %d and no earlier frame to "
                            "reuse; its points are kept as they are", t)
            else:
                body = last_body
        last_body = body
        metas.append({
            "width": width,
            "height": height,
            "keypoints_body": body.copy(),
            "keypoints_left_hand": kps[LEFT_HAND].copy(),
            "keypoints_right_hand": kps[RIGHT_HAND].copy(),
            "keypoints_face": kps[FACE].copy(),
        })
    return metas
