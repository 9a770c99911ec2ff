"""The worker side of the multi-GPU pool: join the group, load the model (whole or FSDP-sharded), run windows.

`WindowServer` is what a worker is, whatever starts it: a spawned process (`process_main`, the local pool) or a
Ray actor (ray_backend.py). It imports only the engine.
"""
from __future__ import annotations

import datetime
import logging
import os
import queue
import traceback

import torch

from ...errors import WanVideoError
from .transport import loads

log = logging.getLogger("wanvideo.worker")


def log_to_file(rank: int, log_path: str) -> None:
    """This worker's log lines go to its own file (the pool names its last line when the worker dies)."""
    import faulthandler

    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(f"rank {rank}: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    fault_log = open(log_path + ".fault", "w")  # noqa: SIM115 - open for the process's life
    faulthandler.enable(fault_log)


class WindowServer:
    """One rank: joins the workers' process group at `init` and loads the model on `device`."""

    def __init__(self, spec, rank: int, world: int, device: str, init: str):
        import torch.distributed as dist

        self.rank = rank
        torch.set_num_threads(spec.threads)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        log.info("joining %d workers on %s", world, device)
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo", init_method=init, rank=rank,
                                world_size=world, timeout=datetime.timedelta(seconds=spec.timeout))
        self.model, self.info = load(spec, self.device)
        self.model.enable_sequence_parallel(spec.mode)
        self.comm = self.device if self.device.type == "cuda" else torch.device("cpu")
        log.info("ready")

    def stop_requested(self, cancelled) -> bool:
        """Rank 0 decides, every rank follows (a broadcast): all ranks leave at the same step."""
        import torch.distributed as dist

        flag = torch.tensor([1 if self.rank == 0 and cancelled() else 0], dtype=torch.int32, device=self.comm)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def run(self, job, on_step=None, cancelled=lambda: False) -> tuple:
        """('done', latent on the CPU, note) | ('stopped', steps finished, message) | ('error', class, message)."""
        from ...sampling.settings import GenerationInterrupted
        from ...sampling.window_job import run_window_job

        job = job.to(self.device)
        steps = [0]

        def step_done(i):
            steps[0] = i
            log.info("window %d step %d/%d", job.index + 1, i, job.settings.steps)
            if on_step is not None:
                on_step(i)

        try:
            latent, note = run_window_job(self.model, job, step_done, lambda: self.stop_requested(cancelled))
        except GenerationInterrupted as exc:
            log.info("window %d stopped after step %d", job.index + 1, steps[0])
            return ("stopped", steps[0], str(exc))
        except WanVideoError as exc:  # the same on every rank (same inputs)
            log.info("window %d: %s", job.index + 1, exc)
            return ("error", type(exc).__name__, str(exc))
        log.info("window %d done", job.index + 1)
        return ("done", latent.float().cpu(), note)


def peak_memory(device: torch.device) -> int:
    """This worker's peak so far: GPU memory allocated on its device, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load(spec, device: torch.device):
    import resource

    if spec.fsdp:
        from .fsdp import load_sharded

        model, info = load_sharded(spec.source.config, spec.source.paths, spec.source.torch_dtype, device)
    else:
        model = spec.source.load(device)
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        info = dict(param_bytes=total, total_param_bytes=total)
    info["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return model, info


def process_main(spec, rank: int, world: int, device: str, init: str, inbox, outbox, cancel, log_path: str) -> None:
    """A spawned worker process of the local pool: serve windows from `inbox` until told to stop (spec and jobs
    arrive pickled, see transport.py)."""
    log_to_file(rank, log_path)
    try:
        spec = loads(spec)
        server = WindowServer(spec, rank, world, device, init)
        outbox.put(("ready", rank, server.info))
        _serve(server, inbox, outbox, cancel)
    except BaseException as exc:  # noqa: BLE001 - reported to the pool, then this process ends
        if isinstance(exc, WanVideoError):
            log.error("%s", exc)
            outbox.put(("error", rank, type(exc).__name__, str(exc)))
        else:
            log.error("%s", traceback.format_exc().rstrip())
            log.error("failed: %s: %s", type(exc).__name__, exc)
            outbox.put(("failed", rank))
        raise SystemExit(1) from None
    outbox.close()
    outbox.join_thread()  # what this worker sent is delivered
    logging.shutdown()
    os._exit(0)  # not the process group's or the interpreter's slow teardown: the pool is waiting


def _serve(server: WindowServer, inbox, outbox, cancel) -> None:
    rank = server.rank
    parent = os.getppid()
    while True:
        try:
            message = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the host process is gone: nobody will send work or stop
                log.info("the host process ended; stopping")
                return
            continue
        if message[0] == "stop":
            log.info("stopping")
            return
        on_step = (lambda i: outbox.put(("step", i))) if rank == 0 else None
        result = server.run(loads(message[1]), on_step, cancel.is_set)
        outbox.put(("stats", rank, peak_memory(server.device)))
        if result[0] == "stopped":
            outbox.put(("stopped", rank, result[1], result[2]))
        elif rank == 0:
            outbox.put(result if result[0] == "done" else ("error", rank, result[1], result[2]))
