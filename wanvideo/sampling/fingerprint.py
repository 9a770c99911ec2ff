"""Digests identifying a run's inputs, so an identical rerun finds (and resumes) its frame store."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

# Elements sampled per weight tensor: a 14B model fingerprints in well under a second, and a
# different checkpoint or a merged LoRA changes the sampled values.
_SAMPLES_PER_TENSOR = 2048


class Digest:
    """sha256 over a sequence of labelled values (tensors hashed by dtype, shape and bytes)."""

    def __init__(self):
        self._h = hashlib.sha256()

    def add(self, label: str, value) -> "Digest":
        self._h.update(label.encode() + b"\0")
        if value is None:
            self._h.update(b"<none>")
        elif isinstance(value, torch.Tensor):
            self._add_array(_tensor_bytes(value), str(value.dtype), tuple(value.shape))
        elif isinstance(value, np.ndarray):
            self._add_array(np.ascontiguousarray(value), str(value.dtype), value.shape)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in value):
            self._h.update(f"<seq {len(value)}>".encode())
            for i, item in enumerate(value):
                self.add(f"{label}[{i}]", item)
        else:
            self._h.update(json.dumps(value, sort_keys=True, default=str).encode())
        return self

    def _add_array(self, array: np.ndarray, dtype: str, shape) -> None:
        self._h.update(f"<{dtype} {tuple(shape)}>".encode())
        self._h.update(memoryview(array).cast("B"))

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _tensor_bytes(t: torch.Tensor) -> np.ndarray:
    """The tensor's raw bytes as a numpy array (reinterpreting dtypes numpy lacks)."""
    t = t.detach().cpu().contiguous()
    if t.dtype.is_floating_point and t.element_size() == 2:  # bfloat16 / float16
        t = t.view(torch.int16)
    elif t.dtype.is_floating_point and t.element_size() == 1:  # float8 kinds
        t = t.view(torch.uint8)
    elif t.dtype == torch.bool:
        t = t.to(torch.uint8)
    elif t.is_complex():
        t = torch.view_as_real(t)
    return t.numpy()


def module_fingerprint(module: torch.nn.Module, samples: int = _SAMPLES_PER_TENSOR) -> str:
    """A digest of a module's parameter/buffer names, shapes, dtypes and an evenly strided sample of values."""
    digest = Digest()
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        digest.add(name, [str(tensor.dtype), list(tensor.shape)])
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        try:
            flat = tensor.detach().reshape(-1)
            if flat.dtype.is_floating_point and flat.element_size() == 1:
                flat = flat.view(torch.uint8)  # float8 kinds: gather their bytes (no float8 indexing kernels)
            if flat.numel() > samples:
                index = torch.linspace(0, flat.numel() - 1, samples, device=flat.device).long()
                flat = flat[index]
            digest.add(name + ":values", flat)
        except (RuntimeError, TypeError, NotImplementedError):
            # an exotic tensor type (quantised wrapper): its name, shape and dtype identify it
            digest.add(name + ":values", "<unsampled>")
    return digest.hexdigest()
