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


class _DriftingVAE:
    """The lossless block VAE whose decoder warms the picture a little more on every call (colour drift)."""

    def __init__(self):
        from sampling_fakes import FakeVAE

        self.codec = FakeVAE(record=False)
        self.calls = 0

    def encode(self, video):
        return self.codec.encode(video)

    def decode(self, latent):
        self.calls += 1
        video = self.codec.decode(latent)
        shift = torch.tensor([0.08, 0.02, -0.08]).view(3, 1, 1, 1)
        return (video + shift).clamp(-1, 1)

    def fingerprint(self):
        return f"drifting-{id(self)}"


def _hold_first_frame():
    """A velocity that lands every frame of the window on its first latent frame (a still picture)."""
    from sampling_fakes import FakeVAE

    codec = FakeVAE(record=False)

    def velocity(x, t, context, clip_fea, y, audio, masks):
        first = codec.decode(x[0, :, :1])[:, :1]  # [3, 1, H, W]
        frames = 1 + 4 * (x.shape[2] - 1)
        x0 = codec.encode(first.expand(-1, frames, -1, -1).contiguous())[None]
        return (x - x0) / (t.view(-1, 1, 1, 1, 1).float() / 1000.0)

    return velocity


def _lab_mean_distance(store, reference_rgb01):
    ref = rgb_to_lab(reference_rgb01.double()).mean((0, 1))
    frames = torch.from_numpy(np.stack(list(store.iter_frames()))).double() / 255.0
    return float((rgb_to_lab(frames[-8:]).mean((0, 1, 2)) - ref).norm())


def test_default_colour_correction_pulls_a_drifting_run_back_to_the_image_colours(tmp_path):
    from sampling_fakes import CONFIG, FakeDiT

    from wanvideo.sampling import SamplerSettings, generate

    assert SamplerSettings().color_correction == 1.0
    gen = torch.Generator().manual_seed(4)
    blocks = torch.rand(1, 4, 6, 3, generator=gen) * 0.6 + 0.2  # 8x8-constant blocks: the codec is lossless
    image = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # [1, 32, 48, 3]
    config = dict(CONFIG, audio_adapter=False)
    distances = {}
    for strength in (None, 0.0):  # None: the default
        extra = {} if strength is None else {"color_correction": strength}
        s = SamplerSettings(width=48, height=32, frame_window=9, motion_frames=5, steps=1, cfg=1.0, max_frames=41,
                            **extra)
        store = generate(FakeDiT(_hold_first_frame(), record=False, config=config), _DriftingVAE(), image,
                         torch.zeros(1, 257, CONFIG["clip_dim"]), settings=s,
                         store_root=str(tmp_path / f"run_{strength}"))
        distances[strength] = _lab_mean_distance(store, image[0])
    # Without correction the drift compounds window after window (motion frames carry it on); the default
    # correction keeps the last frames' mean colour close to the image's.
    assert distances[0.0] > 15.0
    assert distances[None] < distances[0.0] / 4


def test_a_flat_frame_takes_the_reference_mean_colour_and_blocks_of_frames_change_nothing():
    """A one-colour frame (a fade to grey) has no spread to scale: it becomes the reference's mean colour, whatever
    rounding leaves in its Lab spread; frames are corrected in blocks, each as if alone."""
    gen = torch.Generator().manual_seed(3)
    reference = torch.rand(3, 24, 32, generator=gen) * 2 - 1
    frames = torch.rand(3, 21, 24, 32, generator=gen) * 2 - 1
    frames[:, 5] = 0.2
    out = match_and_blend_colors(frames, reference, 1.0)
    ref_lab = rgb_to_lab(((reference.permute(1, 2, 0).double() + 1) / 2))
    mean_colour = lab_to_rgb(ref_lab.mean(dim=(0, 1))) * 2 - 1
    assert torch.allclose(out[:, 5], mean_colour.float()[:, None, None].expand(3, 24, 32), atol=1e-5)
    for t in (0, 17, 20):  # first block, second block, last partial block
        alone = match_and_blend_colors(frames[:, t:t + 1], reference, 1.0)
        assert torch.allclose(out[:, t:t + 1], alone, atol=1e-6)
