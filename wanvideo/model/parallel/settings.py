"""The multi-GPU options (the InfiniteTalk Multi-GPU node, the command line's --parallel ...), declared once, and
the executor they make (kept between runs, so model copies and worker processes stay warm)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from ...errors import InputError
from ...options import option
from .devices import parse_devices

PARALLEL_MODES = ("guidance_split", "layer_split", "sequence_parallel")
SEQUENCE_SPLITS = ("ulysses", "ring")
WORKER_BACKENDS = ("local", "ray")


@dataclass
class MultiGPUSettings:
    parallel: str | None = option("guidance_split", choices=PARALLEL_MODES, cli_default=None, help=(
        "How one generation uses several GPUs. guidance_split: each guidance pass of a step on its own GPU, a "
        "copy of the model on each (fastest when the model fits one card; cfg + audio_cfg = 3 passes). "
        "layer_split: the transformer blocks spread over the GPUs by free memory (a model too big for one card, "
        "no CPU block swap). sequence_parallel: each window's tokens split over worker processes, one per GPU "
        "(with fsdp each holds part of the weights)."))
    devices: str = option("cuda:0,cuda:1", help=(
        "The GPUs to use, comma-separated; the first is the one the model is loaded on (ComfyUI's main GPU)."))
    fsdp: bool = option(False, help=(
        "sequence_parallel only: shard the weights over the workers (FSDP2), each holding about 1/N of them and "
        "reading only its part of the .safetensors file. Needs native-layout .safetensors, no LoRA, no step cache."))
    sequence_split: str = option("ulysses", choices=SEQUENCE_SPLITS, help=(
        "sequence_parallel only: ulysses (attention heads over the GPUs, as far as they divide) or ring (token "
        "blocks passed around)."))
    worker_backend: str = option("local", choices=WORKER_BACKENDS, help=(
        "sequence_parallel only: local worker processes, or Ray actors (pip install ray; a Ray cluster may span "
        "several machines)."))
    ray_address: str = option("", help=(
        "worker_backend ray: the Ray cluster to join (e.g. ray://head:10001 or auto); empty: start Ray here."))
    idle_timeout: int = option(600, min=10, max=86400, help=(
        "sequence_parallel: seconds the worker processes stay loaded after the last window (their VRAM is then "
        "freed)."))
    worker_timeout: int = option(900, min=10, max=86400, help=(
        "sequence_parallel: longest wait for a step (or for the workers to load) before they are stopped with an "
        "error."))

    def validated(self) -> "MultiGPUSettings":
        if self.parallel not in PARALLEL_MODES:
            raise InputError(f"parallel must be one of {', '.join(PARALLEL_MODES)}, got {self.parallel!r}")
        devices = parse_devices(self.devices)
        if len(devices) < 2:
            raise InputError(f"{self.parallel} needs at least two devices, e.g. cuda:0,cuda:1 (got {self.devices!r})")
        if self.parallel != "sequence_parallel" and (self.fsdp or self.worker_backend != "local"):
            raise InputError("fsdp and the Ray backend are for sequence_parallel: set parallel to "
                             "sequence_parallel, or turn them off")
        if self.worker_backend not in WORKER_BACKENDS:
            raise InputError(f"worker_backend must be one of {', '.join(WORKER_BACKENDS)}")
        return self


_EXECUTORS: dict = {}
_LOCK = threading.Lock()


def make_executor(settings: MultiGPUSettings, source=None, threads: int = 1):
    """The executor for these settings (the same object for the same settings, so it stays warm).

    source: the ModelSource the sequence-parallel workers load (the sampler's model files)."""
    s = settings.validated()
    key = (s.parallel, s.devices, s.fsdp, s.sequence_split, s.worker_backend, s.ray_address, s.idle_timeout,
           s.worker_timeout, source, threads)
    with _LOCK:
        executor = _EXECUTORS.get(key)
        if executor is not None:
            return executor
        if s.parallel == "guidance_split":
            from .guidance_split import GuidanceSplit

            executor = GuidanceSplit(s.devices)
        elif s.parallel == "layer_split":
            from .layer_split import LayerSplit

            executor = LayerSplit(s.devices)
        else:
            from .pool import SequenceParallelPool

            if source is None:
                raise InputError("sequence_parallel loads the model in its workers from the model's files: load "
                                 "it with the InfiniteTalk Model Loader (or give --model files)")
            executor = SequenceParallelPool(source, s.devices, mode=s.sequence_split, fsdp=s.fsdp, threads=threads,
                                            timeout=s.worker_timeout, start_timeout=max(s.worker_timeout, 600),
                                            idle_seconds=s.idle_timeout, backend=s.worker_backend,
                                            ray_address=s.ray_address or None)
        _EXECUTORS[key] = executor
        return executor


def release_executors() -> None:
    """Drop every warm executor: model copies, layer placements and worker pools (the host frees its models)."""
    from .pool import release_pools

    with _LOCK:
        executors = list(_EXECUTORS.values())
        _EXECUTORS.clear()
    for executor in executors:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    release_pools()
