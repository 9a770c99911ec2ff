"""Run a function on N gloo ranks (spawned processes, rendezvous on 127.0.0.1) from a test.

The function is called as fn(rank, world, *args) in each process with the default process group already
initialised; an exception in any rank fails the caller, and a rank that hangs is ended after `timeout` seconds.
"""
from __future__ import annotations

import os
import socket
import time

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, fn, world, port, threads, args):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def run_ranks(fn, world: int, *args, timeout: float = 240, threads: int = 1) -> None:
    """fn must be importable by name (a module-level function) for the spawned processes."""
    context = mp.start_processes(_entry, args=(fn, world, free_port(), threads, args), nprocs=world, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            raise TimeoutError(f"{world} ranks did not finish within {timeout} s")
