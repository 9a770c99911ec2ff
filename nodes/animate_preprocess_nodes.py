"""WanAnimate preprocessing node: InfiniteTalkAnimatePreprocess (a raw driving video + the character image ->
the pose, face, background and mask videos InfiniteTalkAnimateSampler takes), frame by frame in the engine."""
from __future__ import annotations

import logging

import numpy as np

from ..wanvideo import animate_preprocess as engine
from ..wanvideo.animate_preprocess.settings import PreprocessSettings
from ..wanvideo.errors import InputError
from ..wanvideo.options import node_input, node_inputs, settings_from_inputs
from . import host

log = logging.getLogger("wanvideo")

PREPROCESS_INPUTS = ("driving_fps", "mode", "resolution_width", "resolution_height", "preprocess_fps", "retarget",
                     "mask_kernel", "mask_iterations", "mask_grid_w", "mask_grid_h")
DETECTION_FOLDER = "detection"
SAM2_FOLDER = "sam2"
NO_SAM2 = "none (pose-hull masks)"


def detection_model_folders() -> list[str]:
    """The host's models/detection folders, where the person detector and pose model files are looked for (this
    node, and the InfiniteTalk sampler's face_only)."""
    host.register_model_folder(DETECTION_FOLDER, extensions=(".onnx", ".bin", ".data"))
    return host.model_folder_paths(DETECTION_FOLDER)


class _TensorSink:
    """Output frames written straight into preallocated IMAGE tensors (no list of frames, no stacking copy)."""

    def __init__(self, count: int):
        self.count = count
        self.tensors = {}

    def __call__(self, name: str, index: int, image: np.ndarray) -> None:
        import torch

        if name not in self.tensors:
            self.tensors[name] = torch.empty((self.count, *image.shape), dtype=torch.float32)
        self.tensors[name][index] = torch.from_numpy(image).float().div_(255.0)


class _Progress:
    """One host progress bar over the passes (pose, render, mask); Cancel stops at the next frame."""

    STAGES = {"pose": 0, "render": 1, "mask": 2}

    def __init__(self, frames: int, passes: int):
        self.frames = frames
        self.bar = host.progress_bar(frames * passes)
        self.total = frames * passes

    def __call__(self, stage: str, done: int, total: int) -> None:
        host.raise_if_interrupted()
        self.bar.update_absolute(self.STAGES[stage] * self.frames + done, self.total)
        if done == total:
            host.send_progress_text(f"{stage}: {total} frames")


class InfiniteTalkAnimatePreprocess:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "preprocess"
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "MASK", "IMAGE", "FLOAT", "INT")
    RETURN_NAMES = ("pose_video", "face_video", "background_video", "character_mask", "character", "fps",
                    "frame_count")
    OUTPUT_TOOLTIPS = (
        "The driver's pose drawn as WanAnimate was trained (official drawing): to the Animate sampler's pose_video.",
        "512x512 crops of the driver's face, one per frame: to the Animate sampler's face_video.",
        "replace mode: the clip with the person blacked out (to background_video); animate mode: nothing.",
        "replace mode: where the person is, dilated and gridded (to character_mask); animate mode: nothing.",
        "The character image at the output size (animate) or letterboxed to the clip (replace).",
        "Frame rate of the outputs (preprocess_fps): to the sampler's fps and Video Combine.",
        "Number of output frames.",
    )
    DESCRIPTION = ("WanAnimate preprocessing inside the pack, with the official numbers: person detector "
                   "(yolov10m.onnx) and whole-body pose (ViTPose-H ONNX) in onnxruntime, the official pose drawing "
                   "and retargeting, 512x512 face crops, and for replacement SAM2 person masks (transformers) "
                   "with the background. Files in models/detection (and a SAM2 folder in models/sam2).")

    @classmethod
    def INPUT_TYPES(cls):
        host.register_model_folder(DETECTION_FOLDER, extensions=(".onnx", ".bin", ".data"))
        host.register_model_folder(SAM2_FOLDER)
        return {
            "required": {
                "driving_video": ("IMAGE", {
                    "tooltip": "Frames of any video of one person (Load Video / Get Video Components)."}),
                "character": ("IMAGE", {
                    "tooltip": "The character image (alpha ignored, as the official preprocessing)."}),
                # a socket: connect the fps output of Get Video Components (Load Video)
                "driving_fps": node_input(PreprocessSettings, "driving_fps", forceInput=True),
                **node_inputs(PreprocessSettings, *PREPROCESS_INPUTS[1:]),
            },
            "optional": {
                "sam2_model": ([NO_SAM2] + host.model_subfolders(SAM2_FOLDER), {
                    "default": NO_SAM2,
                    "tooltip": "replace mode: a transformers SAM2 folder in models/sam2 (e.g. sam2.1-hiera-large). "
                               "none: pose-hull masks, coarser."}),
            },
        }

    def preprocess(self, driving_video, character, sam2_model=NO_SAM2, **widgets):
        if driving_video is None or len(driving_video) == 0:
            raise InputError("connect the driving video's frames (Load Video)")
        if character is None or len(character) == 0:
            raise InputError("connect the character image")
        settings = settings_from_inputs(PreprocessSettings, widgets, "Animate preprocess").validated()
        models = engine.find_preprocess_models(detection_model_folders())
        segmenter = None
        if settings.mode == "replace" and sam2_model and sam2_model != NO_SAM2:
            folder = host.model_subfolder_path(sam2_model, SAM2_FOLDER)
            if folder is None:
                raise InputError(f"SAM2 folder {sam2_model!r} not found in models/{SAM2_FOLDER}")
            from ..wanvideo.animate_preprocess.segmentation import Sam2Segmenter

            segmenter = Sam2Segmenter.from_folder(folder, device=host.torch_device())
        count = len(engine.frame_indices(len(driving_video), settings.driving_fps, settings.preprocess_fps))
        sink = _TensorSink(count)
        progress = _Progress(count, 3 if settings.mode == "replace" else 2)
        result = engine.run_preprocess(settings, driving_video, character[:1], models, segmenter=segmenter, sink=sink,
                                progress=progress)
        import torch

        out = sink.tensors
        mask = out["mask"][..., 0].contiguous() if "mask" in out else None
        character_out = torch.from_numpy(result["character"]).float().div_(255.0)[None]
        host.send_progress_text(f"{count} frames at {result['fps']:g} fps ({settings.mode})")
        return (out["pose"], out["face"], out.get("background"), mask, character_out, float(result["fps"]), count)


NODE_CLASS_MAPPINGS = {"InfiniteTalkAnimatePreprocess": InfiniteTalkAnimatePreprocess}
NODE_DISPLAY_NAME_MAPPINGS = {"InfiniteTalkAnimatePreprocess": "InfiniteTalk Animate Preprocess (WanAnimate)"}
