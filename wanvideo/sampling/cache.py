"""Step caching: skip the transformer blocks of a model call when its input barely changed since the last
computed one, and add that call's cached residual (blocks' output minus input) instead.

Two methods, both off by default (as in the reference):

* **TeaCache** as the reference implements it for InfiniteTalk (`multitalk_model.py`, `teacache_init` with
  `use_ret_steps`): per guidance pass, the relative L1 change of the blocks' time modulation `e0` since
  the previous step is rescaled by a polynomial fitted for the 480p or 720p model and accumulated; a call
  is skipped while the sum stays below the threshold (reference default 0.2); the sum restarts after
  every computed call. The first 5 steps always run (the reference's retention steps); the last step may be
  skipped (the reference's cutoff with retention steps is the end of the run). Passes are told apart by name,
  where the reference counts calls modulo 3 (which mixes the passes up when text guidance is 1 and a step has two).
* **MagCache** (Ma et al. 2025, MagCache4Wan2.1): per pass, the calibrated magnitude ratios of successive
  residuals of Wan2.1 I2V 14B are multiplied up; a call is skipped while the accumulated error
  sum |1 - ratio product| stays below the threshold (default 0.12) and at most K (default 2) calls in a
  row are skipped. The first 20 % of the calls always run (the authors count cond and uncond calls alternating,
  so with an odd count the cond pass starts one step later).

Threshold 0 never skips (the reference's 720p polynomial is negative for tiny changes, so its `sum < 0` test
could still skip). A cache lives for one window (a new `StepCache` per window), so nothing carries
over between windows or across a resume. The decisions depend only on the timestep (TeaCache: the time
modulation; MagCache: the step), so under sequence parallel rank 0 makes them and sends them with each call;
every rank keeps the cached residuals of its own share of the tokens.
"""
from __future__ import annotations

import logging
import math
import uuid
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..options import option

log = logging.getLogger(__name__)

CACHE_METHODS = ("none", "teacache", "magcache")

# TeaCache polynomials of the reference (e0 input, i.e. use_ret_steps=True), highest power first.
TEACACHE_COEFFICIENTS = {
    "480p": (2.57151496e05, -3.54229917e04, 1.40286849e03, -1.35890334e01, 1.32517977e-01),
    "720p": (8.10705460e03, 2.13393892e03, -3.72934672e02, 1.66203073e01, -4.17769401e-02),
}
TEACACHE_THRESHOLD = 0.2  # generate_infinitetalk.py --teacache_thresh default
TEACACHE_START = 5  # the reference's retention steps (ret_steps = 5 calls per pass)

