"""The in-host multi-GPU modes (guidance split, layer split, the sequence-parallel worker pool, FSDP), one window.

Used by benchmarks/multi_gpu.py (RESULT lines there). On the CPU (or fewer than 2 GPUs): the tiny model on
'cpu,cpu' devices, for the numbers that do not need GPUs: the pool's largest latent difference from one process and
the FSDP ranks' share of the weights. With 2+ GPUs: a 14B-wide model (fewer blocks, bf16) at 480p per window,
each mode's speedup against one GPU and peak memory per card.
"""
from __future__ import annotations

import tempfile
import time

import torch
from safetensors.torch import save_file

from wanvideo.model import build_model, preset, tiny_config
from wanvideo.model.config import audio_frames_for
from wanvideo.model.parallel.guidance_split import GuidanceSplit
from wanvideo.model.parallel.layer_split import LayerSplit
from wanvideo.model.parallel.pool import ModelSource, SequenceParallelPool
from wanvideo.sampling import SamplerSettings
from wanvideo.sampling.guidance import COND, DROP_AUDIO, DROP_TEXT, needed_passes
from wanvideo.sampling.window_job import LOCAL, WindowJob


def window_job(cfg: dict, latent, device, dtype, steps: int) -> WindowJob:
    """A one-speaker InfiniteTalk window with text and audio guidance (3 passes per step)."""
    g = torch.Generator().manual_seed(0)
    frames, h, w = latent

    def make(*shape):
        return torch.randn(*shape, generator=g).to(device, dtype)

    ctx, ctx_null = make(1, 12, cfg["text_dim"]), make(1, 9, cfg["text_dim"])
    audio = make(1, audio_frames_for(frames, cfg), cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"])
    common = dict(clip_fea=make(1, 257, cfg["clip_dim"]), y=make(1, 20, frames, h, w), ref_target_masks=None)
    passes = {name: dict(context=ctx if name in (COND, DROP_AUDIO) else ctx_null,
                         audio=audio if name in (COND, DROP_TEXT) else torch.zeros_like(audio), **common)
              for name in needed_passes(5.0, 4.0, True)}
    settings = SamplerSettings(steps=steps, cfg=5.0, audio_cfg=4.0, width=w * 8, height=h * 8).validated()
    noise = torch.randn(16, frames, h, w, generator=g).to(device)
    return WindowJob(0, noise, noise[:, :1].clone(), passes, settings, 5.0, 4.0, True, (h * 8, w * 8))


def timed(executor, model, job):
    start = time.perf_counter()
    latent, _ = executor.denoise(model, job)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return latent.float().cpu(), time.perf_counter() - start


def cpu_checks() -> dict:
    """pool_max_abs_dev and the FSDP ranks' weight fraction, on 2 CPU workers (gloo)."""
    torch.manual_seed(0)
    model = build_model(tiny_config())
    job = window_job(model.config, (3, 4, 6), "cpu", torch.float32, steps=3)
    single, _ = timed(LOCAL, model, job)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/tiny.safetensors"
        save_file(model.state_dict(), path)
        source = ModelSource.of_loaded(model, [path])
        for fsdp in (False, True):
            pool = SequenceParallelPool(source, "cpu,cpu", fsdp=fsdp, timeout=300, start_timeout=600)
            try:
                latent, seconds = timed(pool, model, job)
                infos = [w.info for w in pool.pool.workers]
            finally:
                pool.close()
            name = "fsdp" if fsdp else "pool"
            results[f"{name}_max_abs_dev"] = float((latent - single).abs().max())
            print(f"{name}: window in {seconds:.2f} s (2 CPU workers, started with it)", flush=True)
            if fsdp:
                results["fsdp_param_fraction"] = max(i["param_bytes"] / i["total_param_bytes"] for i in infos)
                results["fsdp_bytes_read_fraction"] = max(i["bytes_read"] / i["file_bytes"] for i in infos)
        for name, executor in (("guidance_split", GuidanceSplit("cpu,cpu")),
                               ("layer_split", LayerSplit("cpu,cpu", free_memory=[1 << 30, 1 << 30], reserve_bytes=0))):
            latent, _ = timed(executor, model, job)
            results[f"{name}_max_abs_dev"] = float((latent - single).abs().max())
    return results


def gpu_runs(gpus: int, layers: int = 8, latent=(21, 60, 104), steps: int = 2) -> dict:
    """Each mode's window time against one GPU and peak memory per card: a 14B-wide model with `layers` blocks."""
    devices = ",".join(f"cuda:{i}" for i in range(min(gpus, 2)))
    cfg = dict(preset("wan2.1-i2v-14b"), num_layers=layers)
    torch.manual_seed(0)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda:0")
    job = window_job(model.config, latent, "cuda:0", torch.bfloat16, steps)
    results = {}

    def peaks():
        return [torch.cuda.max_memory_allocated(i) / 2**30 for i in range(min(gpus, 2))]

    for i in range(min(gpus, 2)):
        torch.cuda.reset_peak_memory_stats(i)
    timed(LOCAL, model, job)  # warm-up
    _, base = timed(LOCAL, model, job)
    results["peak_vram_gib_one_gpu"] = peaks()[0]
    for name, executor in (("guidance_split", GuidanceSplit(devices)), ("layer_split", LayerSplit(devices))):
        for i in range(min(gpus, 2)):
            torch.cuda.reset_peak_memory_stats(i)
        timed(executor, model, job)
        _, seconds = timed(executor, model, job)
        results[f"window_speedup_{name}"] = base / seconds
        for i, p in enumerate(peaks()):
            results[f"peak_vram_gib_{name}_gpu{i}"] = p
        executor.close()
        model.to("cuda:0")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/model.safetensors"
        save_file(model.state_dict(), path)
        model.to("cpu")
        torch.cuda.empty_cache()
        for fsdp in (False, True):
            pool = SequenceParallelPool(ModelSource.of_loaded(model, [path]), devices, fsdp=fsdp)
            try:
                timed(pool, model, job)
                _, seconds = timed(pool, model, job)
                tag = "sequence_parallel" + ("_fsdp" if fsdp else "")
                results[f"window_speedup_{tag}"] = base / seconds
                for rank, peak in sorted(pool.pool.peak_memory.items()):
                    results[f"peak_vram_gib_{tag}_gpu{rank}"] = peak / 2**30
            finally:
                pool.close()
    return results
