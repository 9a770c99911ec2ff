"""Seconds per window and the work the speed options save: one window end to end through `wanvideo.sampling.generate`
(guidance passes, VAE round trip, frame store on disk).

CPU (default): the tiny random-weight set at a small size, 40 steps, the reference's guidance (cfg 5, audio_cfg 4:
three passes per step). GPU (`--device cuda`, or `auto` when one is present): Wan2.1 I2V 14B sizes with random bf16
weights at 480x832x81 and a random-weight diffusers VAE of the real Wan 2.1 size.

RESULT lines (ratios are measured against a baseline in the same run):
  batched_guidance_ratio  window time with the passes of a step in one batched forward / one forward per pass
  teacache_calls_ratio    transformer-block calls with TeaCache at the reference threshold (0.2) / without
  teacache_max_abs_dev    largest difference of the window's frames, TeaCache vs without, in 0..1 pixel units
  loop_overhead_ratio     window time outside model calls and VAE work / window time (goal <= 0.05)
  seconds_per_window      (GPU only) one window at the given settings

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

from wanvideo.audio import AudioEmbeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.cache import TEACACHE_THRESHOLD


class Timer:
    """Wall time spent inside wrapped callables (model and VAE work), synchronising the GPU around each."""

    def __init__(self, device):
        self.seconds = 0.0
        self.block_rows = 0  # batch rows that went through the transformer blocks
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
    for name in ("forward", "embed", "finish"):
        setattr(model, name, timer.wrap(getattr(type(model), name).__get__(model)))
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


def small_set(device):
    from wanvideo.tiny import tiny_models

    models = tiny_models(seed=0, device=device)
    return models.dit, models.vae, models.context, models.context_null, models.clip_fea


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
    """(seconds, model+VAE seconds, block rows, frames [n, H, W, 3] uint8) of one window."""
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
    return seconds, timer.seconds, timer.block_rows, pixels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (small config), cuda (14B sizes) or auto")
    parser.add_argument("--steps", type=int, default=40, help="steps per window (reference 40)")
    parser.add_argument("--frames", type=int, default=0, help="frames per window (default 33 CPU, 81 GPU)")
    parser.add_argument("--size", default="", help="HEIGHTxWIDTH (default 128x192 CPU, 480x832 GPU)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repeats of each configuration (best kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = torch.device(device).type == "cuda"
    frames = args.frames or (81 if gpu else 33)
    height, width = (int(v) for v in (args.size or ("480x832" if gpu else "128x192")).split("x"))
    parts = gpu_set(device) if gpu else small_set(device)
    print(f"window: {frames} frames at {height}x{width}, {args.steps} steps, 3 guidance passes, device {device}")

    def best(**options):
        runs = [one_window(parts, (height, width), frames, args.steps, **options) for _ in range(max(1, args.repeat))]
        return min(runs, key=lambda r: r[0])

    if not gpu:
        one_window(parts, (height, width), frames, 2)  # warm-up (allocator, first-call costs)
    sequential = best(guidance_batching="sequential")
    batched = best(guidance_batching="batched")
    print(f"sequential passes: {sequential[0]:.2f} s, batched: {batched[0]:.2f} s")
    tea = best(guidance_batching="batched", cache_method="teacache", cache_threshold=TEACACHE_THRESHOLD)
    dev = np.abs(tea[3].astype(np.int16) - batched[3].astype(np.int16)).max() / 255.0
    print(f"teacache: {tea[2]} of {batched[2]} block calls, {tea[0]:.2f} s")
    fastest = min(sequential, batched, key=lambda r: r[0])
    print(f"RESULT batched_guidance_ratio={batched[0] / sequential[0]:.3f}")
    print(f"RESULT teacache_calls_ratio={tea[2] / batched[2]:.3f}")
    print(f"RESULT teacache_max_abs_dev={dev:.4f}")
    print(f"RESULT loop_overhead_ratio={max(0.0, fastest[0] - fastest[1]) / fastest[0]:.4f}")
    if gpu:
        print(f"RESULT seconds_per_window={fastest[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
