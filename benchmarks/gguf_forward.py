"""GGUF Q8_0 (and Q4_0) vs the full-precision model: forward time and the peak memory of loading each.

The same random weights are written as a .safetensors file (fp32 on the CPU, bf16 on a GPU) and
as GGUF files; each is loaded through load_model (GGUF weights stay packed, dequantised per layer
on every call) and run on the same inputs.

* CPU (always): the width-512, 4-block config of dit_forward.py, 3 latent frames at 240x416,
  float32 compute. Peak memory of loading = the peak resident size during load_model minus the
  size before it, sampled every millisecond, each file in its own process so the peaks do not mix
  (a first, unmeasured load there takes the one-time costs). A safetensors file loaded to fp32 on
  the CPU stays memory-mapped (its pages come in when the forward first reads them), so its load
  peak is near zero; compare the held sizes for it.
* GPU (`--device cuda`, or `auto` when CUDA is present): 4 blocks of the real 14B width (5120, ffn 13824) at 480p x 81
  frames, bf16 compute; peak = torch's allocator peak during the load over what was allocated before it.

Run alone on a shared machine:  flock /tmp/wanvideo-heavy.lock python benchmarks/gguf_forward.py
Ends with RESULT name=value lines.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PeakMemory, add_device_argument, child_result, resolve_device, run_child
from _harness import results as print_results
from dit_forward import SMALL, inputs
from safetensors.torch import save_file

from wanvideo.model import build_model, load_model, preset, tiny_config
from wanvideo.model.quant.gguf_write import write_gguf

KINDS = ("full", "Q8_0", "Q4_0")


def write_files(cfg, folder: Path, dtype, device) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg, dtype=dtype, device=device)
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps({"model_kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()
                                                   if k not in ("clip_dim", "audio_layers", "audio_channels")},
                                  "clip_dim": cfg["clip_dim"],
                                  "audio_proj": {"blocks": cfg["audio_layers"], "channels": cfg["audio_channels"]}})}
    paths = {"full": folder / "model.safetensors"}
    save_file(sd, str(paths["full"]), metadata=meta)
    for kind in KINDS[1:]:
        paths[kind] = folder / f"model-{kind}.gguf"
        write_gguf(paths[kind], sd, kind, metadata=meta)
    del model, sd
    return paths


def _load(path, dtype, device):
    return load_model(str(path), dtype=dtype, device=device)


def load_peak_child(path, warm) -> None:
    """In a fresh process: the peak resident memory that loading `path` (fp32, CPU) adds, sampled every ms."""
    import gc

    # a first load pays one-time costs (imports, allocator and thread-pool set-up, ~50 MB): a tiny model of the
    # same kind takes them, so the measured load's own memory is new memory
    load_model(warm, dtype=torch.float32, device="cpu")
    gc.collect()
    with PeakMemory(interval=0.001) as memory:
        model = load_model(path, dtype=torch.float32, device="cpu")
    del model
    child_result({"added_mib": memory.added / 2**20})


def cpu_load_peak_mib(path, warm) -> float:
    """Peak resident memory added by loading `path` (fp32, CPU), measured in its own process."""
    return run_child(__file__, ["--load-peak", str(path), "--warm", str(warm)])["added_mib"]


def forward_times(models: dict, args, repeats, cuda=False) -> dict:
    best = {k: float("inf") for k in models}
    for m in models.values():
        m(**args)  # warm-up
    for _ in range(repeats):  # interleaved rounds, best of each: fair on a shared machine
        for kind, m in models.items():
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            m(**args)
            if cuda:
                torch.cuda.synchronize()
            best[kind] = min(best[kind], time.perf_counter() - start)
    return best


def held_mib(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def cpu_part(results, repeats):
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(SMALL, Path(tmp), torch.float32, "cpu")
        (Path(tmp) / "warm").mkdir()
        warm = write_files(tiny_config(), Path(tmp) / "warm", torch.float32, "cpu")
        print(f"CPU small config: width {SMALL['dim']}, {SMALL['num_layers']} blocks, fp32 compute, "
              f"{torch.get_num_threads()} threads")
        models = {k: _load(p, torch.float32, "cpu") for k, p in paths.items()}
        args = inputs(SMALL, 3, 30, 52)
        times = forward_times(models, args, repeats)
        for kind, path in paths.items():
            peak = cpu_load_peak_mib(path, warm[kind])
            size = path.stat().st_size / 2**20
            print(f"  {kind:5s} file {size:6.1f} MiB, held {held_mib(models[kind]):6.1f} MiB, load peak {peak:6.1f} MiB, "
                  f"forward {times[kind]:.3f} s (x{times[kind] / times['full']:.2f})")
            tag = kind.lower()
            results[f"cpu_{tag}_load_peak_mib"] = round(peak, 1)
            results[f"cpu_{tag}_held_mib"] = round(held_mib(models[kind]), 1)
        results["gguf_q8_forward_ratio"] = round(times["Q8_0"] / times["full"], 3)
        results["gguf_q4_forward_ratio"] = round(times["Q4_0"] / times["full"], 3)


def gpu_part(results, repeats, device):
    if not device.startswith("cuda"):
        print("SKIPPED: the 14B-width GPU part needs a CUDA GPU (--device cuda; none here with auto)")
        results["gpu_gguf"] = "skipped"
        return
    dev = torch.device(device)
    cfg = dict(preset("wan2.1-i2v-14b"), num_layers=4)
    frames, h, w = 21, 60, 104
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_files(cfg, Path(tmp), torch.bfloat16, dev)
        print(f"GPU {torch.cuda.get_device_name(dev)}: 4 blocks of width 5120, 480p x 81 frames, bf16 compute")
        models = {}
        for kind, path in paths.items():
            torch.cuda.empty_cache()
            with PeakMemory(dev) as memory:
                models[kind] = _load(path, torch.bfloat16, dev)
            peak = memory.added / 2**30
            results[f"gpu_{kind.lower()}_load_peak_gib"] = round(peak, 3)
            results[f"gpu_{kind.lower()}_held_gib"] = round(held_mib(models[kind]) / 1024, 3)
        args = inputs(cfg, frames, h, w, device=dev, dtype=torch.bfloat16, text_tokens=512)
        times = forward_times(models, args, repeats, cuda=True)
        for kind in paths:
            print(f"  {kind:5s} held {results[f'gpu_{kind.lower()}_held_gib']:.2f} GiB, load peak "
                  f"{results[f'gpu_{kind.lower()}_load_peak_gib']:.2f} GiB, forward {times[kind]:.3f} s "
                  f"(x{times[kind] / times['full']:.3f})")
        results["gpu_gguf_q8_forward_ratio"] = round(times["Q8_0"] / times["full"], 3)
        results["gpu_gguf_q4_forward_ratio"] = round(times["Q4_0"] / times["full"], 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cpu", action="store_true")
    add_device_argument(parser)
    parser.add_argument("--load-peak", help=argparse.SUPPRESS)
    parser.add_argument("--warm", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.load_peak:
        load_peak_child(opts.load_peak, opts.warm)
        return
    results = {}
    if not opts.skip_cpu:
        cpu_part(results, opts.repeats)
    gpu_part(results, opts.repeats, resolve_device(opts.device))
    print_results(results)


if __name__ == "__main__":
    with torch.no_grad():
        main()
