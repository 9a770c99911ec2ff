"""A pool of worker processes, one per device, that run windows sequence-parallel (optionally FSDP-sharded).

The calling process (ComfyUI's, or the command line's) keeps the encoders, the VAE, the frame store, resume and
the MP4. Per window it sends each worker the `WindowJob` (the conditioning: a few MB) and gets the window's latent
back from rank 0. The workers form their own process group (gloo on CPUs, nccl on GPUs), load the DiT themselves
from its files and import only the engine (`wanvideo`), never the host.

- Progress: rank 0 reports every step. Cancel: the caller's stop request sets an event that rank 0 reads between
  steps (and between guidance passes) and broadcasts, so every rank stops at the same point.
- A worker that dies (killed, out of memory, a crash) is reported as "GPU 1 worker exited: <its last log line>"
  as soon as it is seen (the pool checks every 0.1 s), and the pool is ended; a pool that sends nothing for
  `timeout` seconds is ended with an error too. Never a hang.
- Workers stay warm between windows and runs; a pool unused for `idle_seconds` is released (`release_pools`
  releases all, e.g. when the host frees its models).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import torch

from ... import errors
from ...errors import InputError, WanVideoError
from .devices import label, parse_devices
from .transport import dumps, engine_module

log = logging.getLogger(__name__)

START_SECONDS = 900  # loading a 14B model per worker may take minutes
STEP_SECONDS = 900  # longest wait for one step's word from rank 0 (a 720p step of a 14B model on slow cards)
IDLE_SECONDS = 600
BACKENDS = ("local", "ray")
_POLL = 0.1


class WorkerExitedError(WanVideoError, RuntimeError):
    """A worker process of the multi-GPU pool ended (killed, out of memory, crashed) or stopped answering."""


@dataclass(frozen=True)
class ModelSource:
    """What a worker loads: the model files (as `wanvideo.model.load_model` takes them), their config and dtype,
    and further `load_model` options (e.g. keep_fp8, quantize, attention)."""

    paths: tuple
    config: dict
    dtype: str = "bfloat16"
    options: tuple = ()  # (name, value) pairs of load_model keyword arguments

    def __hash__(self) -> int:  # the config is a dict: hash its text
        return hash((self.paths, json.dumps(self.config, sort_keys=True, default=str), self.dtype, self.options))

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @classmethod
    def of_loaded(cls, model, paths, load_kwargs: dict | None = None, loras=()) -> "ModelSource":
        """The source a loaded model came from: its files (the Wan file and the InfiniteTalk file, when apart),
        its config and compute dtype, and the loader's options (`load_model` keyword arguments)."""
        options = {k: v for k, v in (load_kwargs or {}).items() if k not in ("dtype", "device", "progress",
                                                                              "initial_device", "offload_device")}
        if loras:
            options["loras"] = tuple(tuple(item) for item in loras)
        dtype = str(getattr(model, "compute_dtype", torch.float32)).removeprefix("torch.")
        return cls(tuple(str(p) for p in paths if p), dict(model.config), dtype, tuple(sorted(options.items())))

    def load(self, device):
        from ..loading import load_model

        return load_model(list(self.paths), self.torch_dtype, device, config=self.config, **dict(self.options))


@dataclass(frozen=True)
class PoolSpec:
    source: ModelSource
    devices: tuple  # device names, one worker each
    mode: str = "ulysses"  # sequence-parallel mode: ulysses or ring
    fsdp: bool = False
    threads: int = 1  # torch threads per worker (CPU)
    timeout: float = STEP_SECONDS
    start_timeout: float = START_SECONDS
    backend: str = "local"  # local processes, or "ray" actors (a Ray cluster may span machines)
    ray_address: str | None = None  # the cluster to join when Ray is not initialised yet (None: start one here)


