"""Seconds per window and the work the speed options save: one window end to end through `wanvideo.sampling.generate`
(guidance passes, VAE round trip, frame store on disk).

CPU (default): the tiny random-weight set at a small size, 40 steps, the reference's guidance (cfg 5, audio_cfg 4:
three passes per step). GPU (`--device cuda`, or `auto` when one is present): Wan2.1 I2V 14B sizes with random bf16
weights at 480x832x81 and a random-weight diffusers VAE of the real Wan 2.1 size.

TeaCache decides on how much the block modulation e0 (a function of the timestep only) changes from step to step,
rescaled by a polynomial the reference fitted on the trained model. A random time embedding weights the sinusoid's
fast frequencies (a turn every few timesteps) like the slow ones, so e0 jumps by ~30 % a step, where the polynomial
gives hundreds and nothing is ever skipped. The DiT here therefore gets a trained-like time embedding
(`wanvideo.tiny.smooth_time_embedding`: each frequency's input weight capped at 1 / (frequency x 1000), a first-order
low-pass over the timestep range), which moves e0 by 0.2-4 % a step, the range the polynomials were fitted on; the
measured per-step changes are printed for both. On the CPU the random-init figures are measured too.

RESULT lines (ratios are measured against a baseline in the same run):
  batched_guidance_ratio     window time with the passes of a step in one batched forward / one forward per pass
  teacache_calls_ratio       transformer-block calls with TeaCache at the reference threshold (0.2) / without
  teacache_max_abs_dev       largest difference of the window's frames, TeaCache vs without, in 0..1 pixel units
  teacache_mean_abs_dev      the mean difference (the random blocks of the tiny DiT amplify a skipped step's error
                             far more than a trained model: these two say the cache ran, not how a real video looks)
  teacache_step_change_median  median relative L1 change of e0 per step over the steps TeaCache may skip
  teacache_*_random_init     (CPU) the same four with the random time embedding
  loop_overhead_ratio        window time outside model calls and VAE work / window time (goal <= 0.05)
  seconds_per_window         (GPU only) one window at the given settings

    flock /tmp/wanvideo-heavy.lock .venv/bin/python benchmarks/window_speed.py            # CPU, small
    .venv/bin/python benchmarks/window_speed.py --device cuda --steps 40                  # GPU, 14B sizes
"""
from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import torch
from _harness import add_device_argument, resolve_device
from _harness import results as print_results

from wanvideo.audio import AudioEmbeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.cache import TEACACHE_COEFFICIENTS, TEACACHE_START, TEACACHE_THRESHOLD, relative_l1
from wanvideo.sampling.schedules import DEFAULT_SHIFT, FlowSolver
from wanvideo.tiny import smooth_time_embedding


