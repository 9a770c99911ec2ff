"""Step caching: TeaCache decisions equal the reference's formula (hand-computed and on a recorded sequence of
a real model's modulated inputs), MagCache's rule, threshold 0 never skips, a skipped call adds the cached
residual, and batched rows decide independently."""
import numpy as np
import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.sampling.cache import (
    MAGCACHE_RATIOS,
    TEACACHE_COEFFICIENTS,
    CacheSettings,
    MagCache,
    StepCache,
    TeaCache,
    resolution_key,
)
from wanvideo.sampling.guidance import COND, DROP_TEXT, UNCOND
from wanvideo.sampling.passes import PassRunner
from wanvideo.sampling.schedules import FlowSolver


def test_teacache_hand_computed_case():
    # poly(x) = x: the accumulated sum is the sum of relative L1 changes. Inputs are constant tensors, so
    # rel(a -> b) = |b - a| / |a|: 1.0 -> 1.05: 0.05; -> 1.10: 0.047619; -> 1.10: 0; -> 1.21: 0.1; -> 1.21: 0.
    values = [1.0, 1.05, 1.10, 1.10, 1.21, 1.21]
    tea = TeaCache(threshold=0.12, start=1, end=10, coefficients=(0, 0, 0, 1, 0))
    decisions = [tea.should_compute("cond", i, torch.full((6, 4), v)) for i, v in enumerate(values)]
    # step 0: nothing before; 1: 0.05 < 0.12 skip; 2: 0.0976 skip; 3: 0.0976 skip; 4: 0.1976 compute (sum
    # restarts at 0); 5: 0 < 0.12 skip
    assert decisions == [True, False, False, False, True, False]
    # before `start` every call runs and the sum restarts: 3: 0 skip; 4: 0.1 skip; 5: 0.1 skip
    tea = TeaCache(threshold=0.12, start=3, end=10, coefficients=(0, 0, 0, 1, 0))
    assert [tea.should_compute("cond", i, torch.full((6, 4), v)) for i, v in enumerate(values)] == \
        [True, True, True, False, False, False]
    # after `end` every call runs again
    tea = TeaCache(threshold=0.12, start=1, end=2, coefficients=(0, 0, 0, 1, 0))
    assert [tea.should_compute("cond", i, torch.full((6, 4), v)) for i, v in enumerate(values)] == \
        [True, False, False, True, True, True]


def test_teacache_uses_the_reference_polynomial():
    # the 480p polynomial at a relative change of 0.001, evaluated by hand:
    # 2.57151496e5*1e-12 - 3.54229917e4*1e-9 + 1.40286849e3*1e-6 - 1.35890334e1*1e-3 + 1.32517977e-1
    by_hand = 2.57151496e-7 - 3.54229917e-5 + 1.40286849e-3 - 1.35890334e-2 + 1.32517977e-1
    assert np.polyval(TEACACHE_COEFFICIENTS["480p"], 0.001) == pytest.approx(by_hand, rel=1e-12)
    tea = TeaCache(threshold=0.2, start=1, end=10, coefficients=TEACACHE_COEFFICIENTS["480p"])
    a = torch.ones(6, 8)
    assert tea.should_compute("cond", 0, a)
    assert not tea.should_compute("cond", 1, a * 1.001)  # ~0.1204 < 0.2
    assert tea.should_compute("cond", 2, a * 1.001 * 1.001)  # ~0.2408 >= 0.2


