"""Face-only dubbing: only the masked region of the source video changes, every other pixel stays the source's.

Where the picture may change: an `edit_mask` (one mask for every frame, or one per source frame; 1 = change) or,
with `face_only`, a box around the face per frame (face_box.py: the WanAnimate preprocessing's person detector, pose
model and face box), enlarged by `face_margin`.

Inside the mask the model generates. Outside it the source is kept twice over:
1. at every denoising step the latent outside the (latent-resolution) mask is replaced by the source frames' latent
   noised to that step's level, `(1 - sigma) * source + sigma * noise` with the window's own noise (the standard
   masked-diffusion blend), and by the clean source latent after the last step, so the model sees and continues
   the real surroundings;
2. after decoding, the frames are composited onto the source pixels with the mask feathered inward by
   `mask_feather` pixels (zero outside the mask: those pixels are exactly the source's), the generated region's
   colour shifted to the source's in the feather band first so the seam does not show.

Output frame f uses source frame min(f, last): the output is as long as the new speech, as plain dubbing is.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..options import option
from .face_box import box_mask, face_boxes, find_face_models
from .sizes import resize_and_crop_masks

log = logging.getLogger(__name__)

TEMPORAL_STRIDE, SPATIAL_STRIDE = 4, 8


@dataclass
class EditMaskOptions:
    """The face-only dubbing options of the InfiniteTalk sampler (--face-only, ...), declared once."""

    face_only: bool = option(False, help=(
        "Dubbing (a source video): change only the face. The mask follows a box around the face in every frame, "
        "found by the WanAnimate preprocessing's person detector and pose model (yolov10m.onnx and ViTPose-H in "
        "models/detection, as the Animate Preprocess node; see docs/controls.md); hands, body, background and "
        "camera stay the source's pixels. A connected edit_mask is used instead (no model file needed). Off: the "
        "whole frame is generated (the reference's dubbing)."))
    face_margin: float = option(0.25, min=0.0, max=2.0, step=0.05, help=(
        "face_only: the face box is enlarged by this share of its size on every side (0.25: room for the jaw and "
        "chin to move)."))
    mask_feather: int = option(8, min=0, max=256, step=1, help=(
        "Face-only dubbing: width in pixels of the soft edge, inside the mask, over which the generated face blends "
        "into the source frame (0 = a hard edge)."))

    def normalize_edit_options(self) -> None:
        """Check and normalise these options in place (part of the owning settings' `validated()`)."""
        self.face_only = bool(self.face_only)
        self.face_margin = float(self.face_margin)
        if not math.isfinite(self.face_margin) or self.face_margin < 0:
            raise InputError(f"face_margin must be 0 or more, got {self.face_margin}")
        self.mask_feather = int(self.mask_feather)
        if self.mask_feather < 0:
            raise InputError(f"mask_feather must be 0 or more pixels, got {self.mask_feather}")


def _as_masks(edit_mask) -> torch.Tensor:
    """A MASK ([H, W], [N, H, W], or [N, H, W, 1]) as float [N, H, W] in 0..1."""
    masks = torch.as_tensor(edit_mask).detach().float().cpu()
    if masks.ndim == 4 and masks.shape[-1] in (1, 3, 4):
        masks = masks[..., 0]
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or 0 in masks.shape:
        raise InputError(f"edit_mask must be one mask [height, width] or one per frame [frames, height, width], got "
                         f"shape {tuple(masks.shape)}")
    if masks.max() > 1.0:  # 0..255 (a uint8 mask image)
        masks = masks / 255.0
    return masks.clamp(0.0, 1.0)


def check_edit_inputs(edit_mask, settings, source) -> torch.Tensor | None:
    """The cheap checks of `prepare_edit_region` (no face search): callers that load models first run these
    before. Returns the hard masks [N, H, W] (1 = change) of a given edit_mask."""
    face_only = bool(getattr(settings, "face_only", False))
    if edit_mask is None and not face_only:
        return None
    what = "edit_mask" if edit_mask is not None else "face_only"
    if not source.is_video:
        raise InputError(f"{what} is for dubbing: it keeps a source video's pixels outside the face, but the input "
                         "is one image. Connect the source video's frames (or --video), or remove the mask / "
                         "turn face_only off")
    if edit_mask is None:
        return None
    masks = _as_masks(edit_mask)
    if tuple(masks.shape[1:]) != (source.height, source.width):
        raise InputError(f"edit_mask is {masks.shape[2]}x{masks.shape[1]} but the source video is "
                         f"{source.width}x{source.height}: make the mask from the video's own frames (same size)")
    if masks.shape[0] not in (1, len(source)):
        raise InputError(f"edit_mask has {masks.shape[0]} frames: give one mask for every frame or one per source "
                         f"frame ({len(source)})")
    hard = masks > 0.5
    if not hard.any():
        raise InputError("edit_mask is empty (all zero): nothing may change, the output would be the source "
                         "video. Paint the region to change (white = change)")
    return hard.float()


def prepare_edit_region(edit_mask, settings, source, height: int, width: int, face_models=None,
                        progress=None, should_stop=None) -> "EditRegion | None":
    """The checked edit region of a run (None: the whole frame is generated). Every error comes here, before any
    denoising: a mask or face_only without a source video, a mask of another size or frame count, an all-zero
    mask, face_only without the detector's files (`face_models`, from face_box.find_face_models), no face found.
    An all-one mask is today's full-frame dubbing (None). A given mask wins over face_only. `progress(done, total)`
    follows the face search, frame by frame."""
    hard = check_edit_inputs(edit_mask, settings, source)
    if hard is not None:
        if bool(hard.all()):
            log.info("WanVideo InfiniteTalk: edit_mask covers every pixel: the whole frame is generated (as "
                     "without a mask)")
            return None
        return EditRegion(source, height, width, settings.mask_feather, masks=hard)
    if not getattr(settings, "face_only", False):
        return None
    if face_models is None:
        face_models = find_face_models([])  # names the files face_only needs and where they come from
    boxes = face_boxes(source, len(source), face_models, progress, should_stop)
    return EditRegion(source, height, width, settings.mask_feather, boxes=boxes, margin=settings.face_margin)


class EditRegion:
    """Per output frame: where it may change (at the output size), and the window-level blend / composite."""

    def __init__(self, source, height: int, width: int, feather: int, *, masks=None, boxes=None, margin=0.0):
        self.source, self.height, self.width, self.feather = source, height, width, int(feather)
        self.masks, self.boxes, self.margin = masks, boxes, float(margin)

    def source_index(self, frame: int) -> int:
        return min(int(frame), len(self.source) - 1)

    def key(self):
        """What the run key holds for the region (the masks, or the face boxes)."""
        return self.masks if self.masks is not None else torch.as_tensor(self.boxes)

    def frame_mask(self, frame: int) -> torch.Tensor:
        """[height, width] float 0/1 at the output size: 1 where output frame `frame` may change."""
        index = self.source_index(frame)
        if self.masks is not None:
            mask = self.masks[index if self.masks.shape[0] > 1 else 0]
        else:
            mask = box_mask(self.boxes[index], self.source.height, self.source.width, self.margin)
        return (resize_and_crop_masks(mask[None], self.height, self.width)[0] > 0.5).float()

    def source_pixels(self, frames: range) -> torch.Tensor:
        """[3, n, height, width] in [-1, 1]: the source frames at the output size (the last one past its end)."""
        return torch.cat([self.source.conditioning(self.source_index(f), self.height, self.width) for f in frames], 1)

    def window(self, window, noise: torch.Tensor, sigmas: torch.Tensor, encode) -> "WindowEdit":
        """This window's blend and composite; `encode(pixels [3, n, H, W])` is the VAE encode (latent [16, T, h, w]);
        sigmas: the schedule's noise levels per step, ending in 0 ([steps + 1])."""
        frames = range(window.start, window.start + window.length)
        pixels = self.source_pixels(frames)
        hard = torch.stack([self.frame_mask(f) for f in frames])
        latent = encode(pixels).float().to(noise.device)
        return WindowEdit(hard, feathered(hard, self.feather), pixels, latent, noise, sigmas)


def latent_mask(hard: torch.Tensor, latent_shape) -> torch.Tensor:
    """[n, H, W] pixel mask -> [T, h, w]: a latent cell may change where any of its pixels (in any of its frames:
    latent frame 0 = frame 0, latent frame k = frames 4k-3..4k) may, grown by one cell for context."""
    t, h, w = latent_shape
    groups = [hard[:1]] + [hard[4 * k - 3:4 * k + 1] for k in range(1, t)]
    per_frame = torch.stack([g.amax(0) for g in groups])  # [T, H, W]
    cells = F.adaptive_max_pool2d(per_frame[None], (h, w))[0]
    return F.max_pool2d(cells[None], 3, stride=1, padding=1)[0]


def feathered(hard: torch.Tensor, width: int) -> torch.Tensor:
    """[n, H, W] 0/1 -> soft 0..1 rising from 0 at the mask's edge to 1 about `width` pixels inside it, zero
    wherever `hard` is zero (eroded by half the width, then box-blurred by it). The width is capped at half the
    mask's smaller side so a small mask keeps a fully generated core."""
    rows, cols = hard.amax(2).sum(1), hard.amax(1).sum(1)  # per frame: the mask's height and width
    side = int(torch.minimum(rows, cols)[rows > 0].min()) if bool((rows > 0).any()) else 0
    radius = min(math.ceil(width / 2), side // 4)
    if radius <= 0:
        return hard.clone()
    k = 2 * radius + 1
    eroded = 1.0 - F.max_pool2d((1.0 - hard)[None], k, stride=1, padding=radius)[0]
    soft = F.avg_pool2d(eroded[None], k, stride=1, padding=radius, count_include_pad=False)[0]
    return soft * hard


class WindowEdit:
    """One window's masked-diffusion blend (`blend`, every step) and pixel composite (`composite`, after decoding)."""

    def __init__(self, hard, soft, source_pixels, source_latent, noise, sigmas):
        self.hard, self.soft, self.source_pixels = hard, soft, source_pixels
        self.source_latent, self.noise = source_latent, noise
        self.sigmas = sigmas.float()
        self.keep = 1.0 - latent_mask(hard, tuple(source_latent.shape[1:])).to(noise.device)  # 1 = the source's
        self.steps_blended = []  # the steps whose blend ran (what a test reads back)

    def blend(self, latent: torch.Tensor, step: int) -> torch.Tensor:
        """The latent at step `step` (sigma[step]) with the source, noised to that level, outside the mask."""
        sigma = float(self.sigmas[step])
        noised = (1.0 - sigma) * self.source_latent + sigma * self.noise
        self.steps_blended.append(step)
        return latent * (1.0 - self.keep) + noised * self.keep

    def composite(self, video: torch.Tensor) -> torch.Tensor:
        """[3, n, H, W] decoded frames in [-1, 1] -> the generated region over the source frames (feathered inward,
        colour-matched in the feather band); outside the mask exactly the source pixels."""
        src = self.source_pixels.to(video.device, video.dtype)
        soft = self.soft.to(video.device, video.dtype)[None]
        band = (self.hard.to(video.device) > 0) & (self.soft.to(video.device) < 1)  # the seam, inside the mask
        shifted = video.clone()
        for f in range(video.shape[1]):
            ring = band[f]
            if ring.any():
                offset = (src[:, f][:, ring] - video[:, f][:, ring]).mean(1)
                shifted[:, f] = video[:, f] + offset.view(3, 1, 1)
        return (soft * shifted.clamp(-1, 1) + (1.0 - soft) * src).clamp(-1, 1)
