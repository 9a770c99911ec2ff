"""Finding the preprocessing models by name in the model folders (ComfyUI: models/detection)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..errors import ModelFileError

log = logging.getLogger("wanvideo")

DETECTOR_URL = "https://huggingface.co/Wan-AI/Wan2.2-Animate-14B/tree/main/process_checkpoint/det"
POSE_URL = "https://huggingface.co/Wan-AI/Wan2.2-Animate-14B/tree/main/process_checkpoint/pose2d"
POSE_SPLIT_URL = "https://huggingface.co/Kijai/vitpose_comfy/tree/main/onnx"
SAM2_URL = "https://huggingface.co/facebook/sam2.1-hiera-large"

DETECTOR_NAMES = ("yolov10m.onnx",)
# (model file, files that must lie next to it): the official ViTPose-H, and the same model split in two
# (ONNX files over 2 GB keep their weights in a side file that onnxruntime reads from the same folder).
POSE_FILES = (
    ("vitpose_h_wholebody.onnx", ()),
    ("vitpose_h_wholebody_model.onnx", ("vitpose_h_wholebody_data.bin",)),
)
# Sub-folders of a model folder searched too: the official checkpoint layout (process_checkpoint/det, /pose2d).
SUBFOLDERS = ("", "det", "pose2d", "process_checkpoint/det", "process_checkpoint/pose2d")


@dataclass(frozen=True)
class PreprocessModels:
    detector: str
    pose: str


def _find(folders, name: str) -> str | None:
    for folder in folders:
        for sub in SUBFOLDERS:
            path = os.path.join(folder, sub, name)
            if os.path.isfile(path):
                return path
    return None


def find_preprocess_models(folders) -> PreprocessModels:
    """The detector and pose ONNX files in `folders`; one clear error names every missing file and its link."""
    folders = [os.fspath(f) for f in folders]
    detector = next((p for p in (_find(folders, n) for n in DETECTOR_NAMES) if p), None)
    pose, missing_side = None, []
    for name, sides in POSE_FILES:
        path = _find(folders, name)
        if path is None:
            continue
        absent = [s for s in sides if not os.path.isfile(os.path.join(os.path.dirname(path), s))]
        if absent:
            missing_side += [os.path.join(os.path.dirname(path), s) for s in absent]
            continue
        pose = path
        break
    problems = []
    if detector is None:
        problems.append(f"the person detector yolov10m.onnx (from {DETECTOR_URL})")
    if pose is None and missing_side:
        problems.append(f"{', '.join(missing_side)}: the weights of the split ViTPose-H, next to its .onnx file "
                        f"(from {POSE_SPLIT_URL})")
    elif pose is None:
        problems.append(f"the pose model vitpose_h_wholebody.onnx (from {POSE_URL}) or the split "
                        f"vitpose_h_wholebody_model.onnx + vitpose_h_wholebody_data.bin (from {POSE_SPLIT_URL})")
    if problems:
        where = ", ".join(folders) if folders else "(no model folder)"
        raise ModelFileError("WanAnimate preprocessing is missing " + "; and ".join(problems) +
                             f". Put the files in {where}.")
    return PreprocessModels(detector=detector, pose=pose)