def reference_teacache(e0s, steps, thresh, coefficients):
    """The reference's rule (multitalk_model.py, use_ret_steps): a counter over calls, 3 per step, the first
    5*3 calls always run; per pass an accumulator and the previous e0."""
    ret_steps, cutoff = 5 * 3, steps * 3
    acc, prev, decisions = {}, {}, []
    for cnt in range(steps * 3):
        name, e0 = cnt % 3, e0s[cnt // 3]
        if cnt < ret_steps or cnt >= cutoff:
            calc, acc[name] = True, 0
        else:
            acc[name] += np.poly1d(coefficients)(((e0 - prev[name]).abs().mean() / prev[name].abs().mean()).item())
            calc = not acc[name] < thresh
            if calc:
                acc[name] = 0
        prev[name] = e0.clone()
        decisions.append(calc)
    return decisions


@pytest.mark.parametrize("resolution", ["480p", "720p"])
def test_teacache_equals_the_reference_on_a_recorded_sequence(resolution):
    # a recorded sequence of modulated inputs: e0 drifting by 0..4 % a step, as between sampling steps
    g = torch.Generator().manual_seed(3)
    steps = 40
    e0s, e0 = [], torch.rand(6, 32, generator=g) + 0.5
    for _ in range(steps):
        e0s.append(e0)
        e0 = e0 * (1 + 0.04 * torch.rand(()).item()) + 0.001 * torch.randn(6, 32, generator=g)
    coefficients = TEACACHE_COEFFICIENTS[resolution]
    expected = reference_teacache(e0s, steps, 0.2, coefficients)
    threshold, start, end = CacheSettings("teacache").resolved(steps)
    tea = TeaCache(threshold, start, end, coefficients)
    ours = [tea.should_compute(name, i, e0s[i]) for i in range(steps) for name in (COND, DROP_TEXT, UNCOND)]
    assert ours == expected
    assert 0 < ours.count(False) < len(ours) - 15, "the sequence should exercise both decisions"


def test_magcache_hand_computed_case():
    # constant ratio 0.99 from step 1: product 0.99, 0.9801, 0.970299 -> error sums 0.01, 0.0299, 0.059601
    ratios = [0.99, 0.99] * 9
    mag = MagCache(threshold=0.05, start=1, end=9, k=5, ratios=ratios, steps=10)
    assert [mag.should_compute("cond", i) for i in range(8)] == [True, False, False, True, False, False, True, False]
    mag = MagCache(threshold=1.0, start=1, end=9, k=2, ratios=ratios, steps=10)  # K caps skips in a row
    assert [mag.should_compute("cond", i) for i in range(7)] == [True, False, False, True, False, False, True]


def test_magcache_resamples_its_40_step_curve_and_picks_the_cond_series():
    mag = MagCache(0.1, 0, 9, 2, MAGCACHE_RATIOS["480p"], steps=10)
    assert mag.ratios.shape == (10, 2)
    assert tuple(mag.ratios[0]) == (1.0, 1.0) and tuple(mag.ratios[-1]) == MAGCACHE_RATIOS["480p"][-2:]


def test_threshold_zero_never_skips_and_settings_are_checked():
    tea = TeaCache(0.0, 0, 10, (0, 0, 0, 0, -1))  # a polynomial that is always negative
    assert all(tea.should_compute("cond", i, torch.ones(3)) for i in range(5))
    mag = MagCache(0.0, 0, 9, 2, [1.0, 1.0] * 9, steps=10)
    assert all(mag.should_compute("cond", i) for i in range(10))
    with pytest.raises(InputError, match="step cache method must be one of"):
        CacheSettings("fastcache").validated()
    assert CacheSettings("magcache").resolved(40) == (0.12, 8, 39)
    assert CacheSettings("teacache", threshold=0.3, start_step=2, end_step=30).resolved(40) == (0.3, 2, 30)
    assert resolution_key(480, 832) == "480p" and resolution_key(720, 1280) == "720p"


def window_inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    common = dict(clip_fea=torch.randn(1, 257, cfg["clip_dim"], generator=g), y=torch.randn(1, 20, 2, 4, 4, generator=g))
    audio = torch.randn(1, 5, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"], generator=g)
    ctx, ctx_null = torch.randn(1, 4, cfg["text_dim"], generator=g), torch.randn(1, 4, cfg["text_dim"], generator=g)
    passes = {COND: dict(context=ctx, audio=audio, **common), DROP_TEXT: dict(context=ctx_null, audio=audio, **common),
              UNCOND: dict(context=ctx_null, audio=torch.zeros_like(audio), **common)}
    return torch.randn(1, 16, 2, 4, 4, generator=g), passes


def run_steps(model, passes, x, steps, batched, cache):
    runner = PassRunner(model, passes, batched=batched, cache=cache)
    solver = FlowSolver("euler", steps, 7.0)
    out = []
    for i in range(steps):
        out.append(runner(x, solver.timesteps[i:i + 1], i))
    return out


def test_skipped_calls_reuse_the_residual_and_batched_rows_decide_alone():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    x, passes = window_inputs(model)
    # MagCache with a curve where cond and uncond differ: rows of one batch take different decisions
    steps, ratios = 5, [0.999, 0.95] * 4

    def cache():
        c = StepCache(CacheSettings("magcache"), steps)
        c.decider = MagCache(0.02, 1, steps - 1, 2, ratios, steps=steps)
        return c

    seq_cache, bat_cache = cache(), cache()
    sequential = run_steps(model, passes, x, steps, False, seq_cache)
    batched = run_steps(model, passes, x, steps, True, bat_cache)
    # cond: steps 1, 2 skipped (error 0.001, 0.003), 3 runs (K = 2 in a row), 4 skipped; uncond: error 0.05 > 0.02
    assert seq_cache.skipped == bat_cache.skipped == {COND: 3}
    for a, b in zip(sequential, batched, strict=True):
        for name in a:
            assert (a[name] - b[name]).abs().max() < 1e-5
    # a skipped call is the head applied to (this call's tokens + the last computed call's block residual)
    solver = FlowSolver("euler", steps, 7.0)
    kwargs = passes[COND]
    h0, e_0, e0_0, state0 = model.embed(x, solver.timesteps[0:1], **kwargs)
    residual = model.run_blocks(h0, e0_0, state0) - h0
    h1, e_1, _, state1 = model.embed(x, solver.timesteps[1:2], **kwargs)
    assert torch.allclose(sequential[1][COND], model.finish(h1 + residual, e_1, state1)[0], atol=1e-6)
    assert not torch.allclose(sequential[1][UNCOND], model.finish(h1 + residual, e_1, state1)[0], atol=1e-3)
    assert "magcache skipped 3 of 15 model calls (cond 3, drop_text 0, uncond 0)" == seq_cache.summary()


def test_threshold_zero_cache_equals_no_cache():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    x, passes = window_inputs(model)
    plain = run_steps(model, passes, x, 4, True, None)
    for method in ("teacache", "magcache"):
        cache = StepCache(CacheSettings(method, threshold=0.0, start_step=0), 4)
        cached = run_steps(model, passes, x, 4, True, cache)
        assert cache.total_skipped == 0 and cache.total_calls == 12
        for a, b in zip(plain, cached, strict=True):
            assert all(torch.equal(a[n], b[n]) for n in a)


def test_cache_needs_a_model_with_blocks():
    with pytest.raises(InputError, match="set the cache method to none"):
        PassRunner(torch.nn.Identity(), {COND: {}}, cache=StepCache(CacheSettings("teacache"), 4))


def test_cache_is_refused_under_sequence_parallel():
    model = build_model(tiny_config())
    model.sequence_parallel = object()  # what enable_sequence_parallel sets
    with pytest.raises(InputError, match="sequence parallel"):
        StepCache.check_model(model)
