"""The speed options through the whole loop (tiny real models): a threshold-0 cache equals no cache, a resumed
cached run equals an uninterrupted one, batched guidance equals sequential, the log counts skipped calls per
window, and which options enter a run's resume key."""
import logging

import numpy as np
import pytest
import torch

from wanvideo.audio import AudioEmbeddings
from wanvideo.errors import InputError
from wanvideo.sampling import GenerationInterrupted, SamplerSettings, generate
from wanvideo.sampling.settings import key_settings
from wanvideo.tiny import tiny_models

FRAMES = 25  # window 17, motion 9: two windows


@pytest.fixture(scope="module")
def job():
    models = tiny_models(seed=0)
    gen = torch.Generator().manual_seed(3)
    embeddings = AudioEmbeddings(speakers=[torch.randn(FRAMES, 2, 32, generator=gen)], fps=25.0,
                                 waveform=torch.zeros(FRAMES * 640), sample_rate=16000)
    image = torch.rand(1, 40, 56, 3, generator=gen)
    return models, embeddings, image


def settings(**kw):
    base = dict(frame_window=17, motion_frames=9, steps=4, width=48, height=32, seed=42)
    base.update(kw)
    return SamplerSettings(**base)


def run(job, root, s, **kw):
    models, embeddings, image = job
    return generate(models.dit, models.vae, image, models.clip_fea, audio=embeddings, context=models.context,
                    context_null=models.context_null, settings=s, store_root=str(root), **kw)


def test_threshold_zero_cache_equals_no_cache_and_batched_equals_sequential(job, tmp_path):
    one = dict(max_frames=17, steps=3)  # one window
    plain = run(job, tmp_path / "plain", settings(guidance_batching="sequential", **one)).read_frames()
    batched = run(job, tmp_path / "batched", settings(guidance_batching="batched", **one)).read_frames()
    assert np.abs(plain.astype(int) - batched.astype(int)).max() <= 1  # float tolerance, then uint8 rounding
    zero = run(job, tmp_path / "zero", settings(guidance_batching="batched", cache_method="teacache",
                                               cache_threshold=0.0, cache_start_step=0, **one)).read_frames()
    assert np.array_equal(zero, batched)


def test_resumed_cached_run_equals_an_uninterrupted_one(job, tmp_path, caplog):
    s = settings(cache_method="magcache", cache_threshold=0.5, cache_start_step=1, steps=5)
    with caplog.at_level(logging.INFO, logger="wanvideo"):
        straight = run(job, tmp_path / "straight", s).read_frames()
    # steps 1, 2 skipped, 3 runs (at most K = 2 in a row), 4 skipped: 3 of 5 per pass, logged for each window
    assert caplog.text.count("magcache skipped 9 of 15 model calls (cond 3, drop_text 3, uncond 3)") == 2
    seen = []
    with pytest.raises(GenerationInterrupted, match="window 2/2"):  # stop 3 steps into window 2 (cache warm)
        run(job, tmp_path / "resumed", s, on_progress=seen.append,
            should_stop=lambda: seen[-1].window == 2 and seen[-1].step == 3)
    resumed = run(job, tmp_path / "resumed", s).read_frames()
    assert np.array_equal(resumed, straight)


def test_apg_changes_the_video_and_the_key_follows_the_options(job, tmp_path):
    s = settings()
    assert key_settings(s) == key_settings(settings(guidance_batching="sequential"))  # resumable after an OOM
    assert key_settings(s) != key_settings(settings(apg=True)) != key_settings(settings(cache_method="teacache"))
    assert "apg" not in key_settings(s) and "cache_method" not in key_settings(s)  # old runs keep their key
    one = dict(max_frames=17, steps=2)
    plain = run(job, tmp_path / "cfg", settings(**one)).read_frames()
    apg = run(job, tmp_path / "apg", settings(apg=True, apg_norm_threshold=0.5, **one)).read_frames()
    assert not np.array_equal(plain, apg)


def test_bad_speed_options_are_refused_before_any_work(job, tmp_path):
    with pytest.raises(InputError, match="cache_method .*must be one of"):
        run(job, tmp_path, settings(cache_method="deepcache"))
    with pytest.raises(InputError, match="guidance_batching .*must be one of"):
        run(job, tmp_path, settings(guidance_batching="parallel"))
    assert not any(tmp_path.iterdir())
