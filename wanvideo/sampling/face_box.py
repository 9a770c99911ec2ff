"""Face boxes per frame for face-only dubbing (`face_only`), from the WanAnimate preprocessing's detector path.

Per source frame, one frame at a time (memory does not grow with the clip): the person detector (yolov10m.onnx)
picks the followed person, the whole-body pose model (ViTPose-H) gives its face points, and the official face
box (`face_bbox`, the box WanAnimate crops its face video with) frames them. A frame has no face where no person is
detected or the face points give no usable box; such frames take the box linearly interpolated between the nearest
frames with a face before and after (at the clip's ends, the nearest one's box). Every box is then the median of
the boxes of the 5 frames around it, so the mask does not jitter. No skin-colour or other guess stands in for the
detector: without its files face_only stops with an error naming them (`find_face_models`); a painted `edit_mask`
needs no model file.
"""
from __future__ import annotations

import importlib.util
import logging
from typing import Callable

import numpy as np
import torch

from ..errors import GenerationInterrupted, InputError, ModelFileError

log = logging.getLogger(__name__)

SMOOTH_FRAMES = 5


def find_face_models(folders):
    """The detector and pose model files face_only needs (`PreprocessModels`), found as the Animate Preprocess node
    finds them, and the libraries that run them; one clear error (naming the files and where to get them) else."""
    from ..animate_preprocess import _need_opencv, find_preprocess_models

    try:
        models = find_preprocess_models(folders)
    except ModelFileError as exc:
        raise ModelFileError(f"face_only finds the face with the person detector and pose model of the WanAnimate "
                             f"preprocessing (the Animate Preprocess node's files). {exc} Or paint the region to "
                             "change and connect it as edit_mask (--edit-mask FILE): a mask needs no model "
                             "file.") from exc
    _need_opencv()
    if importlib.util.find_spec("onnxruntime") is None:
        raise InputError("face_only runs the face detector in onnxruntime: install it in this Python with "
                         "`python -m pip install onnxruntime` (or onnxruntime-gpu), or connect an edit_mask instead")
    return models


def face_models_for(edit_mask, settings, folders):
    """The face models a run needs (None where it needs none: no face_only, or a given edit_mask, which wins)."""
    if edit_mask is not None or not getattr(settings, "face_only", False):
        return None
    return find_face_models(folders)


def _uint8(rgb: torch.Tensor) -> np.ndarray:
    """[3, H, W] float 0..1 -> RGB uint8 [H, W, 3] (what the detector path reads)."""
    return (rgb.clamp(0, 1).permute(1, 2, 0) * 255.0).round().to(torch.uint8).numpy()


def frame_face_box(image: np.ndarray, models) -> tuple[float, float, float, float] | None:
    """The face box (top, left, bottom, right) in pixels of one RGB uint8 frame, or None where it shows no face."""
    from ..animate_preprocess.face import face_bbox
    from ..animate_preprocess.pose import frame_keypoints
    from ..animate_preprocess.pose_meta import pose_metas_from_keypoints

    height, width = image.shape[:2]
    keypoints, person = frame_keypoints(image, models.detector, models.pose, with_found=True)
    if not person:  # no person: the pose model looked at the whole frame, its face points mean nothing
        return None
    meta = pose_metas_from_keypoints(keypoints[None], width=width, height=height)[0]
    x1, x2, y1, y2 = face_bbox(meta, (height, width))
    if x2 <= x1 or y2 <= y1:
        return None
    return float(y1), float(x1), float(y2), float(x2)


def fill_and_smooth(found: list) -> np.ndarray:
    """Per-frame boxes (None: no face) -> [count, 4]: the gaps interpolated, then a moving median over time."""
    count = len(found)
    have = np.array([i for i, box in enumerate(found) if box is not None])
    known = np.array([found[i] for i in have], dtype=np.float64)
    frames = np.arange(count)
    boxes = np.stack([np.interp(frames, have, known[:, k]) for k in range(4)], 1)
    half = SMOOTH_FRAMES // 2
    padded = np.concatenate([boxes[:1].repeat(half, 0), boxes, boxes[-1:].repeat(half, 0)])
    return np.stack([np.median(padded[i:i + SMOOTH_FRAMES], axis=0) for i in range(count)])


def face_boxes(frames, count: int, models, progress: Callable[[int, int], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """[count, 4] float boxes (top, left, bottom, right) of the face in frames 0..count-1 (frames: rgb(i) ->
    [3, H, W] 0..1), with the detector and pose model `models` (find_face_models), one frame at a time;
    `progress(done, count)` after each frame. An InputError when no frame shows a face."""

    found = []
    for index in range(count):
        if should_stop is not None and should_stop():
            raise GenerationInterrupted(f"stopped while finding the face (frame {index + 1}/{count}); nothing was "
                                        "generated yet")
        found.append(frame_face_box(_uint8(frames.rgb(index)), models))
        if progress is not None:
            progress(index + 1, count)
    missing = sum(box is None for box in found)
    if missing == count:
        raise InputError(f"face_only: the person detector found no person with a face in any of the {count} source "
                         "frames. Paint the region to change and connect it as edit_mask (--edit-mask) instead")
    if missing:
        log.info("WanVideo InfiniteTalk: face_only found no face in %d of %d frames; their boxes are interpolated "
                 "from the nearest frames with a face", missing, count)
    return fill_and_smooth(found)


def box_mask(box, height: int, width: int, margin: float) -> torch.Tensor:
    """[height, width] float 0/1: the box enlarged by `margin` x its size on every side (the chin and the jaw move
    when talking; the hair and ears stay inside), clipped to the frame."""
    top, left, bottom, right = (float(v) for v in box)
    dy, dx = (bottom - top) * margin, (right - left) * margin
    y0, y1 = max(0, int(np.floor(top - dy))), min(height, int(np.ceil(bottom + dy)))
    x0, x1 = max(0, int(np.floor(left - dx))), min(width, int(np.ceil(right + dx)))
    mask = torch.zeros(height, width)
    mask[y0:y1, x0:x1] = 1.0
    return mask
