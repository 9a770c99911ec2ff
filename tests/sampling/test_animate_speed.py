"""WanAnimate with the InfiniteTalk sampler's speed options: batched guidance passes give the frames of sequential
ones with half the forwards, a step cache at threshold 0 changes nothing, a cache that skips says so and a resumed
cached run equals an uninterrupted one, APG guides the two passes; defaults leave the run key as it was."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sampling_fakes import FakeVAE

from wanvideo.errors import InputError
from wanvideo.model import build_model
from wanvideo.options import options_of
from wanvideo.sampling.animate import AnimateSettings, _run_key, generate_animate, plan_animate
from wanvideo.sampling.cache import CacheOptions
from wanvideo.sampling.guidance_settings import GuidanceOptions
from wanvideo.sampling.settings import GenerationInterrupted, key_settings

# one 13-frame clip per 13 frames (refert 1: 25 frames = 2 clips), 32x48 output, 2 steps, text + face guidance
FAST = dict(clip_len=13, steps=2, width=32, height=48, cfg=2.5)
# smaller than the tiny preset (these tests run the loop 20 times): one face block, 16x16 faces
SMALL = dict(model_type="animate", dim=32, ffn_dim=64, num_heads=2, num_layers=5, text_len=8, text_dim=16, freq_dim=16,
             clip_dim=16, face_encoder_width=4, face_encoder_num_heads=2, motion_encoder_dim=16,
             motion_encoder={"size": 16, "style_dim": 8, "motion_dim": 4, "channels": {16: 4, 8: 8, 4: 8}})


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(4)
    return SimpleNamespace(dit=build_model(SMALL), vae=FakeVAE(record=False),  # lossless: frames show the DiT's work
                           context=torch.randn(1, 5, 16, generator=g), context_null=torch.randn(1, 7, 16, generator=g),
                           clip_fea=torch.randn(1, 257, 16, generator=g))


def _shrunk(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N, H, W, 3] in 0..1 at the size the loop would resize to anyway (the resizing has its own tests)."""
    return F.interpolate(frames.permute(0, 3, 1, 2), size=(height, width), mode="area").permute(0, 2, 3, 1)


@pytest.fixture(scope="module")
def driving():
    from testlib import MEDIA

    from wanvideo.app.pipeline import read_image, read_video

    pose, face = (torch.from_numpy(read_video(str(MEDIA / f"animate_{n}_3s.mp4"))[0][:25]).float() / 255
                  for n in ("pose", "face"))
    return dict(image=_shrunk(read_image(str(MEDIA / "portrait_480x832.png"))[None], 48, 32)[0],
                pose=_shrunk(pose, 48, 32), face=_shrunk(face, 16, 16))


