"""Colour correction: standard sRGB <-> Lab, Lab statistics moved to the reference, blended by strength."""
import cv2
import numpy as np
import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.sampling import match_and_blend_colors
from wanvideo.sampling.color import lab_to_rgb, rgb_to_lab


def test_lab_conversion_is_the_standard_one_and_invertible():
    img = np.random.default_rng(0).random((16, 24, 3)).astype(np.float32)
    ours = rgb_to_lab(torch.from_numpy(img)).numpy()
    assert np.abs(ours - cv2.cvtColor(img, cv2.COLOR_RGB2Lab)).max() < 0.5  # OpenCV's float approximation
    assert np.abs(lab_to_rgb(torch.from_numpy(ours)).numpy() - img).max() < 1e-9


def test_full_strength_gives_each_frame_the_reference_lab_statistics():
    gen = torch.Generator().manual_seed(0)
    reference = torch.rand(3, 20, 30, generator=gen) * 0.6 - 0.5  # darkish
    frames = torch.rand(3, 4, 20, 30, generator=gen) * 0.5 + 0.3  # bright, washed out
    out = match_and_blend_colors(frames, reference, 1.0)
    ref_lab = rgb_to_lab((reference.permute(1, 2, 0).double() + 1) / 2)
    for t in range(4):
        lab = rgb_to_lab((out[:, t].permute(1, 2, 0).double() + 1) / 2)
        # clipping to the RGB gamut after the transfer leaves small differences
        assert torch.allclose(lab.mean((0, 1)), ref_lab.mean((0, 1)), atol=1.5)
        assert torch.allclose(lab.std((0, 1), unbiased=False), ref_lab.std((0, 1), unbiased=False), atol=1.5)


def test_strength_blends_linearly_and_zero_is_identity():
    gen = torch.Generator().manual_seed(1)
    reference, frames = torch.rand(3, 8, 8, generator=gen) * 2 - 1, torch.rand(3, 2, 8, 8, generator=gen) * 2 - 1
    assert match_and_blend_colors(frames, reference, 0.0) is frames
    full = match_and_blend_colors(frames, reference, 1.0)
    half = match_and_blend_colors(frames, reference, 0.5)
    assert torch.allclose(half, (frames + full) / 2, atol=1e-5)
    with pytest.raises(InputError, match="between 0 and 1"):
        match_and_blend_colors(frames, reference, 1.5)