class Timer:
    """Wall time spent inside wrapped callables (model and VAE work), synchronising the GPU around each."""

    def __init__(self, device):
        self.seconds = 0.0
        self.block_rows = 0  # batch rows that went through the transformer blocks
        self.first_rows = []  # each model call's first output row
        self.cuda = torch.device(device).type == "cuda"
        self._depth = 0

    def wrap(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            if self.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.cuda:
                    torch.cuda.synchronize()
                self.seconds += time.perf_counter() - start
                self._depth -= 1
        return timed


def instrument(model, vae, timer: Timer):
    """Time every model and VAE entry point the loop uses; count rows through the blocks."""
    for name in ("embed", "finish"):
        setattr(model, name, timer.wrap(getattr(type(model), name).__get__(model)))
    forward = type(model).forward.__get__(model)

    def recorded(*args, **kwargs):
        out = forward(*args, **kwargs)
        timer.first_rows.append(out[0].detach().float().cpu())  # batched guidance: the cond prediction of a step
        return out

    model.forward = timer.wrap(recorded)
    run_blocks = type(model).run_blocks.__get__(model)

    def counted(h, e0, state):
        timer.block_rows += h.shape[0]
        return run_blocks(h, e0, state)

    model.run_blocks = timer.wrap(counted)
    vae.encode = timer.wrap(vae.encode)
    vae.decode = timer.wrap(vae.decode)


def uninstrument(model, vae):
    for name in ("forward", "embed", "finish", "run_blocks"):
        model.__dict__.pop(name, None)
    for name in ("encode", "decode"):
        vae.__dict__.pop(name, None)


def small_set(device, smooth: bool = True):
    """The tiny set; `smooth`: with the trained-like time embedding (see the module text)."""
    from wanvideo.tiny import tiny_models

    models = tiny_models(seed=0, device=device)
    dit = smooth_time_embedding(models.dit) if smooth else models.dit
    return dit, models.vae, models.context, models.context_null, models.clip_fea


def step_changes(dit, steps: int) -> np.ndarray:
    """Relative L1 change of e0 (TeaCache's modulated input) at each step TeaCache may skip (the 480p schedule)."""
    timesteps = FlowSolver("euler", steps, DEFAULT_SHIFT["480p"]).timesteps[:steps]
    with torch.no_grad():
        _, e0 = dit.time_modulation(timesteps, steps)
    return np.array([relative_l1(e0[i], e0[i - 1]) for i in range(max(1, TEACACHE_START), steps)])


def describe_changes(label: str, changes: np.ndarray) -> None:
    if not len(changes):
        return
    rescaled = np.polyval(TEACACHE_COEFFICIENTS["480p"], changes)
    print(f"{label}: e0 changes by {np.median(changes):.4f} a step (median; {changes.min():.4f}-{changes.max():.4f}) "
          f"over steps {max(1, TEACACHE_START)}-{TEACACHE_START + len(changes) - 1}; the 480p polynomial makes that "
          f"{np.median(rescaled):.3g} (median), against the threshold {TEACACHE_THRESHOLD}")


def gpu_set(device):
    """14B-sized DiT (random bf16 weights) and a random-weight Wan 2.1-sized diffusers VAE."""
    from diffusers import AutoencoderKLWan

    from wanvideo.model import build_model, preset
    from wanvideo.sampling.vae import DiffusersWanVAE

    config = preset("wan2.1-i2v-14b")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        dit = build_model(config, dtype=torch.bfloat16, device=device)
        vae = DiffusersWanVAE(AutoencoderKLWan(), device=device, dtype=torch.bfloat16)
    gen = torch.Generator().manual_seed(1)
    context = torch.randn(1, 30, dit.config["text_dim"], generator=gen)
    context_null = torch.randn(1, 60, dit.config["text_dim"], generator=gen)
    clip = torch.randn(1, 257, dit.config["clip_dim"], generator=gen)
    return dit, vae, context, context_null, clip


def embeddings_for(model, frames: int):
    cfg = model.config
    gen = torch.Generator().manual_seed(3)
    speaker = torch.randn(frames, cfg["audio_layers"], cfg["audio_channels"], generator=gen)
    return AudioEmbeddings(speakers=[speaker], fps=25.0, waveform=torch.zeros(frames * 640), sample_rate=16000)


def one_window(parts, size, frames, steps, **options):
    """(seconds, model+VAE seconds, block rows, frames [n, H, W, 3] uint8, each call's first output row) of one
    window."""
    dit, vae, context, context_null, clip = parts
    height, width = size
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(4))
    settings = SamplerSettings(frame_window=frames, motion_frames=min(9, frames - 4), steps=steps, cfg=5.0,
                               audio_cfg=4.0, width=width, height=height, seed=42, max_frames=frames, **options)
    timer = Timer(dit.main_device)
    instrument(dit, vae, timer)
    try:
        with tempfile.TemporaryDirectory() as root:
            if timer.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            store = generate(dit, vae, image, clip, audio=embeddings_for(dit, frames), context=context,
                             context_null=context_null, settings=settings, store_root=root)
            if timer.cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            pixels = store.read_frames()
    finally:
        uninstrument(dit, vae)
    return seconds, timer.seconds, timer.block_rows, pixels, timer.first_rows


