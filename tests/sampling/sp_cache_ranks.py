"""Step-cached guidance passes split across gloo ranks (see test_step_cache_parallel.py): rank 0 drives the same
window steps once on its own and once with the other ranks serving its calls (wanvideo.model.parallel.distributed)."""
from __future__ import annotations

import json

import torch
import torch.distributed as dist

from wanvideo.model import build_model, tiny_config
from wanvideo.model.config import audio_frames_for
from wanvideo.model.parallel.distributed import run_sequence_parallel
from wanvideo.sampling.cache import CacheSettings, StepCache
from wanvideo.sampling.guidance import COND, DROP_TEXT, UNCOND
from wanvideo.sampling.passes import PassRunner
from wanvideo.sampling.schedules import FlowSolver
from wanvideo.tiny import smooth_time_embedding

STEPS = 10
MODES = ("ulysses", "ring")
# (cache settings, batched guidance): TeaCache at the reference threshold, MagCache with a loose threshold
RUNS = {
    "teacache_sequential": (CacheSettings("teacache", start_step=1), False),
    "teacache_batched": (CacheSettings("teacache", start_step=1), True),
    "magcache_batched": (CacheSettings("magcache", threshold=0.5, start_step=1), True),
}


def model_and_inputs():
    """A tiny DiT whose time embedding moves like a trained one (so TeaCache skips), and one window's inputs:
    3 latent frames of 4x6 (18 tokens after patching: 9 per rank on 2 ranks)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = smooth_time_embedding(build_model(tiny_config()))
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    frames = audio_frames_for(3, cfg)
    audio = torch.randn(1, frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"], generator=g)
    common = dict(clip_fea=torch.randn(1, 257, cfg["clip_dim"], generator=g), y=torch.randn(1, 20, 3, 4, 6, generator=g))
    ctx, ctx_null = torch.randn(1, 5, cfg["text_dim"], generator=g), torch.randn(1, 6, cfg["text_dim"], generator=g)
    passes = {COND: dict(context=ctx, audio=audio, **common), DROP_TEXT: dict(context=ctx_null, audio=audio, **common),
              UNCOND: dict(context=ctx_null, audio=torch.zeros_like(audio), **common)}
    return model, torch.randn(1, 16, 3, 4, 6, generator=g), passes


def cached_steps(model, passes, x, settings, batched):
    """The predictions of STEPS steps (x moved a little each step) and the calls the cache skipped."""
    cache = StepCache(settings, STEPS)
    runner = PassRunner(model, passes, batched=batched, cache=cache)
    solver = FlowSolver("euler", STEPS, 7.0)
    preds = []
    for i in range(STEPS):
        out = runner(x, solver.timesteps[i:i + 1], i)
        preds.append(torch.stack([out[n] for n in (COND, DROP_TEXT, UNCOND)]))
        x = x - 0.05 * out[COND][None]
    return torch.stack(preds), dict(cache.skipped)


def split_equals_single(rank: int, world: int, result_path: str) -> None:
    model, x, passes = model_and_inputs()
    served = [0]
    model.register_forward_hook(lambda *_: served.__setitem__(0, served[0] + 1))
    single = {}
    if rank == 0:
        single = {name: cached_steps(model, passes, x, *run) for name, run in RUNS.items()}
        served[0] = 0
    split = {}
    for mode in MODES:
        runs = run_sequence_parallel(model, mode, lambda m: {name: cached_steps(m, passes, x, *run)
                                                             for name, run in RUNS.items()})
        if rank == 0:
            split.update({f"{name}_{mode}": result for name, result in runs.items()})
    everyone = [None] * world
    dist.all_gather_object(everyone, served[0])
    if rank != 0:
        return
    report = {"calls_served": everyone}
    for name, result in split.items():
        (a, skipped_a), (b, skipped_b) = single[name.rsplit("_", 1)[0]], result
        report[name] = dict(max_abs_diff=float((a - b).abs().max()), scale=float(a.abs().max()),
                            skipped_single=skipped_a, skipped_split=skipped_b)
    with open(result_path, "w") as f:
        json.dump(report, f)
