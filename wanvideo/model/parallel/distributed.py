"""Running one generation on several processes (`torchrun`): rank 0 drives, the other ranks lend their device.

Rank 0 runs everything as on one process (audio embedding, text/image encoders, VAE, the window loop, the frame
store, every file written). Its DiT is the same model object, with a forward pre-hook that first broadcasts the
call's inputs; the other ranks sit in `serve`, receive each call and run the same forward, the video tokens split
across all ranks (`WanInfiniteTalkModel.enable_sequence_parallel`). Because the model object on rank 0 is
unchanged, a run's identity (and so resuming its frame store) does not depend on the number of ranks. A step
cache's decisions are an argument of the call (`step_cache`), so the followers skip the same blocks as rank 0.

Backends: nccl on CUDA devices, gloo on CPUs (how the tests run it). The rendezvous is torchrun's (env://).
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ...errors import InputError, WanVideoError

log = logging.getLogger(__name__)

WAIT_SECONDS = 3600  # longest a rank waits for the others (loading a 14B model and the encoders included)
_STOP = "stop"
_CALL = "call"


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device: str = "auto") -> RankInfo:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); `device` 'auto', 'cuda' or 'cpu'."""
    if not launched_by_torchrun():
        raise InputError("--sequence-parallel splits each window across processes started by torchrun: run "
                         "`torchrun --nproc_per_node N -m wanvideo generate ... --sequence-parallel ulysses`")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} but no CUDA device is visible to rank {rank}")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"rank {rank} wants cuda:{local_rank} but only {torch.cuda.device_count()} GPUs are "
                             "visible: start at most one process per GPU (--nproc_per_node)")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        # Followers wait for rank 0 between calls while it loads encoders, embeds speech, runs the VAE.
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=WAIT_SECONDS))
    return RankInfo(rank, world, local_rank, dev)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _comm_device(model) -> torch.device:
    """Where broadcast tensors must live: the model's device for nccl, the CPU for gloo."""
    if str(dist.get_backend()) == "nccl":
        return torch.device(getattr(model, "main_device", None) or torch.device("cuda", torch.cuda.current_device()))
    return torch.device("cpu")


def _plain(value) -> bool:
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


class _Sender:
    """Rank 0's side: broadcasts each forward call's arguments; a tensor the followers already hold (the same
    object, unmodified) is sent as a reference instead of again."""

    def __init__(self, model):
        self.device = _comm_device(model)
        self.sent: dict[str, tuple] = {}  # argument name -> (tensor last sent under that name, its version)

    def _spec(self, name, value, tensors):
        if isinstance(value, torch.Tensor):
            last = self.sent.get(name)
            if last is not None and last[0] is value and last[1] == value._version:
                return ("same",)
            self.sent[name] = (value, value._version)  # held, so its id cannot be reused by a new tensor
            tensors.append(value)
            return ("tensor", tuple(value.shape), value.dtype)
        if _plain(value):  # numbers, text, and tuples of them (a step cache's plan)
            return ("value", value)
        raise InputError(f"sequence parallel cannot send model argument {name!r} of type {type(value).__name__}")

    def send(self, args, kwargs) -> None:
        tensors: list[torch.Tensor] = []
        header = {
            "op": _CALL,
            "args": [self._spec(f"#{i}", v, tensors) for i, v in enumerate(args)],
            "kwargs": {k: self._spec(k, v, tensors) for k, v in kwargs.items()},
        }
        dist.broadcast_object_list([header], src=0)
        for t in tensors:
            dist.broadcast(t.detach().to(self.device).contiguous(), src=0)

    def stop(self) -> None:
        dist.broadcast_object_list([{"op": _STOP}], src=0)


class _Receiver:
    def __init__(self, model):
        self.device = _comm_device(model)
        self.held: dict[str, torch.Tensor] = {}

    def _value(self, name, spec):
        kind = spec[0]
        if kind == "value":
            return spec[1]
        if kind == "same":
            return self.held[name]
        tensor = torch.empty(spec[1], dtype=spec[2], device=self.device)
        dist.broadcast(tensor, src=0)
        self.held[name] = tensor
        return tensor

    def receive(self):
        box = [None]
        dist.broadcast_object_list(box, src=0)
        header = box[0]
        if header["op"] == _STOP:
            return None
        args = [self._value(f"#{i}", spec) for i, spec in enumerate(header["args"])]
        kwargs = {k: self._value(k, spec) for k, spec in header["kwargs"].items()}
        return args, kwargs


def serve(model) -> int:
    """Follower ranks: run every forward rank 0 broadcasts until it says stop; returns the number of calls.

    An input error raised by the forward is raised the same way on rank 0 (same inputs, same checks, before
    any exchange), which reports it; the follower goes on to the next call.
    """
    receiver = _Receiver(model)
    calls = 0
    while True:
        call = receiver.receive()
        if call is None:
            return calls
        args, kwargs = call
        calls += 1
        try:
            model(*args, **kwargs)
        except WanVideoError as exc:
            log.debug("rank %d: forward raised %s (rank 0 reports it)", dist.get_rank(), exc)


@contextlib.contextmanager
def driving(model):
    """Rank 0: within this context every call of `model` is first broadcast to the followers (`serve`), and
    leaving it releases them. If an error escapes from inside a call, the followers may be inside that call's
    exchanges: they are not told to stop (they could not hear it); this process ends with the error and torchrun
    ends the others."""
    sender = _Sender(model)
    calls = {"open": False}

    def broadcast_call(_module, args, kwargs):
        sender.send(args, kwargs)
        calls["open"] = True

    def call_done(_module, _args, _kwargs, _output):
        calls["open"] = False

    handles = [model.register_forward_pre_hook(broadcast_call, with_kwargs=True),
               model.register_forward_hook(call_done, with_kwargs=True)]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()
        if calls["open"]:
            log.error("a model call failed on rank 0; the other ranks are ended with it")
        else:
            sender.stop()


def run_sequence_parallel(model, mode: str, drive=None, use_yunchang: bool | None = None):
    """Enable sequence parallel on `model` (every rank) and run `drive(model)` on rank 0 while the other ranks
    serve its forward calls. Returns drive's result on rank 0, None elsewhere.

    Rank 0 first tells the others to start; if it fails before getting here it calls `abort_followers` instead,
    so they leave rather than wait.
    """
    global _started
    if dist.get_rank() == 0:
        _started = True
        dist.broadcast_object_list([True], src=0)
    else:
        box = [None]
        dist.broadcast_object_list(box, src=0)
        if not box[0]:
            return None  # rank 0 failed before sampling and reports why
    model.enable_sequence_parallel(mode, use_yunchang=use_yunchang)
    try:
        if dist.get_rank() != 0:
            serve(model)
            return None
        with driving(model):
            return drive(model)
    finally:
        model.sequence_parallel = None


_started = False  # rank 0 has told the followers to start


def abort_followers() -> None:
    """Rank 0 failed before `run_sequence_parallel`: release the ranks waiting for it."""
    if dist.is_initialized() and dist.get_rank() == 0 and not _started:
        dist.broadcast_object_list([False], src=0)
