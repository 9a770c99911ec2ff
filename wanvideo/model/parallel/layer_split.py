"""Layer split: the transformer's blocks spread over several devices by their free memory (blocks 0..k on the
first, the next ones on the second, ...), so two 16 GB cards hold a model one card cannot. The hidden states and
the per-call state (RoPE tables, text/audio tokens) move once at each boundary; the embeddings and the head stay
on the first device (the model's main device), where the output is made.

Combines with block swap (the swapped blocks stay on the offload device and run on the first device, as without
the split) and with GGUF / fp8 weights (a block's size is what its tensors take in memory).
"""
from __future__ import annotations

import dataclasses
import logging

import torch

from ...errors import InputError
from .devices import free_bytes, parse_devices

log = logging.getLogger(__name__)

RESERVE_BYTES = 2 << 30  # kept free per device for activations, besides the blocks


def tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def plan_layers(block_bytes: list[int], free: list[int], first_used: int = 0) -> list[int]:
    """Device index of each block: blocks in order, each device filled in proportion to its free memory.

    free: usable bytes per device (after the reserve); first_used: bytes the first device already gives to the
    rest of the model. Raises an InputError when the blocks do not fit.
    """
    usable = [max(0, f - (first_used if i == 0 else 0)) for i, f in enumerate(free)]
    total = sum(block_bytes)
    if total > sum(usable):
        raise InputError(f"the model's blocks need {total / 2**30:.1f} GiB but the devices have "
                         f"{sum(usable) / 2**30:.1f} GiB free for them: add a device, turn block swap on "
                         "(blocks_to_swap) or load a GGUF / fp8 file")
    share = [total * u / sum(usable) for u in usable]  # each device's fair part of the blocks
    plan, device, filled = [], 0, 0.0
    for size in block_bytes:
        while device < len(free) - 1 and (filled + size / 2 > share[device] or filled + size > usable[device]):
            device, filled = device + 1, 0.0
        plan.append(device)
        filled += size
    return plan


def _move_state(state, device):
    """The per-call state's tensors moved to `device`, in place (every later block runs there or further on)."""
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, torch.Tensor) and value.device != device:
            setattr(state, field.name, value.to(device))


class LayerSplit:
    """The `layer_split` executor: places the model's blocks over `devices` once, then runs windows as usual."""

    name = "layer_split"

    def __init__(self, devices, free_memory=None, reserve_bytes: int = RESERVE_BYTES):
        self.devices = parse_devices(devices)
        if len(self.devices) < 2:
            raise InputError("layer split needs at least two devices, e.g. cuda:0,cuda:1")
        # bytes free per device: measured (default), or given as a list (one number per device)
        self.free_memory = free_memory or free_bytes
        self.reserve_bytes = reserve_bytes
        self.transfers = 0  # boundary crossings of the hidden states (for tests and logs)
        self.plan: list[int] | None = None
        self._placed = None  # the model placed last (a weak reference would do; one model per executor)
        self._handles: list = []

    def place(self, model) -> list[int]:
        """Put each block on its device (idempotent for the same model); returns the plan (device index per block)."""
        if self._placed is model:
            return self.plan
        if getattr(model, "sequence_parallel", None) is not None:
            raise InputError("layer split and sequence parallel cannot be combined: choose one mode")
        if torch.device(model.main_device) != self.devices[0]:
            raise InputError(f"layer split: the model is on {model.main_device} but the first device listed is "
                             f"{self.devices[0]}; list the model's device first")
        swapped = set(model.block_swap.indices) if getattr(model, "block_swap", None) is not None else set()
        sizes = [0 if i in swapped else tensor_bytes(b) for i, b in enumerate(model.blocks)]
        rest = tensor_bytes(model) - sum(tensor_bytes(b) for b in model.blocks)
        measured = (self.free_memory if isinstance(self.free_memory, (list, tuple))
                    else [self.free_memory(d) for d in self.devices])
        free = [max(0, int(f) - self.reserve_bytes) for f in measured]
        first_param = next(model.blocks.parameters(), None)
        if first_param is not None and first_param.device == self.devices[0]:
            free[0] += sum(sizes)  # the model is already there: its blocks' memory is theirs to keep or leave
            rest = 0
        plan = plan_layers(sizes, free, first_used=rest)
        plan = [0 if i in swapped else d for i, d in enumerate(plan)]  # swapped blocks run on the main device
        self._release()
        for name, child in model.named_children():  # embeddings, head: on the first device, with the output
            if name != "blocks":
                child.to(self.devices[0])
        for i, (block, d) in enumerate(zip(model.blocks, plan, strict=True)):
            if i not in swapped:
                block.to(self.devices[d])
            for extra in self._attached(model, i):
                extra.to(self.devices[d])
        for i in range(1, len(plan)):
            if plan[i] != plan[i - 1]:
                self._handles.append(model.blocks[i].register_forward_pre_hook(self._boundary(self.devices[plan[i]])))
        if plan[-1] != 0:
            self._handles.append(model.head.register_forward_pre_hook(self._boundary(self.devices[0], state=False)))
        self.plan, self._placed = plan, model
        counts = [plan.count(d) for d in range(len(self.devices))]
        log.info("layer split: %s", ", ".join(f"{n} blocks on {dev}" for n, dev in zip(counts, self.devices,
                                                                                       strict=True)))
        return plan

    @staticmethod
    def _attached(model, index: int) -> list:
        """Modules that run right after block `index` (WanAnimate's face block) and so share its device."""
        adapter = getattr(model, "face_adapter", None)
        every = model.config.get("face_block_every") if adapter is not None else None
        if every and index % every == 0 and index // every < len(adapter.fuser_blocks):
            return [adapter.fuser_blocks[index // every]]
        return []

    def _boundary(self, device, state: bool = True):
        def hook(_module, args):
            self.transfers += 1
            moved = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
            if state:
                for a in args:
                    if dataclasses.is_dataclass(a) and not isinstance(a, type):
                        _move_state(a, device)
            return moved
        return hook

    def _release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def denoise(self, model, job, on_step=None, should_stop=None):
        from ...sampling.window_job import run_window_job

        self.place(model)
        return run_window_job(model, job, on_step, should_stop)

    def close(self) -> None:
        self._release()
        self._placed = None