# MagCache magnitude ratios of Wan2.1 I2V 14B calibrated at 40 steps (cond, uncond) per step; step 0 has none.
_MAG_480P = (
    0.98783, 0.98993, 0.97559, 0.97593, 0.98311, 0.98319, 0.98202, 0.98225, 0.9888, 0.98878, 0.98762, 0.98759,
    0.98957, 0.98971, 0.99052, 0.99043, 0.99383, 0.99384, 0.98857, 0.9886, 0.99065, 0.99068, 0.98845, 0.98847,
    0.99057, 0.99057, 0.98957, 0.98961, 0.98601, 0.9861, 0.98823, 0.98823, 0.98756, 0.98759, 0.98808, 0.98814,
    0.98721, 0.98724, 0.98571, 0.98572, 0.98543, 0.98544, 0.98157, 0.98165, 0.98411, 0.98413, 0.97952, 0.97953,
    0.98149, 0.9815, 0.9774, 0.97742, 0.97825, 0.97826, 0.97355, 0.97361, 0.97085, 0.97087, 0.97056, 0.97055,
    0.96588, 0.96587, 0.96113, 0.96124, 0.9567, 0.95681, 0.94961, 0.94969, 0.93973, 0.93988, 0.93217, 0.93224,
    0.91878, 0.91896, 0.90955, 0.90954, 0.92617, 0.92616,
)
_MAG_720P = (
    0.99428, 0.99498, 0.98588, 0.98621, 0.98273, 0.98281, 0.99018, 0.99023, 0.98911, 0.98917, 0.98646, 0.98652,
    0.99454, 0.99456, 0.9891, 0.98909, 0.99124, 0.99127, 0.99102, 0.99103, 0.99215, 0.99212, 0.99515, 0.99515,
    0.99576, 0.99572, 0.99068, 0.99072, 0.99097, 0.99097, 0.99166, 0.99169, 0.99041, 0.99042, 0.99201, 0.99198,
    0.99101, 0.99101, 0.98599, 0.98603, 0.98845, 0.98844, 0.98848, 0.98851, 0.98862, 0.98857, 0.98718, 0.98719,
    0.98497, 0.98497, 0.98264, 0.98263, 0.98389, 0.98393, 0.97938, 0.9794, 0.97535, 0.97536, 0.97498, 0.97499,
    0.973, 0.97301, 0.96827, 0.96828, 0.96261, 0.96263, 0.95335, 0.9534, 0.94649, 0.94655, 0.93397, 0.93414,
    0.91636, 0.9165, 0.89088, 0.89109, 0.8679, 0.86768,
)
MAGCACHE_RATIOS = {"480p": _MAG_480P, "720p": _MAG_720P}
MAGCACHE_THRESHOLD = 0.12
MAGCACHE_K = 2
MAGCACHE_RETENTION = 0.2  # share of the steps that always run


@dataclass
class CacheOptions:
    """The step cache's user-facing options (InfiniteTalk Step Cache node, --cache-*), declared once; a sampler's
    settings inherit them and hand `cache_settings()` to the loop."""

    cache_method: str = option("none", choices=CACHE_METHODS, help=(
        "Step cache: skip the transformer blocks of a model call whose input barely changed, reusing its cached "
        "residual. teacache: the reference's TeaCache for InfiniteTalk; magcache: MagCache (Wan2.1 I2V ratios). "
        "none: off (the reference's default)."))
    cache_threshold: float = option(-1.0, min=-1.0, max=10.0, step=0.001, help=(
        "How much change the cache tolerates before computing again: higher = faster, less faithful. -1 = the "
        "method's default (TeaCache 0.2 as the reference, MagCache 0.12); 0 = never skip."))
    cache_start_step: int = option(-1, min=-1, max=1000, help=(
        "First step that may be skipped. -1 = the method's default (TeaCache 5 as the reference, MagCache 20 % of "
        "the steps); earlier steps always run."))
    cache_end_step: int = option(-1, min=-1, max=1000, help="Last step that may be skipped (-1 = the last step).")
    cache_magcache_k: int = option(MAGCACHE_K, min=1, max=10, help=(
        "MagCache: at most this many calls skipped in a row (default 2)."))

    def cache_settings(self) -> "CacheSettings":
        return CacheSettings(self.cache_method, self.cache_threshold, self.cache_start_step, self.cache_end_step,
                             self.cache_magcache_k)

    def normalize_cache_options(self) -> None:
        """Check and normalise these options in place (part of the owning settings' `validated()`)."""
        cache = self.cache_settings().validated()
        self.cache_method, self.cache_threshold, self.cache_magcache_k = cache.method, cache.threshold, cache.magcache_k
        self.cache_start_step, self.cache_end_step = cache.start_step, cache.end_step


