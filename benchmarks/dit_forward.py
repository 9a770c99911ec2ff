"""One DiT forward at a chosen size: seconds, achieved TFLOP/s, peak memory; with and without block swap.

* CPU (always): a small config (width 512, 4 blocks) on a 3-latent-frame 240x416 window
  (1,170 tokens), float32. Ratios against baselines run in the same process: the
  InfiniteTalk call vs plain Wan I2V (audio=None: the adapter's cost), two speakers vs one
  (the attention-map routing's cost), and half the blocks swapped vs none.
* GPU (`--device cuda`, or `auto` when CUDA is present): the real 14B config with random bf16 weights built
  directly on the GPU, at 480p x 81 frames (latent 21x60x104 = 32,760 tokens), one speaker,
  with and without block swap (20 of 40 blocks), against the device's dense bf16 peak.

Run alone on a shared machine:  flock /tmp/wanvideo-heavy.lock python benchmarks/dit_forward.py
Ends with RESULT name=value lines.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import PeakMemory, add_device_argument, resolve_device
from _harness import results as print_results

from wanvideo.model import build_model, preset
from wanvideo.model.dit import flops_per_forward

SMALL = dict(preset("tiny"), dim=512, ffn_dim=1536, num_heads=8, num_layers=4, freq_dim=256, text_dim=512,
             text_len=64, clip_dim=256, intermediate_dim=128, output_dim=128, context_tokens=8,
             audio_layers=4, audio_channels=64)
# Dense bf16 tensor-core peaks (TFLOP/s) of common GPUs, by a substring of the device name.
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0, "3090": 71.0, "A6000": 155.0}


def inputs(cfg, frames, h, w, speakers=1, device="cpu", dtype=torch.float32, text_tokens=None):
    g = torch.Generator().manual_seed(0)
    audio_frames = 1 + cfg["vae_scale"] * (frames - 1)
    make = lambda *s: torch.randn(*s, generator=g).to(device, dtype)  # noqa: E731
    masks = torch.zeros(3, h, w)
    masks[0, :, : w // 2] = 1
    masks[1, :, w // 2:] = 1
    masks[0, :, w // 2 - 2: w // 2] = 0
    masks[2, :, w // 2 - 2: w // 2] = 1
    return dict(
        x=make(1, 16, frames, h, w), t=torch.tensor([900.0], device=device),
        context=make(1, text_tokens or cfg["text_len"], cfg["text_dim"]), clip_fea=make(1, 257, cfg["clip_dim"]),
        y=make(1, 20, frames, h, w),
        audio=make(speakers, audio_frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"]),
        ref_target_masks=masks.to(device),
    )


def timed(model, args, repeats, cuda=False):
    model(**args)  # warm-up
    if cuda:
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model(**args)
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def cpu_part(results, repeats):
    torch.manual_seed(0)
    model = build_model(SMALL)
    frames, h, w = 3, 30, 52
    args = inputs(SMALL, frames, h, w)
    flops = flops_per_forward(SMALL, (frames, h, w))
    tokens = frames * (h // 2) * (w // 2)
    print(f"CPU small config: width {SMALL['dim']}, {SMALL['num_layers']} blocks, {tokens} tokens, "
          f"{torch.get_num_threads()} threads, {flops / 1e9:.1f} GFLOP per forward")
    two = inputs(SMALL, frames, h, w, speakers=2)
    variants = {
        "audio": lambda: model(**args),
        "plain": lambda: model(**dict(args, audio=None)),
        "two": lambda: model(**two),
        "swap": lambda: (model.enable_block_swap(SMALL["num_layers"] // 2), model(**args), model.enable_block_swap(0)),
    }
    # Interleaved rounds, best of each: the machine may be shared, so this keeps the ratios fair.
    best = {k: float("inf") for k in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(repeats):
        for key, fn in variants.items():
            start = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - start)
    t_audio, t_plain, t_two, t_swap = best["audio"], best["plain"], best["two"], best["swap"]
    print(f"  one speaker     {t_audio:7.3f} s  ({flops / t_audio / 1e12:.3f} TFLOP/s)")
    print(f"  plain I2V       {t_plain:7.3f} s  (adapter costs x{t_audio / t_plain:.2f})")
    print(f"  two speakers    {t_two:7.3f} s  (x{t_two / t_audio:.2f} of one speaker)")
    print(f"  2 blocks swapped{t_swap:7.3f} s  (x{t_swap / t_audio:.2f} of no swap; CPU copies only)")
    results.update(cpu_small_forward_s=round(t_audio, 4), cpu_small_tflops=round(flops / t_audio / 1e12, 4),
                   cpu_adapter_overhead_ratio=round(t_audio / t_plain, 3),
                   cpu_two_speaker_ratio=round(t_two / t_audio, 3), cpu_block_swap_ratio=round(t_swap / t_audio, 3))


def gpu_part(results, repeats, swap_blocks, device):
    if not device.startswith("cuda"):
        print("SKIPPED: 14B at 480p x 81 frames needs a CUDA GPU (--device cuda; none here with auto)")
        results["gpu_14b"] = "skipped"
        return
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev)
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    cfg = preset("wan2.1-i2v-14b")
    frames, h, w = 21, 60, 104
    flops = flops_per_forward(cfg, (frames, h, w), text_tokens=512)
    print(f"GPU {name}: 14B, 480p x 81 frames ({frames * (h // 2) * (w // 2)} tokens), {flops / 1e12:.0f} TFLOP per forward")
    torch.manual_seed(0)
    with torch.device(dev):
        model = build_model(cfg, dtype=torch.bfloat16, device=dev)
    args = inputs(cfg, frames, h, w, device=dev, dtype=torch.bfloat16)
    with PeakMemory(dev) as memory:
        t = timed(model, args, repeats, cuda=True)
    mem = memory.peak / 2**30
    print(f"  no swap: {t:.2f} s, {flops / t / 1e12:.0f} TFLOP/s"
          f"{f' ({flops / t / 1e12 / peak:.0%} of {peak:.0f} peak)' if peak else ''}, peak {mem:.1f} GiB")
    results.update(gpu_14b_forward_s=round(t, 3), gpu_14b_tflops=round(flops / t / 1e12, 1), gpu_14b_peak_gib=round(mem, 2))
    if peak:
        results["gpu_14b_mfu"] = round(flops / t / 1e12 / peak, 3)
    model.enable_block_swap(swap_blocks)
    torch.cuda.empty_cache()
    with PeakMemory(dev) as memory:
        ts = timed(model, args, repeats, cuda=True)
    mem_s = memory.peak / 2**30
    print(f"  {swap_blocks} blocks swapped: {ts:.2f} s (x{ts / t:.2f}), peak {mem_s:.1f} GiB")
    results.update(gpu_14b_swap_forward_s=round(ts, 3), gpu_14b_swap_ratio=round(ts / t, 3),
                   gpu_14b_swap_peak_gib=round(mem_s, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--swap-blocks", type=int, default=20)
    parser.add_argument("--skip-cpu", action="store_true")
    add_device_argument(parser)
    opts = parser.parse_args()
    results = {}
    if not opts.skip_cpu:
        cpu_part(results, opts.repeats)
    gpu_part(results, opts.repeats, opts.swap_blocks, resolve_device(opts.device))
    print_results(results)


if __name__ == "__main__":
    with torch.no_grad():
        main()
