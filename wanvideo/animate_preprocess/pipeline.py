"""The two official preprocessing runs (animation, replacement), frame by frame.

Only small things are kept for the whole clip (keypoints, metas); each driving frame is decoded, used and
dropped, and every output frame goes to `sink(name, index, image)` as soon as it is made, so a long clip
needs no more memory than a short one. Without a sink the outputs are gathered into arrays.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from ..errors import InputError
from .face import FaceCropper
from .frames import frame_indices, padding_resize, resize_by_area
from .inputs import FrameSource, character_rgb
from .masks import background, replacement_mask
from .pose import estimate_poses, frame_keypoints
from .pose_meta import pose_metas_from_keypoints
from .render import render_pose, render_retargeted
from .retarget import retarget_pose

log = logging.getLogger("wanvideo")

Sink = Callable[[str, int, np.ndarray], None]
Progress = Callable[[str, int, int], None]


class _Collector:
    """Gathers sink output into arrays when the caller gave no sink."""

    def __init__(self):
        self.frames: dict[str, list[np.ndarray]] = {}

    def __call__(self, name: str, index: int, image: np.ndarray) -> None:
        self.frames.setdefault(name, []).append(image)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.stack(images) for name, images in self.frames.items()}


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _poses_and_faces(source: FrameSource, indices, detector_path, pose_path, sink: Sink, progress: Progress,
                     resize=None):
    """Pass 1: keypoints of every sampled frame, face crops sent out as they are cut."""
    kp2ds, cropper, no_person, size = [], None, 0, None
    for t, index in enumerate(indices):
        frame = source[index]
        if resize is not None:
            frame = resize(frame)
        size = frame.shape[:2]
        kps, found = frame_keypoints(frame, detector_path, pose_path, with_found=True)
        no_person += not found
        kp2ds.append(kps)
        if cropper is None:
            cropper = FaceCropper(size)
        meta = pose_metas_from_keypoints(kps[None], width=size[1], height=size[0])[0]
        sink("face", t, cropper(frame, meta))
        progress("pose", t + 1, len(indices))
    if no_person == len(indices):
        raise InputError("No person was found in any frame of the driving video; WanAnimate needs a clip of "
                         "one person (whole body or upper body) to follow.")
    if no_person:
        log.warning("WanAnimate preprocess: no person detected in %d of %d frames; the pose model looked at "
                    "the whole frame there (as the official preprocessing does)", no_person, len(indices))
    if cropper.fallbacks:
        log.warning("WanAnimate preprocess: no usable face in %d of %d frames; those frames reuse the last "
                    "face box", cropper.fallbacks, len(indices))
    metas = pose_metas_from_keypoints(np.stack(kp2ds), width=size[1], height=size[0])
    return metas, size


def _finish(result: dict, collector) -> dict:
    if collector is not None:
        result.update(collector.arrays())
    return result


def preprocess_animate(frames, video_fps: float, character, detector_path: str, pose_path: str,
                       resolution_area=(1280, 720), fps: float = 30, retarget: bool = True, *,
                       sink: Sink | None = None, progress: Progress | None = None) -> dict:
    """Animation mode: the driver's pose drawn at the character's size and the driver's face crops.

    Returns `{"pose", "face", "frame_indices", "metas", "character_meta", "character", "fps"}`; `pose` and
    `face` are uint8 arrays [T,H,W,3] unless a `sink` received them frame by frame.
    """
    progress = progress or _no_progress
    collector = _Collector() if sink is None else None
    sink = sink or collector
    refer = resize_by_area(character_rgb(character), resolution_area[0] * resolution_area[1], divisor=16)
    refer_meta = estimate_poses([refer], detector_path, pose_path)[0]
    source = FrameSource(frames)
    indices = frame_indices(len(source), video_fps, fps)
    metas, size = _poses_and_faces(source, indices, detector_path, pose_path, sink, progress)
    height, width = refer.shape[:2]
    if retarget:
        poses = retarget_pose(metas[0], refer_meta, metas)
        for t, pose in enumerate(poses):
            sink("pose", t, render_retargeted(pose, height, width))
            progress("render", t + 1, len(poses))
    else:
        for t, meta in enumerate(metas):
            sink("pose", t, padding_resize(render_pose(meta, size[0], size[1]), height, width))
            progress("render", t + 1, len(metas))
    return _finish({"frame_indices": indices, "metas": metas, "character_meta": refer_meta, "character": refer,
                    "fps": video_fps if fps == -1 else fps}, collector)


def preprocess_replace(frames, video_fps: float, character, detector_path: str, pose_path: str,
                       resolution_area=(1280, 720), fps: float = 30, *, k: int = 7, iterations: int = 3,
                       w_len: int = 1, h_len: int = 1, segmenter=None, sink: Sink | None = None,
                       progress: Progress | None = None) -> dict:
    """Replacement mode: pose (unretargeted), face, background and mask videos at the driving clip's size.

    `segmenter` makes the person masks (a `Sam2Segmenter`, or None for the pose-hull fallback, which is
    coarser and logged). Returns the animation keys plus `background` and `mask` (uint8 [T,H,W,3], 0/255).
    """
    from .segmentation import PoseHullSegmenter

    progress = progress or _no_progress
    collector = _Collector() if sink is None else None
    sink = sink or collector
    source = FrameSource(frames)
    indices = frame_indices(len(source), video_fps, fps)
    area = resolution_area[0] * resolution_area[1]

    def resize(frame):
        return resize_by_area(frame, area, divisor=16)

    metas, (height, width) = _poses_and_faces(source, indices, detector_path, pose_path, sink, progress, resize)
    refer = padding_resize(character_rgb(character), height, width)
    for t, meta in enumerate(metas):
        sink("pose", t, render_pose(meta, height, width))
        progress("render", t + 1, len(metas))
    segmenter = segmenter or PoseHullSegmenter()
    for t, mask in enumerate(segmenter.masks(lambda t: resize(source[indices[t]]), metas, height, width)):
        frame = resize(source[indices[t]])
        aug = replacement_mask(mask, k=k, iterations=iterations, w_len=w_len, h_len=h_len)
        sink("background", t, background(frame, aug))
        sink("mask", t, np.repeat(aug[:, :, None] * 255, 3, axis=2))
        progress("mask", t + 1, len(metas))
    return _finish({"frame_indices": indices, "metas": metas, "character_meta": None, "character": refer,
                    "fps": video_fps if fps == -1 else fps}, collector)
