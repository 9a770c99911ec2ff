"""audio_scale through the sampler: every guidance pass gets it (batched or not), the step cache scales the same
audio term, the run key changes with it, 1.0 keeps today's key and numbers."""
import numpy as np
import pytest
import torch
from test_step_cache import run_steps, window_inputs

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.cache import CacheSettings, StepCache
from wanvideo.tiny import tiny_models

SETTINGS = dict(width=48, height=32, frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0)


@pytest.fixture(scope="module")
def models():
    return tiny_models(seed=0)


def _embeds(models, frames=20):
    from wanvideo.audio import AudioEmbeddings

    cfg = models.dit.config
    g = torch.Generator().manual_seed(3)
    return AudioEmbeddings(speakers=[torch.randn(frames, cfg["audio_layers"], cfg["audio_channels"], generator=g)],
                           fps=25.0, waveform=torch.zeros(frames * 640), sample_rate=16000)


class Recording(torch.nn.Module):
    """The tiny DiT, recording the audio_scale of every forward."""

    def __init__(self, dit):
        super().__init__()
        self.dit = dit
        self.config, self.main_device = dit.config, dit.main_device
        self.supports_batched_passes = True
        self.scales = []

    def forward(self, x, t, **kwargs):
        self.scales.append((x.shape[0], kwargs.get("audio_scale", "absent")))
        return self.dit(x, t, **kwargs)


def _run(models, tmp_path, dit, **settings):
    image = torch.rand(1, 32, 48, 3, generator=torch.Generator().manual_seed(1))
    return generate(dit, models.vae, image, models.clip_fea, audio=_embeds(models), context=models.context,
                    context_null=models.context_null, store_root=str(tmp_path),
                    settings=SamplerSettings(**SETTINGS, **settings))


@pytest.mark.parametrize("batching", ["batched", "sequential"])
def test_every_pass_of_every_step_gets_the_scale(models, tmp_path, batching):
    dit = Recording(models.dit)
    _run(models, tmp_path, dit, audio_scale=1.5, guidance_batching=batching)
    assert dit.scales and all(scale == 1.5 for _, scale in dit.scales)
    rows = sum(b for b, _ in dit.scales)
    assert rows == 2 * 2 * 3  # 2 windows x 2 steps x (cond, drop_text, uncond)


def test_scale_one_is_todays_run_and_other_scales_are_another_run(models, tmp_path):
    dit = Recording(models.dit)
    _run(models, tmp_path / "c", dit, audio_scale=1.0)
    assert dit.scales and all(scale == "absent" for _, scale in dit.scales)  # 1.0: the model's calls are today's
    today = _run(models, tmp_path / "a", models.dit)
    one = _run(models, tmp_path / "b", models.dit, audio_scale=1.0)
    assert np.array_equal(today.read_frames(), one.read_frames())
    assert today.path.split("/")[-1] == one.path.split("/")[-1]  # same run key: an older run still resumes
    louder = _run(models, tmp_path / "a", models.dit, audio_scale=2.0)
    assert louder.path != today.path  # not resumed from the 1.0 run
    assert not np.array_equal(today.read_frames(), louder.read_frames())


def test_bad_scale_is_refused_before_any_work(models, tmp_path):
    with pytest.raises(InputError, match="audio_scale"):
        _run(models, tmp_path, models.dit, audio_scale=float("inf"))
    assert not any(tmp_path.iterdir())


def test_step_cache_scales_the_computed_calls_like_the_plain_run():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    x, passes = window_inputs(model)
    scaled = {name: dict(kwargs, audio_scale=2.0) for name, kwargs in passes.items()}
    plain = run_steps(model, scaled, x, 4, True, None)
    cache = StepCache(CacheSettings("teacache", threshold=0.0, start_step=0), 4)
    cached = run_steps(model, scaled, x, 4, True, cache)
    for a, b in zip(plain, cached, strict=True):
        assert all(torch.equal(a[n], b[n]) for n in a)
    unscaled = run_steps(model, passes, x, 4, True, None)
    assert (plain[0]["cond"] - unscaled[0]["cond"]).abs().max() > 1e-4