@dataclass
class _Worker:
    rank: int
    device: torch.device
    process: object
    inbox: object
    log_path: str
    info: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return label(self.device, self.rank)

    def last_log_line(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            lines = []
        return lines[-1] if lines else "(nothing logged)"


@contextlib.contextmanager
def _without_host_main():
    """Spawned workers would import the parent's __main__ (ComfyUI's main.py); hide it while they start."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        if "__file__" in saved:
            delattr(main, "__file__")
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


class WorkerPool:
    """Worker processes for one model and device list; `run(job)` denoises one window on all of them."""

    def __init__(self, spec: PoolSpec):
        self.spec = spec
        self.devices = parse_devices(spec.devices)
        if len(self.devices) < 2:
            raise InputError("sequence parallel needs at least two devices, e.g. cuda:0,cuda:1")
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # one window at a time
        self._idle_timer: threading.Timer | None = None
        self.log_dir = tempfile.mkdtemp(prefix="wanvideo-workers-")
        self.windows = 0
        self.last_stop: dict[int, int] = {}  # rank -> steps it had finished when a Cancel stopped it
        self.peak_memory: dict[int, int] = {}  # rank -> peak bytes (GPU memory, or RSS on the CPU), as last reported

    @property
    def alive(self) -> bool:
        return bool(self.workers) and all(w.process.is_alive() for w in self.workers)

    # ----- start / stop --------------------------------------------------------------------------------
    def start(self) -> "WorkerPool":
        world = len(self.devices)
        if self.spec.backend == "ray":
            from .ray_backend import launch

            self._outbox, self._cancel, self.workers = launch(self, _Worker)
        else:
            self._launch_processes()
        ready = set()
        deadline = time.monotonic() + self.spec.start_timeout
        while len(ready) < world:
            message = self._next(deadline, "start")
            if message[0] == "ready":
                ready.add(message[1])
                self.workers[message[1]].info = message[2]
            elif message[0] == "error":
                self.close()
                raise _error_from(message)
        log.info("multi-GPU pool: %d %s workers ready on %s (%s%s)", world, self.spec.backend,
                 ", ".join(map(str, self.devices)), self.spec.mode, ", FSDP" if self.spec.fsdp else "")
        return self

    def _launch_processes(self) -> None:
        import torch.multiprocessing as mp

        from .rendezvous import free_port

        ctx = mp.get_context("spawn")
        target = engine_module("model.parallel.worker").process_main  # workers import only `wanvideo`
        spec = dumps(self.spec)
        self._outbox = ctx.Queue()
        self._cancel = ctx.Event()
        init = f"tcp://127.0.0.1:{free_port()}"
        with _without_host_main():
            for rank, device in enumerate(self.devices):
                inbox = ctx.Queue()
                log_path = os.path.join(self.log_dir, f"worker_{rank}.log")
                process = ctx.Process(target=target, name=f"wanvideo-worker-{rank}", daemon=True,
                                      args=(spec, rank, len(self.devices), str(device), init, inbox,
                                            self._outbox, self._cancel, log_path))
                process.start()
                self.workers.append(_Worker(rank, device, process, inbox, log_path))

    def close(self) -> None:
        """Stop the workers (politely, then by force) and forget them."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        workers, self.workers = self.workers, []
        for w in workers:
            if w.process.is_alive():
                with contextlib.suppress(Exception):
                    w.inbox.put(("stop",))
        deadline = time.monotonic() + 5
        for w in workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive() or self.spec.backend == "ray":  # a Ray actor outlives its serve() call
                w.process.kill()
                w.process.join(timeout=5)

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle_timer = threading.Timer(_idle_seconds(self), self._idle_release)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _idle_release(self) -> None:
        if self.lock.acquire(blocking=False):
            try:
                log.info("multi-GPU pool: idle, releasing its %d workers", len(self.workers))
                self.close()
            finally:
                self.lock.release()

    # ----- one window ----------------------------------------------------------------------------------
    def run(self, job, on_step=None, should_stop=None):
        """The window's latent from rank 0 (on the CPU); progress and Cancel as the local loop has them."""
        with self.lock:
            if not self.alive:
                if self.workers:
                    self.close()
                self.start()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._cancel.clear()
            payload = dumps(job)
            for w in self.workers:
                w.inbox.put(("window", payload))
            try:
                return self._collect(job, on_step, should_stop)
            finally:
                self.windows += 1
                if self.workers:
                    self._arm_idle_timer()

    def _collect(self, job, on_step, should_stop):
        from ...sampling.settings import GenerationInterrupted

        stopped = {}
        while True:
            deadline = time.monotonic() + self.spec.timeout
            message = self._next(deadline, f"window {job.index + 1}", should_stop)
            kind = message[0]
            if kind == "stats":
                self.peak_memory[message[1]] = message[2]
            elif kind == "step" and on_step is not None:
                on_step(message[1])
            elif kind == "done":
                return message[1], message[2]
            elif kind == "stopped":
                stopped[message[1]] = message[2]
                if len(stopped) == len(self.workers):
                    self.last_stop = stopped  # rank -> steps finished when it stopped (for tests and logs)
                    raise GenerationInterrupted(message[3])
            elif kind == "error":
                raise _error_from(message)

    def _next(self, deadline: float, doing: str, should_stop=None):
        """The next message from the workers; a dead worker or silence past the deadline ends the pool."""
        while True:
            if should_stop is not None and not self._cancel.is_set() and should_stop():
                self._cancel.set()
            try:
                message = self._outbox.get(timeout=_POLL)
            except queue.Empty:
                message = None
            if message is not None and message[0] != "failed":
                return message
            dead = [w for w in self.workers if not w.process.is_alive()]
            if message is not None or dead:
                raise self._exited(message)
            if time.monotonic() > deadline:
                names = ", ".join(f"{w.name}: {w.last_log_line()}" for w in self.workers)
                self.close()
                raise WorkerExitedError(f"the multi-GPU workers sent nothing for {self.spec.timeout:.0f} s during "
                                        f"{doing}; they were stopped ({names})")

    def _exited(self, failed) -> WorkerExitedError:
        """The error naming the worker that ended first (a killed one before those that lost it), pool closed."""
        time.sleep(0.5)  # let the others notice and end, so the one to blame is known
        for w in self.workers:
            w.process.is_alive()  # (a Ray actor's exit code is known once asked)
        killed = [w for w in self.workers if w.process.exitcode is not None and w.process.exitcode < 0]
        dead = [w for w in self.workers if w.process.exitcode is not None]
        failed_rank = failed[1] if failed is not None else None
        culprit = (killed or [w for w in dead if w.rank == failed_rank] or dead or
                   [w for w in self.workers if w.rank == failed_rank] or self.workers)[0]
        message = f"{culprit.name} worker exited: {culprit.last_log_line()}"
        self.close()
        return WorkerExitedError(message + "; the pool was stopped (finished windows are kept: run again to resume)")


def _error_from(message) -> Exception:
    """A worker's WanVideoError raised again here with its own class (InputError, NonFiniteError, ...)."""
    _, rank, class_name, text = message
    cls = getattr(errors, class_name, None)
    if isinstance(cls, type) and issubclass(cls, WanVideoError):
        return cls(text)
    return WorkerExitedError(f"worker {rank}: {class_name}: {text}")


# ----- the registry of warm pools ---------------------------------------------------------------------
_POOLS: dict[PoolSpec, WorkerPool] = {}
_IDLE: dict[int, float] = {}
_REGISTRY_LOCK = threading.Lock()


def _idle_seconds(pool: WorkerPool) -> float:
    return _IDLE.get(id(pool), IDLE_SECONDS)


def get_pool(spec: PoolSpec, idle_seconds: float = IDLE_SECONDS) -> WorkerPool:
    """The warm pool for this model and devices, started on first use; other pools (another model or device
    list) are released first, so two pools never hold the same cards."""
    with _REGISTRY_LOCK:
        pool = _POOLS.get(spec)
        others = [_POOLS.pop(s) for s in list(_POOLS) if s != spec]
    for other in others:
        with other.lock:
            other.close()
    if pool is None:
        pool = WorkerPool(spec)
        with _REGISTRY_LOCK:
            _POOLS[spec] = pool
    _IDLE[id(pool)] = idle_seconds
    return pool


def release_pools() -> int:
    """Stop every warm pool (the host frees its models, or the process ends); returns how many were stopped."""
    with _REGISTRY_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        with pool.lock:
            pool.close()
    return len(pools)


class SequenceParallelPool:
    """The `sequence_parallel` executor: each window runs in the worker pool (see module doc)."""

    name = "sequence_parallel"

    def __init__(self, source: ModelSource, devices, *, mode: str = "ulysses", fsdp: bool = False, threads: int = 1,
                 timeout: float = STEP_SECONDS, idle_seconds: float = IDLE_SECONDS,
                 start_timeout: float = START_SECONDS, backend: str = "local", ray_address: str | None = None):
        from .sequence_parallel import MODES

        if mode not in MODES:
            raise InputError(f"unknown sequence-parallel mode {mode!r}; choose one of {', '.join(MODES)}")
        names = tuple(str(d) for d in parse_devices(devices))
        if len(names) < 2:
            raise InputError("sequence parallel needs at least two devices, e.g. cuda:0,cuda:1")
        if backend not in BACKENDS:
            raise InputError(f"unknown worker backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "ray":
            from .ray_backend import require_ray

            require_ray()
        self.spec = PoolSpec(source, names, mode, fsdp, threads, timeout, start_timeout, backend, ray_address)
        self.idle_seconds = idle_seconds

    @property
    def pool(self) -> WorkerPool:
        return get_pool(self.spec, self.idle_seconds)

    def check(self, model, job) -> None:
        config = dict(getattr(model, "config", {}) or {})
        if config and config != dict(self.spec.source.config):
            raise InputError("the multi-GPU workers load another model than the sampler's: give the pool the "
                             "same model files as the loader")
        if job.blend is not None:
            raise InputError("face-only dubbing cannot run in the multi-GPU worker pool yet: use guidance_split or "
                             "layer_split, or turn face_only off")
        if self.spec.fsdp and job.settings.cache_method != "none":
            raise InputError("FSDP weight sharding and step caching cannot be combined yet: set cache_method to "
                             "none, or turn FSDP off")

    def denoise(self, model, job, on_step=None, should_stop=None):
        self.check(model, job)
        return self.pool.run(job.to("cpu"), on_step, should_stop)

    def close(self) -> None:
        pool = _POOLS.get(self.spec)
        if pool is not None:
            with pool.lock:
                pool.close()