class Counting(torch.nn.Module):
    """The small WanAnimate DiT, counting forwards and the batch rows that ran the blocks (what caching skips)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config, self.main_device, self.compute_dtype = model.config, model.main_device, model.compute_dtype
        self.supports_batched_passes = self.supports_step_cache = True
        self.time_modulation = model.time_modulation
        self.block_swap = self.sequence_parallel = None
        self.forwards = self.block_rows = 0
        self.running = False  # the inner model is shared: count only the blocks of this wrapper's calls
        model.blocks[0].register_forward_pre_hook(self._count_rows)

    def _count_rows(self, block, args):
        if self.running:
            self.block_rows += args[0].shape[0]

    def forward(self, x, t, step_cache=None, **kwargs):
        self.forwards += 1
        self.running = True
        try:
            return self.inner(x, t, step_cache=step_cache, **kwargs)
        finally:
            self.running = False


def _run(tiny, driving, root, model=None, frames=13, **settings):
    return generate_animate(model or tiny.dit, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"],
                            driving["face"], context=tiny.context, context_null=tiny.context_null,
                            settings=AnimateSettings(**{**FAST, "max_frames": frames, **settings}), store_root=str(root))


def test_batched_guidance_equals_sequential_with_half_the_forwards(tiny, driving, tmp_path):
    sequential, batched = Counting(tiny.dit), Counting(tiny.dit)
    a = _run(tiny, driving, tmp_path / "seq", sequential, frames=25, guidance_batching="sequential").read_frames()
    b = _run(tiny, driving, tmp_path / "batch", batched, frames=25, guidance_batching="batched").read_frames()
    clips, steps = 2, FAST["steps"]
    assert sequential.forwards == 2 * clips * steps and batched.forwards == clips * steps
    assert a.shape == b.shape == (25, 48, 32, 3) and a.std() > 1.0
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float tolerance, seen through uint8 rounding


def test_auto_batches_unless_block_swap_is_on(tiny, driving, tmp_path, caplog):
    model = Counting(tiny.dit)
    _run(tiny, driving, tmp_path / "auto", model)
    assert model.forwards == FAST["steps"]
    model.forwards, model.block_swap = 0, object()  # low VRAM: the passes go one by one
    with caplog.at_level(logging.INFO):
        _run(tiny, driving, tmp_path / "swap", model)
    assert model.forwards == 2 * FAST["steps"] and "block swap is on" in caplog.text


def test_cache_at_threshold_zero_equals_no_cache(tiny, driving, tmp_path):
    plain = _run(tiny, driving, tmp_path / "plain").read_frames()
    for method in ("teacache", "magcache"):
        model = Counting(tiny.dit)
        cached = _run(tiny, driving, tmp_path / method, model, cache_method=method, cache_threshold=0.0,
                      cache_start_step=0).read_frames()
        np.testing.assert_array_equal(cached, plain)
        assert model.block_rows == 2 * FAST["steps"]  # nothing skipped


def test_skipping_cache_saves_block_runs_and_says_so(tiny, driving, tmp_path, caplog):
    model = Counting(tiny.dit)
    with caplog.at_level(logging.INFO):
        frames = _run(tiny, driving, tmp_path, model, steps=4, cache_method="magcache", cache_threshold=10.0,
                      cache_start_step=1).read_frames()
    # steps 1 and 2 skipped in both passes (MagCache: at most K=2 in a row), steps 0 and 3 computed
    assert model.block_rows == 2 * 2
    assert "WanAnimate: clip 1/1" in caplog.text and "magcache skipped 4 of 8 model calls (cond 2, uncond 2)" in caplog.text
    assert np.isfinite(frames).all() and frames.std() > 1.0


def test_resumed_cached_run_equals_an_uninterrupted_one(tiny, driving, tmp_path):
    cache = dict(steps=4, cache_method="magcache", cache_threshold=10.0, cache_start_step=1)
    whole = _run(tiny, driving, tmp_path / "whole", frames=25, **cache).read_frames()
    model, finished = Counting(tiny.dit), []
    with pytest.raises(GenerationInterrupted, match="clip 2/2"):
        generate_animate(model, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
                         context=tiny.context, context_null=tiny.context_null,
                         settings=AnimateSettings(**{**FAST, **cache, "max_frames": 25}), store_root=str(tmp_path / "run"),
                         should_stop=lambda: bool(finished), on_window_done=lambda i, store: finished.append(i))
    model.block_rows = 0
    resumed = _run(tiny, driving, tmp_path / "run", model, frames=25, **cache)
    assert model.block_rows == 2 * 2  # clip 2 only, with its own fresh cache (same skips as in the whole run)
    np.testing.assert_array_equal(resumed.read_frames(), whole)


def test_apg_guides_the_two_passes(tiny, driving, tmp_path):
    cfg = _run(tiny, driving, tmp_path / "cfg").read_frames()
    apg = _run(tiny, driving, tmp_path / "apg", apg=True).read_frames()
    assert apg.shape == cfg.shape and np.abs(apg.astype(int) - cfg.astype(int)).max() > 0


def test_speed_settings_are_checked_and_only_frame_deciding_ones_enter_the_run_key(tiny, driving):
    with pytest.raises(InputError, match="guidance_batching .*must be one of"):
        AnimateSettings(guidance_batching="fast").validated()
    with pytest.raises(InputError, match="cache_method"):
        AnimateSettings(cache_method="fastcache").validated()
    speed = {*options_of(GuidanceOptions), *options_of(CacheOptions)}
    assert not set(key_settings(AnimateSettings().validated())) & speed  # old stores still resume

    def key(**speed):
        s = AnimateSettings(**{**FAST, **speed}).validated()
        plan = plan_animate(tiny.dit, driving["image"], tiny.clip_fea, driving["pose"], driving["face"], None, None,
                            tiny.context, tiny.context_null, s)
        return _run_key(tiny.dit, tiny.vae, plan, s)

    assert key(guidance_batching="sequential") == key()  # same frames within float tolerance: a rerun resumes
    assert key(cache_method="teacache") != key() and key(apg=True) != key()