class Runner:
    """One window of a model set at the benchmark's size and steps, the best of `repeat` timed runs."""

    def __init__(self, size, frames: int, steps: int, repeat: int):
        self.size, self.frames, self.steps, self.repeat = size, frames, steps, max(1, repeat)

    def best(self, parts, **options):
        runs = [one_window(parts, self.size, self.frames, self.steps, **options) for _ in range(self.repeat)]
        return min(runs, key=lambda r: r[0])

    def teacache(self, parts, baseline, label: str) -> dict:
        """TeaCache at the reference threshold against `baseline` (the same set without it), and e0's step changes."""
        changes = step_changes(parts[0], self.steps)
        describe_changes(label, changes)
        tea = self.best(parts, guidance_batching="batched", cache_method="teacache", cache_threshold=TEACACHE_THRESHOLD)
        diff = np.abs(tea[3].astype(np.int16) - baseline[3].astype(np.int16)) / 255.0
        print(f"teacache, {label}: {tea[2]} of {baseline[2]} block calls, {tea[0]:.2f} s; frames differ by "
              f"{diff.mean():.4f} on average, {diff.max():.4f} at most")
        outputs = baseline[4][max(0, TEACACHE_START - 1):]
        if len(outputs) > 1:  # how much the model's prediction really moves (what the polynomial estimates)
            moved = [relative_l1(b, a) for a, b in zip(outputs, outputs[1:], strict=False)]
            print(f"  without the cache the cond prediction changes by {np.median(moved):.3f} a step (median)")
        figures = {"calls_ratio": f"{tea[2] / baseline[2]:.3f}", "max_abs_dev": f"{diff.max():.4f}",
                   "mean_abs_dev": f"{diff.mean():.4f}"}
        if len(changes):
            figures["step_change_median"] = f"{np.median(changes):.4f}"
        return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_device_argument(parser, default="cpu")  # cpu: the small config; cuda: the 14B sizes
    parser.add_argument("--steps", type=int, default=40, help="steps per window (reference 40)")
    parser.add_argument("--frames", type=int, default=0, help="frames per window (default 33 CPU, 81 GPU)")
    parser.add_argument("--size", default="", help="HEIGHTxWIDTH (default 128x192 CPU, 480x832 GPU)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repeats of each configuration (best kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    gpu = torch.device(device).type == "cuda"
    frames = args.frames or (81 if gpu else 33)
    height, width = (int(v) for v in (args.size or ("480x832" if gpu else "128x192")).split("x"))
    if gpu:
        dit, *rest = gpu_set(device)
        parts = (smooth_time_embedding(dit), *rest)
    else:
        parts = small_set(device)
    print(f"window: {frames} frames at {height}x{width}, {args.steps} steps, 3 guidance passes, device {device}")
    runner = Runner((height, width), frames, args.steps, args.repeat)
    if not gpu:
        one_window(parts, (height, width), frames, 2)  # warm-up (allocator, first-call costs)
    sequential = runner.best(parts, guidance_batching="sequential")
    batched = runner.best(parts, guidance_batching="batched")
    print(f"sequential passes: {sequential[0]:.2f} s, batched: {batched[0]:.2f} s")
    results = {"batched_guidance_ratio": f"{batched[0] / sequential[0]:.3f}"}
    results.update({f"teacache_{k}": v for k, v in runner.teacache(parts, batched, "trained-like time embedding").items()})
    if not gpu:  # the tiny set as built, for comparison: TeaCache cannot skip there
        random_parts = small_set(device, smooth=False)
        random_batched = runner.best(random_parts, guidance_batching="batched")
        figures = runner.teacache(random_parts, random_batched, "random time embedding")
        results.update({f"teacache_{k}_random_init": v for k, v in figures.items()})
    fastest = min(sequential, batched, key=lambda r: r[0])
    results["loop_overhead_ratio"] = f"{max(0.0, fastest[0] - fastest[1]) / fastest[0]:.4f}"
    if gpu:
        results["seconds_per_window"] = f"{fastest[0]:.1f}"
    print_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
