"""Speaker masks -> the model's `ref_target_masks` [3, lat_h, lat_w] (speaker 1, speaker 2, background).

As in the reference loop: one speaker gets three all-ones masks; two speakers
get either the user's masks or the default recipe (left and right halves with a
`face_scale` margin of 5 %), background = neither. Masks are made at the source
image's resolution, resized to cover + centre-cropped to the output size
(nearest), then nearest-resized to the latent grid and thresholded (> 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from .sizes import resize_and_crop_masks

FACE_SCALE = 0.05


def default_two_speaker_masks(src_h: int, src_w: int, face_scale: float = FACE_SCALE) -> torch.Tensor:
    """[2, src_h, src_w]: speaker 1 in the left half, speaker 2 in the right half (reference recipe)."""
    masks = torch.zeros(2, src_h, src_w)
    top, bottom = int(src_h * face_scale), int(src_h * (1 - face_scale))
    half = src_w // 2
    left0, left1 = int(half * face_scale), int(half * (1 - face_scale))
    right0, right1 = int(half * face_scale + half), int(half * (1 - face_scale) + half)
    masks[0, top:bottom, left0:left1] = 1
    masks[1, top:bottom, right0:right1] = 1
    return masks


def _as_mask(mask, name: str) -> torch.Tensor:
    mask = torch.as_tensor(mask).float()
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise InputError(f"{name} must be one mask [height, width] (a MASK with batch 1), got shape {tuple(mask.shape)}")
    return mask


def ref_target_masks(
    num_speakers: int,
    src_h: int,
    src_w: int,
    target_h: int,
    target_w: int,
    latent_h: int,
    latent_w: int,
    speaker_masks=None,
) -> torch.Tensor:
    """float32 [3, latent_h, latent_w] of 0/1 values."""
    if num_speakers <= 1:
        masks = torch.ones(3, src_h, src_w)
    elif num_speakers == 2:
        if speaker_masks is not None and any(m is not None for m in speaker_masks):
            if len(speaker_masks) != 2 or any(m is None for m in speaker_masks):
                raise InputError("connect both speaker masks (speaker 1 and speaker 2), or neither for the "
                                 "default left/right halves")
            m1, m2 = (_as_mask(m, f"speaker {i + 1} mask") for i, m in enumerate(speaker_masks))
            if m1.shape != m2.shape:
                raise InputError(f"the two speaker masks differ in size ({tuple(m1.shape)} vs {tuple(m2.shape)}); "
                                 "make them from the same image")
            if not (m1 > 0).any() or not (m2 > 0).any():
                raise InputError("a speaker mask is empty (all zero): paint the speaker's face region")
            pair = torch.stack([(m1 > 0).float(), (m2 > 0).float()])
        else:
            pair = default_two_speaker_masks(src_h, src_w)
        background = (pair.sum(0) == 0).float()
        masks = torch.cat([pair, background[None]], 0)
    else:
        raise InputError(f"InfiniteTalk handles one or two speakers, got {num_speakers}")
    masks = resize_and_crop_masks(masks, target_h, target_w)
    masks = F.interpolate(masks[None], size=(latent_h, latent_w), mode="nearest")[0]
    return (masks > 0).float()
