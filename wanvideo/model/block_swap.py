"""Block swap: keep some transformer blocks on the offload device (CPU) and bring each to the main
device just before it runs, prefetching the next swapped block on a side CUDA stream meanwhile.

The offloaded copy is the master: running a block copies its tensors to the main device
(pinned memory, non-blocking), and releasing it only drops the device copy, so nothing is
ever copied back. On a CPU-only machine the same path runs with plain copies.
"""
from __future__ import annotations

import contextlib

import torch


class BlockSwapper:
    def __init__(self, model, count: int, main_device, offload_device="cpu", prefetch: bool = True):
        self.main_device = torch.device(main_device)
        self.offload_device = torch.device(offload_device)
        self.indices = list(range(min(int(count), len(model.blocks))))
        self.prefetch = prefetch
        self.loads = 0  # blocks brought to the main device (for tests and logs)
        cuda = self.main_device.type == "cuda"
        self.stream = torch.cuda.Stream(self.main_device) if cuda else None
        # block index -> [(owner dict (module._parameters or ._buffers), name, offloaded tensor)]
        self._slots: dict[int, list] = {}
        for i in self.indices:
            slots = []
            for module in model.blocks[i].modules():
                for store in (module._parameters, module._buffers):
                    for name, tensor in store.items():
                        if tensor is None:
                            continue
                        data = tensor.data.to(self.offload_device)
                        if cuda and self.offload_device.type == "cpu" and not data.is_pinned():
                            data = data.pin_memory()  # lets the copy to the GPU run asynchronously
                        _set(store, name, data)
                        slots.append((store, name, data))
            self._slots[i] = slots
        self._pending: dict[int, tuple] = {}  # block -> (event or None, [device tensors])

    def _start_load(self, i: int) -> None:
        if i in self._pending or i not in self._slots:
            return
        ctx = torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()
        with ctx:
            copies = [t.to(self.main_device, non_blocking=True, copy=True) for _, _, t in self._slots[i]]
            event = self.stream.record_event() if self.stream is not None else None
        self._pending[i] = (event, copies)
        self.loads += 1

    def _next_swapped(self, i: int):
        pos = self.indices.index(i)
        return self.indices[(pos + 1) % len(self.indices)]

    @contextlib.contextmanager
    def use(self, i: int):
        """Context in which block i's tensors are on the main device."""
        if i not in self._slots:
            yield
            return
        self._start_load(i)
        event, copies = self._pending.pop(i)
        if event is not None:
            current = torch.cuda.current_stream(self.main_device)
            current.wait_event(event)
            for t in copies:
                t.record_stream(current)  # the allocator must not reuse them before this stream is done
        for (store, name, _), copy in zip(self._slots[i], copies, strict=False):
            _set(store, name, copy)
        if self.prefetch and len(self.indices) > 1:
            self._start_load(self._next_swapped(i))
        try:
            yield
        finally:
            for store, name, data in self._slots[i]:
                _set(store, name, data)
            del copies

    def release_all(self) -> None:
        """Drop prefetched device copies (frees their memory)."""
        self._pending.clear()


def _set(store: dict, name: str, data: torch.Tensor) -> None:
    current = store[name]
    if isinstance(current, torch.nn.Parameter):
        current.data = data
    else:
        store[name] = data
