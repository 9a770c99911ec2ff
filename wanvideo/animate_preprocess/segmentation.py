"""Person masks for the replacement mode: SAM2 video segmentation (transformers), or the pose-hull fallback."""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError, ModelFileError
from .masks import SAM2_CHUNK, pose_hull_mask, sam2_chunks, sam2_prompts

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


_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Sam2Segmenter:
    """SAM2 through transformers, prompted as the official preprocessing: chunks of 400 frames, 4 key frames
    per chunk with 8 body points each (positive, one object); masks are the logits > 0 at frame size.

    Frames and points are prepared here as SAM2's processor does (square resize to the model's input size,
    ImageNet normalisation, point coordinates scaled alike), so only the model is needed: the processor
    class would pull in torchvision for what is a resize.
    """

    def __init__(self, model, device="cpu", dtype=None):
        import torch

        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        self.size = int(model.config.image_size)
        self.chunk = SAM2_CHUNK

    @classmethod
    def from_folder(cls, folder: str, device="cpu", dtype=None) -> "Sam2Segmenter":
        """Load a local transformers SAM2 folder (config.json + safetensors weights)."""
        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise ModelFileError(f"{folder} is not a transformers SAM2 folder (no config.json). Download one "
                                 "such as https://huggingface.co/facebook/sam2.1-hiera-large into models/sam2/.")
        from transformers import Sam2VideoModel

        model = Sam2VideoModel.from_pretrained(folder, use_safetensors=True).to(device).eval()
        log.info("WanAnimate preprocess: SAM2 masks from %s on %s", folder, device)
        return cls(model, device, dtype)

    def _pixels(self, frames: list[np.ndarray]):
        import cv2
        import torch

        resized = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for f in frames])
        pixels = (resized / 255.0 - np.array(_MEAN)) / np.array(_STD)
        return torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float32))

    def chunk_masks(self, frames: list[np.ndarray], frame_idx: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
        """Masks (uint8 [H,W] 0/1) of every frame of one chunk, prompted on its key frames."""
        import torch
        import torch.nn.functional as F
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        height, width = frames[0].shape[:2]
        session = Sam2VideoInferenceSession(
            video=self._pixels(frames), video_height=height, video_width=width, inference_device=self.device,
            inference_state_device=self.device, video_storage_device="cpu", dtype=self.dtype)
        obj_idx = session.obj_id_to_idx(1)
        scale = torch.tensor([self.size / width, self.size / height])
        with torch.inference_mode():
            for idx, pts in zip(frame_idx.tolist(), points, strict=True):
                coords = torch.from_numpy(pts.astype(np.float32)) * scale
                session.add_point_inputs(obj_idx, int(idx), {
                    "point_coords": coords[None, None], "point_labels": torch.ones(1, 1, len(pts), dtype=torch.int32)})
                session.remove_mask_inputs(obj_idx, int(idx))
                session.obj_with_new_inputs = [1]
                self.model(inference_session=session, frame_idx=int(idx))
            masks: dict[int, np.ndarray] = {}
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=0):
                logits = out.pred_masks[:1, :1].float().cpu()
                logits = F.interpolate(logits, (self.size, self.size), mode="bilinear", align_corners=False)
                logits = F.interpolate(logits, (height, width), mode="bilinear", align_corners=False)
                masks[int(out.frame_idx)] = (logits[0, 0] > 0.0).numpy().astype(np.uint8)
        missing = [i for i in range(len(frames)) if i not in masks]
        if missing:
            raise InputError(f"SAM2 gave no mask for frames {missing[:5]} of a chunk; the model folder may not "
                             "be a SAM2 video model.")
        return [masks[i] for i in range(len(frames))]

    def masks(self, frame_at: FrameAt, metas: list[dict], height: int, width: int) -> Iterator[np.ndarray]:
        prompts = sam2_prompts(metas, self.chunk)
        for (start, end), (frame_idx, points) in zip(sam2_chunks(len(metas), self.chunk), prompts, strict=True):
            frames = [frame_at(t) for t in range(start, end)]  # one chunk of frames at a time
            yield from self.chunk_masks(frames, frame_idx, points)
