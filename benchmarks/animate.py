"""WanAnimate: what the face path costs per forward, and memory flat in the driving video's length.

1. animate_overhead_ratio: one WanAnimate forward (pose embedding + LIA motion encoder + face encoder + face
   blocks) over one Wan2.1 I2V forward of the same small DiT (same width, layers, heads, latent), median of
   several runs each, in one process.
2. animate_batched_guidance_ratio: one step's two guidance passes (cfg > 1: cond, and uncond = negative prompt
   with all -1 face pixels) as one batched forward over the two forwards one after another, same small DiT.
3. peak_rss_ratio: the whole WanAnimate loop (tiny random-weight DiT + diffusers AutoencoderKLWan of real
   compression, clip_len 77, refert 1, 2 steps) over a long driving clip vs a short one, each in its own
   subprocess (peak resident size, benchmarks/_harness.py). The driving frames are produced lazily by index, as a video reader gives them,
   so what is measured is the loop's own memory; the goal is <= 1.1.

    .venv/bin/python benchmarks/animate.py            # --short 77 --long 385 --size 64x112 (a few minutes)
Ends with RESULT lines.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _harness import PeakMemory, child_result, result, run_child

SMALL = dict(dim=256, ffn_dim=512, num_heads=4, num_layers=10, text_len=32, text_dim=64, freq_dim=64, clip_dim=64)
FACE = dict(face_encoder_width=64, motion_encoder={"size": 64, "style_dim": 128, "motion_dim": 20,
                                                   "channels": {64: 16, 32: 32, 16: 64, 8: 64, 4: 64}})


def _median_times(fns: dict, repeats: int) -> dict:
    """{name: median seconds} of each function, their runs interleaved (a, b, a, b, ...) so that a change in the
    machine's load during the measurement hits both sides alike."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def overhead_ratio(repeats: int = 5) -> tuple[float, float, float]:
    import torch

    from wanvideo.model import build_model

    torch.manual_seed(0)
    i2v = build_model(dict(SMALL, audio_adapter=False))
    animate = build_model(dict(SMALL, model_type="animate", **FACE))
    frames, lat_h, lat_w = 6, 16, 16  # 5 latent video frames = 17 face crops
    x, y = torch.randn(1, 16, frames, lat_h, lat_w), torch.randn(1, 20, frames, lat_h, lat_w)
    t, ctx, clip = torch.tensor([900]), torch.randn(1, 16, SMALL["text_dim"]), torch.randn(1, 257, SMALL["clip_dim"])
    pose = torch.randn(1, 16, frames - 1, lat_h, lat_w)
    faces = torch.rand(1, 3, 4 * (frames - 2) + 1, 64, 64) * 2 - 1
    times = _median_times({"i2v": lambda: i2v(x, t, ctx, clip, y),
                           "animate": lambda: animate(x, t, ctx, clip, y, pose_latents=pose, face_pixel_values=faces)},
                          repeats)
    t_i2v, t_animate = times["i2v"], times["animate"]
    return t_animate / t_i2v, t_i2v, t_animate


def batched_guidance_ratio(repeats: int = 5) -> tuple[float, float, float]:
    import torch

    from wanvideo.model import build_model
    from wanvideo.sampling.guidance import COND, UNCOND
    from wanvideo.sampling.passes import PassRunner

    torch.manual_seed(0)
    animate = build_model(dict(SMALL, model_type="animate", **FACE))
    frames, lat_h, lat_w = 6, 16, 16
    x, t = torch.randn(1, 16, frames, lat_h, lat_w), torch.tensor([900])
    faces = torch.rand(1, 3, 4 * (frames - 2) + 1, 64, 64) * 2 - 1
    common = dict(clip_fea=torch.randn(1, 257, SMALL["clip_dim"]), y=torch.randn(1, 20, frames, lat_h, lat_w),
                  pose_latents=torch.randn(1, 16, frames - 1, lat_h, lat_w))
    passes = {COND: dict(context=torch.randn(1, 16, SMALL["text_dim"]), face_pixel_values=faces, **common),
              UNCOND: dict(context=torch.randn(1, 12, SMALL["text_dim"]), face_pixel_values=faces * 0 - 1, **common)}
    runners = {mode: PassRunner(animate, passes, batched=mode == "batched") for mode in ("batched", "sequential")}
    times = _median_times({mode: (lambda r=runner: r(x, t, 0)) for mode, runner in runners.items()}, repeats)
    return times["batched"] / times["sequential"], times["batched"], times["sequential"]


class LazyClip:
    """A driving video of `n` frames made on demand by index (like a video reader), never held whole."""

    def __init__(self, n: int, height: int, width: int, seed: int):
        self.n, self.height, self.width, self.seed = n, height, width, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.n:
            raise IndexError(index)
        rng = np.random.default_rng(self.seed * 1_000_003 + index)
        return rng.integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)


def child(frames: int, height: int, width: int) -> dict:
    from wanvideo.sampling.animate import AnimateSettings, generate_animate
    from wanvideo.tiny import tiny_animate_models

    with PeakMemory() as memory:  # the whole process: the models too, as they are the same in both runs
        tiny = tiny_animate_models(seed=0)
        image = np.full((height, width, 3), 128, dtype=np.uint8)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as root:
            store = generate_animate(
                tiny.dit, tiny.vae, image, tiny.clip_fea, LazyClip(frames, height, width, 1),
                LazyClip(frames, 32, 32, 2), context=tiny.context, settings=AnimateSettings(steps=2), store_root=root)
            count = len(store)
    return dict(frames=count, clips=store.num_windows, wall_s=time.perf_counter() - started,
                peak_rss_mb=memory.peak / 2**20)


def loop_run(frames: int, height: int, width: int) -> dict:
    return run_child(__file__, ["--child", str(frames), "--size", f"{width}x{height}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=77, help="driving frames of the short run (1 clip)")
    parser.add_argument("--long", type=int, default=385, help="driving frames of the long run (6 clips; 770: 11)")
    parser.add_argument("--size", default="64x112", help="output WxH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.child:
        child_result(child(args.child, height, width))
        return
    ratio, t_i2v, t_animate = overhead_ratio(args.repeats)
    print(f"forward i2v {t_i2v * 1000:.1f} ms, animate {t_animate * 1000:.1f} ms")
    batched_ratio, t_batched, t_sequential = batched_guidance_ratio(args.repeats)
    print(f"guidance passes: batched {t_batched * 1000:.1f} ms, sequential {t_sequential * 1000:.1f} ms")
    short, long = loop_run(args.short, height, width), loop_run(args.long, height, width)
    for tag, r in (("short", short), ("long", long)):
        print(f"{tag}: {r['frames']} frames, {r['clips']} clips, {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    result("animate_overhead_ratio", ratio, ".3f")
    result("animate_batched_guidance_ratio", batched_ratio, ".3f")
    result("peak_rss_ratio", long["peak_rss_mb"] / short["peak_rss_mb"], ".3f")


if __name__ == "__main__":
    main()
