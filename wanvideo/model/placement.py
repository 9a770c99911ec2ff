"""Where the DiT's weights live between runs: on the main device, partly streamed, or all offloaded.

A host's model manager (ComfyUI's, adapted in nodes/model_patcher.py) decides how many bytes of
weights may stay on the GPU; this module only moves tensors, so the engine stays host-free.

Units: the "core" (everything outside `model.blocks`: embeddings, head, projections; needed on the main
device for any forward) and each transformer block. A partially loaded model keeps the core and the
last blocks on the main device and streams the first blocks from the offload device with the block
swapper (the same mechanism as the loader's `blocks_to_swap`, which stays the minimum). Sizes are the
bytes of parameters and buffers as stored (fp8, packed GGUF or bf16 alike); the module is opaque.
"""
from __future__ import annotations

import logging

import torch
import torch.nn as nn

log = logging.getLogger("wanvideo")


def tensor_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers as stored (each storage counted once)."""
    seen, total = set(), 0
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor is None or tensor.device.type == "meta":
            continue
        key = (tensor.device, tensor.untyped_storage().data_ptr()) if tensor.numel() else id(tensor)
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total


def _core_modules(model: nn.Module):
    """The modules outside `model.blocks` (their own tensors only, not the blocks')."""
    return [m for name, m in model.named_children() if name != "blocks"]


class WeightPlacement:
    """Moves a DiT's weights between its main device and an offload device, block by block.

    loaded == False: everything on the offload device (the swapped blocks' pinned copies stay as they are).
    loaded == True: core and blocks[streamed:] on the main device, blocks[:streamed] streamed by a BlockSwapper.
    """

    def __init__(self, model: nn.Module, offload_device, loaded: bool = False):
        self.model = model
        self.main_device = torch.device(model.main_device)
        self.offload_device = torch.device(offload_device)
        swapper = getattr(model, "block_swap", None)
        self.min_streamed = len(swapper.indices) if swapper is not None else 0  # the user's blocks_to_swap
        self.block_sizes = [tensor_bytes(b) for b in model.blocks]
        self.core_size = sum(tensor_bytes(m) for m in _core_modules(model))
        self.loaded = loaded
        self.streamed = self.min_streamed if loaded else len(self.block_sizes)
        self.moves = 0  # block/core transfers done (for tests and logs)

    # ----- sizes ------------------------------------------------------------------------------------------
    @property
    def managed_bytes(self) -> int:
        """What a host can load: the core and every block the user did not ask to swap."""
        return self.core_size + sum(self.block_sizes[self.min_streamed:])

    @property
    def loaded_bytes(self) -> int:
        if not self.loaded:
            return 0
        return self.core_size + sum(self.block_sizes[self.streamed:])

    @property
    def swap_working_bytes(self) -> int:
        """Device memory the streamed blocks need while running: the running block and the prefetched one."""
        streamed = sorted(self.block_sizes[:self.streamed], reverse=True)[:2]
        return sum(streamed)

    @property
    def device(self) -> torch.device:
        return self.main_device if self.loaded else self.offload_device

    # ----- moves ------------------------------------------------------------------------------------------
    def load(self, budget: float) -> int:
        """Load the core and as many blocks (from the last) as fit into `budget` more bytes; returns bytes loaded."""
        before = self.loaded_bytes
        n = len(self.block_sizes)
        room = budget if self.loaded else budget - self.core_size
        streamed = self.streamed if self.loaded else n
        while streamed > self.min_streamed and self.block_sizes[streamed - 1] <= room:
            streamed -= 1
            room -= self.block_sizes[streamed]
        if not self.loaded or streamed != self.streamed:
            self._place(streamed)
        return self.loaded_bytes - before

    def unload_blocks(self, memory_to_free: float) -> int:
        """Stream more blocks (first resident ones first) until `memory_to_free` bytes are freed; returns the bytes."""
        if not self.loaded:
            return 0
        n, streamed, freed = len(self.block_sizes), self.streamed, 0
        while streamed < n and freed < memory_to_free:
            freed += self.block_sizes[streamed]
            streamed += 1
        if streamed != self.streamed:
            self._place(streamed)
        return freed

    def unload(self) -> int:
        """Everything to the offload device; returns the bytes freed on the main device."""
        freed = self.loaded_bytes
        if self.loaded:
            self._drop_swapper()
            for module in _core_modules(self.model):
                module.to(self.offload_device)
            for block in self.model.blocks[self.streamed:]:
                block.to(self.offload_device)
            self.moves += 1 + len(self.block_sizes) - self.streamed
            self.loaded, self.streamed = False, len(self.block_sizes)
        return freed

    def _drop_swapper(self) -> None:
        swapper = getattr(self.model, "block_swap", None)
        if swapper is not None:
            swapper.release_all()  # the masters are in the modules between uses; only prefetched copies go
        self.model.block_swap = None

    def _place(self, streamed: int) -> None:
        from .block_swap import BlockSwapper

        self._drop_swapper()
        if not self.loaded:
            for module in _core_modules(self.model):
                module.to(self.main_device)
            self.moves += 1
        for i in range(streamed, len(self.block_sizes)):
            if not self.loaded or i < self.streamed:
                self.model.blocks[i].to(self.main_device)
                self.moves += 1
        if streamed:
            self.model.block_swap = BlockSwapper(self.model, streamed, self.main_device, self.offload_device)
        self.loaded, self.streamed = True, streamed
        log.info("WanVideo InfiniteTalk: %d/%d blocks on %s, %d streamed from %s (%.2f GB of weights loaded)",
                 len(self.block_sizes) - streamed, len(self.block_sizes), self.main_device, streamed,
                 self.offload_device, self.loaded_bytes / 1e9)
