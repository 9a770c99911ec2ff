"""Ray actors as the multi-GPU pool's workers (optional: `pip install ray`): the same `WindowServer` per rank and
the same messages as the local processes, so the pool can span the machines of a Ray cluster.

Each actor asks Ray for one GPU (or one CPU); rank 0's actor names the address the ranks meet at. Queues are
`ray.util.queue.Queue`s, Cancel a small flag actor, and an actor that dies shows as a finished `serve` call.
"""
from __future__ import annotations

import os

from ...errors import InputError
from .transport import ENGINE_ROOT, dumps


def require_ray():
    try:
        import ray
    except ImportError:
        raise InputError("the Ray backend needs Ray: `pip install ray` (or use the local worker processes)") from None
    return ray


class _ActorProcess:
    """A Ray actor seen as a process (is_alive / exitcode / pid / join / kill), for the pool's bookkeeping."""

    def __init__(self, ray, actor, pid: int):
        self.ray, self.actor, self.pid = ray, actor, pid
        self.serving = None  # the ObjectRef of the actor's serve() call
        self.exitcode = None

    def is_alive(self) -> bool:
        if self.exitcode is not None:
            return False
        done, _ = self.ray.wait([self.serving], timeout=0)
        if not done:
            return True
        try:
            self.ray.get(done[0])
            self.exitcode = 0
        except self.ray.exceptions.RayActorError:
            self.exitcode = -9  # the actor died (killed, out of memory)
        except Exception:  # noqa: BLE001 - serve() raised: the worker reported it and ended
            self.exitcode = 1
        return False

    def join(self, timeout=None) -> None:
        self.ray.wait([self.serving], timeout=timeout)
        self.is_alive()

    def kill(self) -> None:
        self.ray.kill(self.actor)
        self.exitcode = self.exitcode if self.exitcode is not None else -9


def _actor_classes(ray):
    @ray.remote
    class Flag:
        def __init__(self):
            self.value = False

        def set(self):
            self.value = True

        def clear(self):
            self.value = False

        def is_set(self):
            return self.value

    @ray.remote
    class Worker:
        def where(self):
            import socket

            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("0.0.0.0", 0))
                port = s.getsockname()[1]
            return ray.util.get_node_ip_address(), port, os.getpid()

        def serve(self, root, spec, rank, world, device, init, inbox, outbox, cancel, log_path):
            import sys

            if root not in sys.path:  # the engine, under its top-level name (see transport.py)
                sys.path.append(root)
            from wanvideo.model.parallel.transport import loads
            from wanvideo.model.parallel.worker import WindowServer, _serve, log_to_file

            log_to_file(rank, log_path)
            try:
                server = WindowServer(loads(spec), rank, world, device, init)
            except Exception as exc:
                outbox.put(("failed", rank))
                raise exc
            outbox.put(("ready", rank, server.info))
            class CancelFlag:  # the flag actor as the worker loop reads an Event
                def is_set(self):
                    return bool(ray.get(cancel.is_set.remote()))

            _serve(server, inbox, outbox, CancelFlag())

    return Flag, Worker


class _RemoteFlag:
    """The flag actor with an Event's methods (what the worker loop and the pool call)."""

    def __init__(self, ray, actor):
        self.ray, self.actor = ray, actor

    def is_set(self) -> bool:
        return bool(self.ray.get(self.actor.is_set.remote()))

    def set(self) -> None:
        self.ray.get(self.actor.set.remote())

    def clear(self) -> None:
        self.ray.get(self.actor.clear.remote())


def launch(pool, worker_record):
    """Start one actor per device; returns (outbox, cancel flag, worker records) for WorkerPool."""
    from ray.util.queue import Queue

    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=pool.spec.ray_address, ignore_reinit_error=True)
    flag_cls, worker_cls = _actor_classes(ray)
    outbox = Queue()
    cancel = flag_cls.remote()
    world = len(pool.devices)
    actors = []
    for device in pool.devices:
        gpu = device.type == "cuda"
        actors.append(worker_cls.options(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0).remote())
    places = ray.get([a.where.remote() for a in actors])
    init = f"tcp://{places[0][0]}:{places[0][1]}"
    spec = dumps(pool.spec)
    workers = []
    for rank, (device, actor, place) in enumerate(zip(pool.devices, actors, places, strict=True)):
        inbox = Queue()
        log_path = os.path.join(pool.log_dir, f"worker_{rank}.log")
        process = _ActorProcess(ray, actor, place[2])
        # Ray shows each actor only its own GPU: inside, it is cuda:0
        inner = "cuda:0" if device.type == "cuda" else "cpu"
        process.serving = actor.serve.remote(ENGINE_ROOT, spec, rank, world, inner, init, inbox, outbox, cancel,
                                             log_path)
        workers.append(worker_record(rank, device, process, inbox, log_path))
    return outbox, _RemoteFlag(ray, cancel), workers