@dataclass
class CacheSettings:
    """What the sampler's `cache` input and the CLI's --cache-* options set."""

    method: str = "none"  # none | teacache | magcache
    threshold: float = -1.0  # < 0: the method's default (TeaCache 0.2, MagCache 0.12); 0: never skip
    start_step: int = -1  # first step that may be skipped; < 0: the method's default (TeaCache 5, MagCache 20 %)
    end_step: int = -1  # last step that may be skipped; < 0: the last step
    magcache_k: int = MAGCACHE_K  # MagCache: most calls skipped in a row

    def validated(self) -> "CacheSettings":
        method = str(self.method).strip().lower()
        if method not in CACHE_METHODS:
            raise InputError(f"step cache method must be one of {', '.join(CACHE_METHODS)}, got {self.method!r}")
        threshold = float(self.threshold)
        if not math.isfinite(threshold):
            raise InputError(f"step cache threshold must be a number, got {self.threshold}")
        k = int(self.magcache_k)
        if k < 1:
            raise InputError(f"MagCache K (calls skipped in a row) must be at least 1, got {k}")
        return CacheSettings(method, threshold, int(self.start_step), int(self.end_step), k)

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def resolved(self, steps: int) -> tuple[float, int, int]:
        """(threshold, first skippable step, last skippable step) for a run of `steps` steps."""
        tea = self.method == "teacache"
        threshold = self.threshold if self.threshold >= 0 else (TEACACHE_THRESHOLD if tea else MAGCACHE_THRESHOLD)
        start = self.start_step if self.start_step >= 0 else (TEACACHE_START if tea else magcache_retention(steps)[0])
        end = self.end_step if self.end_step >= 0 else steps - 1
        return threshold, start, min(end, steps - 1)


def magcache_retention(steps: int) -> tuple[int, int]:
    """MagCache's default first skippable step of the cond pass and of the other passes. The authors count calls,
    cond and uncond alternating, and keep the first int(2 * steps * 0.2) of them: for 40 steps both start at 8,
    for 8 steps (3 calls kept) the uncond pass may skip at step 1 but the cond pass only from step 2."""
    kept_calls = int(2 * steps * MAGCACHE_RETENTION)
    return (kept_calls + 1) // 2, kept_calls // 2


def resolution_key(height: int, width: int) -> str:
    """'480p' or '720p': whose calibration fits a window of this size (the nearer pixel count)."""
    return "720p" if height * width > (480 * 832 + 720 * 1280) / 2 else "480p"


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """mean |current - previous| / mean |previous| (the reference's measure of change)."""
    return ((current - previous).abs().mean() / previous.abs().mean()).item()


class TeaCache:
    """TeaCache's skip decisions per guidance pass (see the module text)."""

    def __init__(self, threshold: float, start: int, end: int, coefficients):
        self.threshold, self.start, self.end = float(threshold), int(start), int(end)
        self.coefficients = tuple(float(c) for c in coefficients)
        self._accumulated: dict[str, float] = {}
        self._previous: dict[str, torch.Tensor] = {}

    def should_compute(self, name: str, step: int, modulated: torch.Tensor) -> bool:
        previous = self._previous.get(name)
        compute = True
        if self.start <= step <= self.end and previous is not None:
            total = self._accumulated.get(name, 0.0) + float(np.polyval(self.coefficients, relative_l1(modulated, previous)))
            compute = not (self.threshold > 0 and total < self.threshold)
            self._accumulated[name] = 0.0 if compute else total
        else:
            self._accumulated[name] = 0.0
        self._previous[name] = modulated.detach().float().clone()
        return compute


class MagCache:
    """MagCache's skip decisions per guidance pass: the cond pass follows the cond ratios, the others the uncond ones
    (and may start skipping at `other_start`, default `start`)."""

    def __init__(self, threshold: float, start: int, end: int, k: int, ratios, steps: int, other_start: int | None = None):
        self.threshold, self.start, self.end, self.k = float(threshold), int(start), int(end), int(k)
        self.other_start = self.start if other_start is None else int(other_start)
        calibrated = np.asarray((1.0, 1.0) + tuple(ratios), dtype=np.float64).reshape(-1, 2)
        self.ratios = calibrated[_nearest_indices(len(calibrated), steps)]  # [steps, (cond, uncond)]
        self._state: dict[str, list] = {}  # name -> [ratio product, error sum, calls skipped in a row]

    def should_compute(self, name: str, step: int, modulated=None) -> bool:
        state = self._state.setdefault(name, [1.0, 0.0, 0])
        start = self.start if name == "cond" else self.other_start
        if not (start <= step <= self.end and 0 <= step < len(self.ratios)):
            return True
        state[0] *= float(self.ratios[step, 0 if name == "cond" else 1])
        state[1] += abs(1.0 - state[0])
        state[2] += 1
        if self.threshold > 0 and state[1] < self.threshold and state[2] <= self.k:
            return False
        state[:] = [1.0, 0.0, 0]
        return True


