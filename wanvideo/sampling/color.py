"""Colour correction: pull each generated frame's Lab statistics toward the reference image's.

The reference (`match_and_blend_colors`) converts every frame and the reference
image to CIE Lab (scikit-image, D65, sRGB), moves each Lab channel's mean and
standard deviation to the reference's, converts back, clips to [0, 1] and blends
`(1 − strength)·frame + strength·corrected`. scikit-image is not a dependency of
the pack and the frames are already torch tensors (often on the GPU), so the
same standard sRGB <-> Lab formulas are written out here in float64, frame by frame.
"""
from __future__ import annotations

import torch

from ..errors import InputError

_RGB_TO_XYZ = torch.tensor([
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
], dtype=torch.float64)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[..., 3] sRGB in [0, 1] -> [..., 3] Lab (L 0..100)."""
    rgb = rgb.to(torch.float64)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _RGB_TO_XYZ.to(rgb.device).T / _WHITE_D65.to(rgb.device)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """[..., 3] Lab -> [..., 3] sRGB clipped to [0, 1]."""
    lab = lab.to(torch.float64)
    L, a, b = lab.unbind(-1)
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)  # scikit-image clips negative z the same way
    f = torch.stack([fx, fy, fz], dim=-1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787) * _WHITE_D65.to(lab.device)
    linear = xyz @ _XYZ_TO_RGB.to(lab.device).T
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0.0, 1.0)


# Frames converted to Lab at once: the reference works frame by frame; a block of frames gives the same numbers
# with far fewer small kernels (and no device sync per channel), while bounding the float64 copies' memory.
FRAMES_PER_BLOCK = 16


def match_and_blend_colors(frames: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """frames [3, T, H, W] in [-1, 1], reference [3, H, W] in [-1, 1] -> corrected frames [3, T, H, W] in [-1, 1].

    Per frame and Lab channel: (x - mean) * (std_ref / std) + mean_ref (the reference's mean when a frame's channel
    is flat), blended with the frame by `strength`.
    """
    strength = float(strength)
    if strength == 0.0:
        return frames
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"colour correction strength must be between 0 and 1, got {strength}")
    ref = ((reference.permute(1, 2, 0).to(torch.float64) + 1.0) / 2.0).clamp(0.0, 1.0)
    mean_ref, std_ref = lab_mean_std(rgb_to_lab(ref))
    out = torch.empty_like(frames)
    for first in range(0, frames.shape[1], FRAMES_PER_BLOCK):
        block = frames[:, first:first + FRAMES_PER_BLOCK]
        src = ((block.permute(1, 2, 3, 0).to(torch.float64) + 1.0) / 2.0).clamp(0.0, 1.0)  # [t, H, W, 3]
        lab = rgb_to_lab(src)
        mean_src, std_src = lab_mean_std(lab)
        flat = std_src == 0
        scaled = (lab - mean_src) * (std_ref / torch.where(flat, torch.ones_like(std_src), std_src)) + mean_ref
        corrected = torch.where(flat, mean_ref.expand_as(lab), scaled)
        blended = (1.0 - strength) * src + strength * lab_to_rgb(corrected)
        out[:, first:first + block.shape[1]] = (blended * 2.0 - 1.0).permute(3, 0, 1, 2).to(frames.dtype)
    return out


def lab_mean_std(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., H, W, 3] Lab -> each picture's per-channel mean and (population) standard deviation, [..., 1, 1, 3]."""
    return lab.mean(dim=(-3, -2), keepdim=True), lab.std(dim=(-3, -2), unbiased=False, keepdim=True)
