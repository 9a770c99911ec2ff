"""Person masks for the replacement mode: SAM2 video segmentation (transformers), or the pose-hull fallback."""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError, ModelFileError
from .masks import pose_hull_mask, sam2_chunks, sam2_prompts

log = logging.getLogger("wanvideo")

FrameAt = Callable[[int], np.ndarray]


class PoseHullSegmenter:
    """No SAM2 weights: the hull of the points seen in each frame (coarser; dilation and grid still apply)."""

    def masks(self, frame_at: FrameAt, metas: list[dict], height: int, width: int) -> Iterator[np.ndarray]:
        log.warning("WanAnimate preprocess: no SAM2 model, so the replacement masks are pose hulls (the hull "
                    "of the body, hand and face points, dilated and gridded); they miss hair and loose "
                    "clothes. Put a SAM2 folder (e.g. sam2.1-hiera-large) in models/sam2 for real masks")
        for meta in metas:
            yield pose_hull_mask(meta, height, width)


class Sam2Segmenter:
    """SAM2 through transformers, prompted as the official preprocessing: chunks of 400 frames, 4 key frames
    per chunk with 8 body points each (positive, one object); masks are the logits > 0 at frame size."""

    def __init__(self, model, processor, device="cpu", dtype=None):
        import torch

        self.model, self.processor = model, processor
        self.device = device
        self.dtype = dtype or torch.float32

    @classmethod
    def from_folder(cls, folder: str, device="cpu", dtype=None) -> "Sam2Segmenter":
        """Load a local transformers SAM2 folder (config.json, weights, processor files)."""
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise ModelFileError(f"{folder} is not a transformers SAM2 folder (no config.json). Download one "
                                 "such as https://huggingface.co/facebook/sam2.1-hiera-large into models/sam2/.")
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        model = Sam2VideoModel.from_pretrained(folder).to(device).eval()
        return cls(model, Sam2VideoProcessor.from_pretrained(folder), device, dtype)

    def chunk_masks(self, frames: list[np.ndarray], frame_idx: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
        """Masks (uint8 [H,W] 0/1) of every frame of one chunk, prompted on its key frames."""
        import torch

        height, width = frames[0].shape[:2]
        session = self.processor.init_video_session(video=frames, inference_device=self.device,
                                                    dtype=self.dtype)
        with torch.inference_mode():
            for idx, pts in zip(frame_idx.tolist(), points, strict=True):
                self.processor.add_inputs_to_inference_session(
                    inference_session=session, frame_idx=int(idx), obj_ids=1,
                    input_points=[[pts.astype(np.float32).tolist()]], input_labels=[[[1] * len(pts)]])
                self.model(inference_session=session, frame_idx=int(idx))
            masks: dict[int, np.ndarray] = {}
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=0):
                logits = self.processor.post_process_masks([out.pred_masks], original_sizes=[[height, width]],
                                                           binarize=False)[0]
                masks[out.frame_idx] = (logits[0, 0] > 0.0).cpu().numpy().astype(np.uint8)
        missing = [i for i in range(len(frames)) if i not in masks]
        if missing:
            raise InputError(f"SAM2 gave no mask for frames {missing[:5]} of a chunk; the model folder may not "
                             "be a SAM2 video model.")
        return [masks[i] for i in range(len(frames))]

    def masks(self, frame_at: FrameAt, metas: list[dict], height: int, width: int) -> Iterator[np.ndarray]:
        prompts = sam2_prompts(metas)
        for (start, end), (frame_idx, points) in zip(sam2_chunks(len(metas)), prompts, strict=True):
            frames = [frame_at(t) for t in range(start, end)]  # one chunk of frames at a time
            yield from self.chunk_masks(frames, frame_idx, points)
