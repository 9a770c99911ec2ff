"""Several devices: one DiT forward on 1, 2 and 4 ranks (torchrun), and the in-host modes (guidance split, layer
split, the sequence-parallel worker pool with and without FSDP) per window; speedups against one device in the
same run. `--part torchrun|in-host|all` (default all).

In-host (benchmarks/multi_gpu_in_host.py): RESULT pool_max_abs_dev= (the pool's window latent against one
process), fsdp_param_fraction= (the largest share of the weights one of 2 FSDP ranks holds; goal <= 0.55) and
fsdp_bytes_read_fraction=, on 2 CPU workers; with 2+ GPUs also window_speedup_guidance_split=,
window_speedup_layer_split=, window_speedup_sequence_parallel(_fsdp)= and peak_vram_gib_<mode>_gpu<i>= (a
14B-wide model with 8 blocks at 480p, bf16). Without 2 GPUs those lines are left out (said so).

* GPU (CUDA with at least 2 devices): the real 14B config with random bf16 weights on every GPU (nccl), one speaker,
  at 480p x 81 frames (latent 21x60x104, 32,760 tokens) and 720p x 81 (21x90x160, 75,600 tokens); `ulysses`.
  RESULT speedup_2= / speedup_4= are the 480p figures, speedup_*_720p= the 720p ones.
* CPU (otherwise): a small config on a 3-latent-frame window with gloo, one thread per rank (so N ranks use N
  cores against the baseline's one). A check that the exchange costs little, not a figure for GPUs; on a
  machine with fewer free cores than ranks, expect the 4-rank figure to fall back toward (or below) 1.

Each rank count runs in its own `torchrun` (rendezvous on 127.0.0.1); the time is the best of a few forwards on
rank 0 after a warm-up, with all ranks synchronised.

Run alone on a shared machine:  flock /tmp/wanvideo-heavy.lock python benchmarks/multi_gpu.py
Ends with RESULT name=value lines.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import result

from wanvideo.model import build_model, preset

SMALL = dict(preset("tiny"), dim=256, ffn_dim=768, num_heads=8, num_layers=4, freq_dim=64, text_dim=64,
             text_len=32, clip_dim=64, intermediate_dim=64, output_dim=64, context_tokens=8,
             audio_layers=4, audio_channels=32)
LATENTS = {"small": (3, 30, 52), "480p": (21, 60, 104), "720p": (21, 90, 160)}


def _inputs(cfg, latent, device, dtype):
    g = torch.Generator().manual_seed(0)
    frames, h, w = latent
    make = lambda *s: torch.randn(*s, generator=g).to(device, dtype)  # noqa: E731
    audio_frames = 1 + cfg["vae_scale"] * (frames - 1)
    return dict(x=make(1, 16, frames, h, w), t=torch.tensor([900.0], device=device),
                context=make(1, cfg["text_len"], cfg["text_dim"]), clip_fea=make(1, 257, cfg["clip_dim"]),
                y=make(1, 20, frames, h, w),
                audio=make(1, audio_frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"]))


def worker(size: str, mode: str, repeats: int) -> None:
    """One rank of a timed run (started by torchrun); rank 0 prints SECONDS <best forward>."""
    from wanvideo.model.parallel import distributed

    cuda = size != "small"
    info = distributed.init_from_env("cuda" if cuda else "cpu")
    import torch.distributed as dist

    if not cuda:
        torch.set_num_threads(1)
    cfg = SMALL if size == "small" else preset("wan2.1-i2v-14b")
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    model = build_model(cfg, dtype=dtype, device=info.device)
    if info.world > 1:
        model.enable_sequence_parallel(mode)
    args = _inputs(model.config, LATENTS[size], info.device, dtype)

    def one():
        dist.barrier()
        start = time.perf_counter()
        model(**args)
        if cuda:
            torch.cuda.synchronize()
        dist.barrier()
        return time.perf_counter() - start

    one()  # warm-up
    best = min(one() for _ in range(repeats))
    if info.is_main:
        print(f"SECONDS {best:.6f}", flush=True)
    distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(ranks: int, size: str, mode: str, repeats: int) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_addr",
           "127.0.0.1", "--master_port", str(_free_port()), __file__, "--worker", "--size", size, "--mode", mode,
           "--repeats", str(repeats)]
    env = dict(os.environ, OMP_NUM_THREADS="1") if size == "small" else dict(os.environ)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SECONDS ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{ranks} ranks at {size} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    seconds = float(lines[-1].split()[1])
    print(f"{size}: {ranks} rank(s), {mode}: {seconds:.4f} s per forward", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", default=None, choices=sorted(LATENTS))
    parser.add_argument("--mode", default="ulysses", choices=("ulysses", "ring"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", default="all", choices=("all", "torchrun", "in-host"))
    args = parser.parse_args()
    if args.worker:
        worker(args.size, args.mode, args.repeats)
        return
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    results = {}
    if args.part in ("all", "in-host"):
        results.update(in_host(gpus))
    if args.part in ("all", "torchrun"):
        results.update(torchrun_speedups(args, gpus))
    for name, value in results.items():
        result(name, value, ".3g" if "dev" in name else ".3f")


def in_host(gpus: int) -> dict:
    from multi_gpu_in_host import cpu_checks, gpu_runs

    results = cpu_checks()
    if gpus >= 2:
        results.update(gpu_runs(gpus))
    else:
        print(f"in-host speedups and peak VRAM need 2 GPUs ({gpus} visible): not measured", flush=True)
    return results


def torchrun_speedups(args, gpus: int) -> dict:
    sizes = [args.size] if args.size else (["480p", "720p"] if gpus >= 2 else ["small"])
    counts = [n for n in (2, 4) if gpus >= n] if gpus >= 2 else [2, 4]
    results = {}
    for size in sizes:
        base = timed_run(1, size, args.mode, args.repeats)
        for n in counts:
            suffix = "" if size in ("small", "480p") else f"_{size}"
            results[f"speedup_{n}{suffix}"] = base / timed_run(n, size, args.mode, args.repeats)
    return results


if __name__ == "__main__":
    main()
