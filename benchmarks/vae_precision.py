"""The loop's VAE work in float32 (the default, as the reference) vs the host's bf16: what it costs.

Real-size Wan 2.1 VAE architecture (diffusers AutoencoderKLWan defaults, random weights). One window's VAE
work as the loop does it: decode the window's latent (`--frames` frames at `--size`), then encode its last
`--motion` frames for the next window. Measured in bf16 and in float32 (the weights cast in place, as
`DiffusersWanVAE.precision("fp32")` / the node's HostWanVAE do), on CUDA when present (time and peak
allocated memory), else on the CPU (time only; CPU bf16 is not representative of GPU speed: a GPU run is
needed for the time figure that matters).

    python benchmarks/vae_precision.py [--frames 81 --size 480x832 --motion 9]      (GPU: the real case)
    python benchmarks/vae_precision.py --frames 5 --size 64x96 --motion 1           (CPU: a quick look)

Ends with RESULT lines: weights_mb_bf16, weights_mb_extra_fp32 (exact, from the parameter count),
time_ratio (fp32 / bf16 per window's VAE work), and on CUDA peak_gb_bf16, peak_gb_fp32.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch
from _harness import PeakMemory, add_device_argument, resolve_device, result

REPO = Path(__file__).resolve().parents[1]


def _window(vae, latent, motion: int) -> None:
    with torch.no_grad():
        video = vae.decode(latent)
        vae.encode(video[:, -motion:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--size", default="480x832")
    parser.add_argument("--motion", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=2)
    add_device_argument(parser)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from diffusers import AutoencoderKLWan

    from wanvideo.sampling.vae import DiffusersWanVAE

    device = torch.device(resolve_device(args.device))
    height, width = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    vae = DiffusersWanVAE(AutoencoderKLWan(), device=device, dtype=torch.bfloat16)
    params = sum(p.numel() for p in vae.vae.parameters())
    latent = torch.randn(16, (args.frames - 1) // 4 + 1, height // 8, width // 8)
    motion = max(1, args.motion)
    motion = motion if (motion - 1) % 4 == 0 else 1 + 4 * ((motion - 1) // 4)

    results = {}
    for name in ("host", "fp32"):
        with vae.precision(name):
            _window(vae, latent, motion)  # warm-up
            cuda = device.type == "cuda"
            with PeakMemory(device) if cuda else contextlib.nullcontext() as memory:  # the CPU: time only
                started = time.perf_counter()
                for _ in range(args.repeats):
                    _window(vae, latent, motion)
                if cuda:
                    torch.cuda.synchronize()
                results[name] = (time.perf_counter() - started) / args.repeats
            if cuda:
                results[name + "_peak"] = memory.peak / 2**30
        print(f"{name}: {results[name]:.3f} s per window's VAE work")

    print(f"device={device.type} frames={args.frames} size={args.size} motion={motion}")
    result("weights_mb_bf16", params * 2 / 2**20, ".1f")
    result("weights_mb_extra_fp32", params * 2 / 2**20, ".1f")
    result("time_ratio", results["fp32"] / results["host"], ".2f")
    if device.type == "cuda":
        result("peak_gb_bf16", results["host_peak"], ".2f")
        result("peak_gb_fp32", results["fp32_peak"], ".2f")


if __name__ == "__main__":
    main()
