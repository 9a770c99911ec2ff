"""Step caching: TeaCache decisions equal the reference's formula (hand-computed and on a recorded sequence of
a real model's modulated inputs), MagCache equals its authors' rule, threshold 0 never skips, a skipped call adds
the cached residual, batched rows decide independently, and a window's residuals go with its cache."""
import gc

import numpy as np
import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.model.step_residuals import StepCachePlanError
from wanvideo.sampling.cache import (
    MAGCACHE_RATIOS,
    TEACACHE_COEFFICIENTS,
    TEACACHE_START,
    TEACACHE_THRESHOLD,
    CacheSettings,
    MagCache,
    StepCache,
    TeaCache,
    magcache_retention,
    relative_l1,
    resolution_key,
)
from wanvideo.sampling.guidance import COND, DROP_TEXT, UNCOND
from wanvideo.sampling.passes import PassRunner
from wanvideo.sampling.schedules import FlowSolver
from wanvideo.tiny import smooth_time_embedding


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


def reference_magcache(ratios, steps, thresh, k, retention=0.2):
    """The MagCache authors' rule (MagCache4Wan2.1): a counter over calls, cond and uncond alternating; the first
    int(2 * steps * retention) calls always run; per parity a ratio product, an error sum and a skip count."""
    calibrated = np.array([1.0, 1.0] + list(ratios))
    mag = np.concatenate([nearest(calibrated[0::2], steps)[:, None], nearest(calibrated[1::2], steps)[:, None]],
                         axis=1).reshape(-1)
    ratio, err, skipped, decisions = [1.0, 1.0], [0.0, 0.0], [0, 0], []
    for cnt in range(2 * steps):
        p, skip = cnt % 2, False
        if cnt >= int(2 * steps * retention):
            ratio[p] *= mag[cnt]
            skipped[p] += 1
            err[p] += abs(1 - ratio[p])
            if err[p] < thresh and skipped[p] <= k:
                skip = True
            else:
                ratio[p], err[p], skipped[p] = 1.0, 0.0, 0
        decisions.append(not skip)
    return decisions


def nearest(values, target):
    scale = (len(values) - 1) / (target - 1)
    return values[np.round(np.arange(target) * scale).astype(int)]


@pytest.mark.parametrize("steps", [8, 13, 40])
def test_magcache_equals_the_authors_rule_including_its_retention_in_calls(steps):
    # 8 steps keep int(3.2) = 3 calls: the uncond pass may skip at step 1, the cond pass only from step 2
    threshold, start, end = CacheSettings("magcache").resolved(steps)
    ours = StepCache(CacheSettings("magcache"), steps).decider
    decisions = [ours.should_compute(name, i) for i in range(steps) for name in (COND, UNCOND)]
    assert decisions == reference_magcache(MAGCACHE_RATIOS["480p"], steps, 0.12, 2)
    assert decisions.count(False) > 0
    assert magcache_retention(8) == (2, 1) and magcache_retention(40) == (8, 8) and start == magcache_retention(steps)[0]


def test_a_trained_like_time_embedding_moves_as_teacache_expects_and_gets_skips():
    # Random weights: the block modulation jumps by ~30 % a step and TeaCache never skips; with the low-pass
    # init the per-step change is what the reference's polynomial was fitted on (< ~4 %) and calls are skipped.
    solver = FlowSolver("euler", 40, 7.0)

    def step_changes(model):
        _, e0 = model.time_modulation(solver.timesteps[:40], 40)
        return np.array([relative_l1(e0[i], e0[i - 1]) for i in range(1, 40)])

    torch.manual_seed(0)
    model = build_model(tiny_config())
    random_change = step_changes(model)
    smooth_change = step_changes(smooth_time_embedding(model))
    assert np.median(random_change) > 0.1
    assert 0.0005 < np.median(smooth_change) < 0.02 and smooth_change.max() < 0.05
    for changes, skips in ((random_change, False), (smooth_change, True)):
        tea = TeaCache(TEACACHE_THRESHOLD, TEACACHE_START, 39, TEACACHE_COEFFICIENTS["480p"])
        e0 = torch.ones(6, 4)
        decisions = [tea.should_compute(COND, 0, e0)]
        for i, change in enumerate(changes, start=1):  # constant tensors: relative L1 = the step's change
            e0 = e0 * (1 + change)
            decisions.append(tea.should_compute(COND, i, e0))
        assert (decisions.count(False) > 10) is skips


def test_block_residuals_follow_the_plan_and_the_cache_releases_them():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    x, passes = window_inputs(model)
    with pytest.raises(StepCachePlanError, match="skipped before any computed call"):
        model(x, torch.tensor([900.0]), **passes[COND], step_cache=("k", (COND,), (False,)))
    cache = StepCache(CacheSettings("magcache", threshold=1.0, start_step=1), 3)
    run_steps(model, passes, x, 3, True, cache)
    assert cache.total_skipped > 0 and set(model.step_residuals.residuals) == {COND, DROP_TEXT, UNCOND}
    assert model.step_residuals.key == cache.key
    del cache
    gc.collect()
    assert model.step_residuals.residuals == {}  # the window's residuals go with its cache


def test_cache_needs_a_model_that_follows_a_plan():
    from wanvideo.model.dit import WanInfiniteTalkModel

    class OwnForward(WanInfiniteTalkModel):  # a variant whose forward does not take a step cache's plan
        def forward(self, x, t, context, clip_fea, y):
            return super().forward(x, t, context, clip_fea, y)

    with pytest.raises(InputError, match="set the cache method to none"):
        StepCache.check_model(OwnForward(tiny_config()))
    model = build_model(tiny_config())
    model.sequence_parallel = object()  # what enable_sequence_parallel sets: no longer refused
    StepCache.check_model(model)


def test_each_reference_size_picks_its_own_calibration():
    # The reference picks TeaCache's polynomial by its size option (infinitetalk-480 / -720); we pick by pixel count,
    # which agrees on every size of both buckets.
    from wanvideo.sampling.sizes import ASPECT_BUCKETS

    for bucket, sizes in ASPECT_BUCKETS.items():
        assert {resolution_key(h, w) for h, w in sizes.values()} == {bucket}
