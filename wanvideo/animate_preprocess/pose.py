"""Whole-body pose of the one followed person per frame: detector box -> ViTPose-H crop -> keypoints."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .detector import detect_person
from .heatmap_decode import decode_heatmaps
from .onnx_runtime import onnx_model
from .person_crop import pose_crop
from .pose_meta import pose_metas_from_keypoints


def frame_keypoints(frame: np.ndarray, detector_path: str, pose_path: str, with_found: bool = False):
    """One RGB uint8 frame -> float32 [133,3] (x, y in pixels, score) of the followed person.

    With `with_found`, also whether a person was detected (else the whole frame was used).
    """
    bbox = detect_person(frame, detector_path)
    crop, center, scale = pose_crop(frame, bbox)
    heatmaps = onnx_model(pose_path)(crop[None])
    points, scores = decode_heatmaps(heatmaps, center[None], scale[None] * 200)
    kps = np.concatenate([points, scores], axis=2)[0]
    return (kps, bool(bbox[-1] >= 0)) if with_found else kps


def estimate_poses(frames: Iterable[np.ndarray], detector_path: str, pose_path: str) -> list[dict]:
    """RGB uint8 frames (all one size) -> one pose meta per frame, normalised by the first frame's size."""
    kp2ds, size = [], None
    for frame in frames:
        frame = np.asarray(frame)
        if size is None:
            size = frame.shape[:2]
        kp2ds.append(frame_keypoints(frame, detector_path, pose_path))
    if size is None:
        return []
    return pose_metas_from_keypoints(np.stack(kp2ds), width=size[1], height=size[0])
