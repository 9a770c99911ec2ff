"""WanAnimate's driving-video preprocessing, giving the official code's numbers (host-free).

Images are numpy uint8 [H,W,3] RGB, masks uint8 [H,W] 0/1; a pose meta is the official dict (`width`,
`height`, `keypoints_body` [20,3], `keypoints_left_hand`/`keypoints_right_hand` [21,3], `keypoints_face`
[69,3]; normalised x/y and a score). No function changes its arguments.
"""
from .detector import detect_person, detector_postprocess, select_person
from .face import face_bbox, face_crops
from .frames import frame_indices, resize_by_area
from .heatmap_decode import decode_heatmaps
from .masks import aug_mask, mask_body, pose_hull_mask, replacement_mask, sam2_prompts
from .model_files import PreprocessModels, find_preprocess_models
from .pipeline import preprocess_animate, preprocess_replace
from .pose import estimate_poses
from .pose_crop import pose_crop
from .pose_meta import pose_metas_from_keypoints
from .render import render_pose, render_retargeted
from .retarget import retarget_pose
from .run import run_preprocess
from .settings import PreprocessSettings

__all__ = [
    "PreprocessModels", "PreprocessSettings", "find_preprocess_models", "preprocess_animate", "preprocess_replace",
    "run_preprocess", "aug_mask", "decode_heatmaps", "detect_person", "detector_postprocess", "estimate_poses", "face_bbox",
    "face_crops", "frame_indices", "mask_body", "pose_crop", "pose_hull_mask", "pose_metas_from_keypoints",
    "render_pose", "render_retargeted", "replacement_mask", "resize_by_area", "retarget_pose", "sam2_prompts",
    "select_person",
]
