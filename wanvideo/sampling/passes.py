"""The per-step model call of the window loop: the guidance passes of one step, batched or one by one,
through the step cache when one is on.

`PassRunner(model, passes, ...)(x, t, step)` returns {pass name: prediction [16, T, h, w] float32}. The loop
calls nothing else on the model, so a model-specific loop (plain I2V, WanAnimate) or a parallel model
(sequence parallel attention) only has to accept `model(x, t, **kwargs)` with batched rows; step caching
additionally needs `time_modulation` and a forward that takes `step_cache` (see cache.StepCache).
"""
from __future__ import annotations

import logging

import torch

from ..errors import InputError
from ..model.memory import inference_bytes
from .cache import StepCache, resolution_key
from .guidance import BATCH_MODES, pass_groups, stack_pass_inputs
from .settings import GenerationInterrupted

log = logging.getLogger(__name__)

# Memory kept free besides the extra rows' activations when deciding to batch on a GPU.
_HEADROOM_BYTES = 1 << 30


def use_batched_passes(mode: str, model, passes: dict, latent_shape) -> bool:
    """Whether the passes of a step run as one batched forward ('auto': when the model can, no block swap,
    and on a GPU enough free memory for the extra rows)."""
    if mode not in BATCH_MODES:
        raise InputError(f"guidance batching must be one of {', '.join(BATCH_MODES)}, got {mode!r}")
    if mode == "sequential" or len(passes) < 2:
        return False
    supported = bool(getattr(model, "supports_batched_passes", False))
    if mode == "batched":
        if not supported:
            raise InputError(f"{type(model).__name__} cannot run the guidance passes as one batch: set guidance "
                             "batching to auto or sequential")
        return True
    if not supported:
        return False
    if getattr(model, "block_swap", None) is not None:
        log.info("guidance passes run one by one: block swap is on (low VRAM); set guidance batching to "
                 "'batched' to force one batch")
        return False
    device = torch.device(getattr(model, "main_device", None) or "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        config = dict(getattr(model, "config", {}) or {})
        # the same estimate the host gets before a window (model/memory.py), for the rows beyond the first
        need = inference_bytes(config, latent_shape, getattr(model, "compute_dtype", torch.bfloat16),
                               batch=len(passes) - 1)
        if free < need + _HEADROOM_BYTES:
            log.info("guidance passes run one by one: %.1f GiB free on %s, a batch of %d needs ~%.1f GiB more",
                     free / 2**30, device, len(passes), need / 2**30)
            return False
    return True


class PassRunner:
    """Runs one step's guidance passes; one instance per window (it owns that window's step cache)."""

    def __init__(self, model, passes: dict, *, batched: bool = False, cache: StepCache | None = None,
                 should_stop=None):
        self.model = model
        self.cache = cache
        self.should_stop = should_stop  # Cancel is honoured between the passes of a step too
        if cache is not None:
            StepCache.check_model(model)
        groups = pass_groups(passes) if batched else [[name] for name in passes]
        self.groups = [(names, stack_pass_inputs(names, passes)) for names in groups]
        self.model_calls = 0  # forwards (a batched one counts once)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, step: int) -> dict:
        preds: dict = {}
        for names, kwargs in self.groups:
            if preds and self.should_stop is not None and self.should_stop():
                raise GenerationInterrupted(f"stopped between the guidance passes of step {step + 1}")
            xb = x.expand(len(names), *x.shape[1:]) if x.shape[0] != len(names) else x
            if self.cache is not None:
                out = self.cache.forward(self.model, names, step, xb, t, kwargs)
            else:
                out = self.model(xb, t, **kwargs)
            self.model_calls += 1
            for row, name in enumerate(names):
                preds[name] = out[row].float()
        return preds


def window_pass_runner(model, passes: dict, latent_shape, s, size: tuple[int, int], should_stop=None) -> PassRunner:
    """One window's model calls from a sampler's speed settings (SamplerSettings or AnimateSettings): batched or one
    by one (`guidance_batching`), with a fresh step cache (`cache_*`; nothing carries across windows or a resume).
    latent_shape: the window's latent [16, T, h, w]; size: the output (height, width), which picks the cache's
    480p / 720p calibration."""
    batched = use_batched_passes(s.guidance_batching, model, passes, latent_shape[1:])
    cache = None
    if s.cache_method != "none":
        cache = StepCache(s.cache_settings(), s.steps, resolution_key(*size))
    return PassRunner(model, passes, batched=batched, cache=cache, should_stop=should_stop)
