"""WanAnimate's driving-video preprocessing, giving the official code's numbers (host-free).

Images are numpy uint8 [H,W,3] RGB, masks uint8 [H,W] 0/1; a pose meta is the official dict (`width`,
`height`, `keypoints_body` [20,3], `keypoints_left_hand`/`keypoints_right_hand` [21,3], `keypoints_face`
[69,3]; normalised x/y and a score). No function changes its arguments.

The names below are loaded on first use, so the settings (and the node's inputs) are available where OpenCV
or onnxruntime is not installed; running the preprocessing then says what to install.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "detect_person": "detector", "detector_postprocess": "detector", "select_person": "detector",
    "face_bbox": "face", "face_crops": "face",
    "frame_indices": "frames", "resize_by_area": "frames",
    "decode_heatmaps": "heatmap_decode",
    "aug_mask": "masks", "mask_body": "masks", "pose_hull_mask": "masks", "replacement_mask": "masks",
    "sam2_prompts": "masks",
    "PreprocessModels": "model_files", "find_preprocess_models": "model_files",
    "preprocess_animate": "pipeline", "preprocess_replace": "pipeline",
    "estimate_poses": "pose", "pose_crop": "person_crop", "pose_metas_from_keypoints": "pose_meta",
    "render_pose": "render", "render_retargeted": "render",
    "retarget_pose": "retarget", "run_preprocess": "run", "PreprocessSettings": "settings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _EXPORTS[name] not in ("settings", "model_files"):
        _need_opencv()
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def _need_opencv() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        from ..errors import InputError

        raise InputError("WanAnimate preprocessing needs OpenCV: install it in ComfyUI's Python with "
                         "`python -m pip install opencv-python-headless`.") from exc


def __dir__():
    return sorted(list(globals()) + __all__)