def _nearest_indices(source: int, target: int) -> np.ndarray:
    """MagCache's nearest-neighbour resampling of a calibration curve of `source` steps to `target` steps."""
    if target == 1:
        return np.array([source - 1])
    return np.round(np.arange(target) * ((source - 1) / (target - 1))).astype(int)


class StepCache:
    """One window's step cache: decides per pass and step which rows of a model call run the transformer blocks.

    `forward(model, names, step, x, t, kwargs)` replaces `model(x, t, **kwargs)` for a batch whose row r is pass
    names[r]. It decides on the call's block modulation (`model.time_modulation`) and hands the decisions to the
    model with the call (`model(x, t, **kwargs, step_cache=plan)`), which runs the blocks for the kept rows and adds
    the cached residual for the others (`wanvideo.model.step_residuals`). Under sequence parallel the plan travels
    to the other ranks with the call, so every rank skips the same rows and keeps its own shard's residuals.
    """

    def __init__(self, settings: CacheSettings, steps: int, resolution: str = "480p"):
        s = settings.validated()
        threshold, start, end = s.resolved(steps)
        self.method = s.method
        if s.method == "teacache":
            self.decider: TeaCache | MagCache = TeaCache(threshold, start, end, TEACACHE_COEFFICIENTS[resolution])
        elif s.method == "magcache":
            other_start = start if s.start_step >= 0 else magcache_retention(steps)[1]
            self.decider = MagCache(threshold, start, end, s.magcache_k, MAGCACHE_RATIOS[resolution], steps,
                                    other_start=other_start)
        else:
            raise InputError("StepCache needs a cache method (teacache or magcache)")
        self.key = uuid.uuid4().hex  # names this window's residuals on every rank
        self._computed: set[str] = set()  # passes with a computed call (so a residual) in this window
        self._finalizer: weakref.finalize | None = None
        self.calls: dict[str, int] = {}
        self.skipped: dict[str, int] = {}

    @staticmethod
    def check_model(model) -> None:
        if not getattr(model, "supports_step_cache", False):
            raise InputError(f"step caching needs a model that can skip its transformer blocks per batch row "
                             f"(forward with step_cache); {type(model).__name__} cannot: set the cache method to none")

    def forward(self, model, names: list[str], step: int, x, t, kwargs: dict) -> torch.Tensor:
        _, e0 = model.time_modulation(t, len(names))
        compute = []
        for row, name in enumerate(names):
            self.calls[name] = self.calls.get(name, 0) + 1
            keep = self.decider.should_compute(name, step, e0[row]) or name not in self._computed
            if not keep:
                self.skipped[name] = self.skipped.get(name, 0) + 1
            compute.append(keep)
        self._computed.update(n for n, keep in zip(names, compute, strict=True) if keep)
        self._release_with(model)
        return model(x, t, **kwargs, step_cache=(self.key, tuple(names), tuple(compute)))

    def _release_with(self, model) -> None:
        """Drop this window's residuals from the model once the cache is gone (they are the size of the hidden
        states per pass; on rank 0 — the other ranks drop theirs at the next window's first call)."""
        residuals = getattr(model, "step_residuals", None)
        if self._finalizer is None and residuals is not None:
            self._finalizer = weakref.finalize(self, residuals.clear, self.key)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        per_pass = ", ".join(f"{n} {self.skipped.get(n, 0)}" for n in self.calls)
        return f"{self.method} skipped {self.total_skipped} of {self.total_calls} model calls ({per_pass})"
