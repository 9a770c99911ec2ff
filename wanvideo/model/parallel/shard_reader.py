"""Reading parts of tensors from .safetensors files: rows [start, stop) of a tensor cost exactly their bytes.

FSDP workers read only their shard's rows of each weight (no rank ever reads or holds the whole state dict);
`bytes_read` counts what was read, so tests and benchmarks can check it.
"""
from __future__ import annotations

import json
import math
import struct

import torch

from ...errors import ModelFileError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
# checkpoint prefixes other tools save the diffusion model under (the native names follow them)
_PREFIXES = ("", "model.diffusion_model.", "diffusion_model.", "model.")


class ShardReader:
    """The tensors of one or more .safetensors files by native name; `read(name, start, stop)` reads rows only."""

    def __init__(self, paths):
        self.paths = [str(p) for p in ([paths] if isinstance(paths, str) else paths)]
        self.entries: dict[str, tuple[str, int, torch.dtype, tuple]] = {}  # name -> (path, offset, dtype, shape)
        self.bytes_read = 0
        self.total_bytes = 0
        for path in self.paths:
            if not path.endswith(".safetensors"):
                raise ModelFileError(f"FSDP weight sharding reads .safetensors files; {path} is not one (use the "
                                     "sequence-parallel pool without FSDP for GGUF or other files)")
            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(length))
            base = 8 + length
            for key, info in header.items():
                if key == "__metadata__":
                    continue
                if info["dtype"] not in _DTYPES:
                    raise ModelFileError(f"{path}: tensor {key} has dtype {info['dtype']}, which FSDP loading "
                                         "cannot read")
                name = next((key[len(p):] for p in _PREFIXES[1:] if key.startswith(p)), key)
                begin, end = info["data_offsets"]
                self.entries[name] = (path, base + begin, _DTYPES[info["dtype"]], tuple(info["shape"]))
                self.total_bytes += end - begin

    def shape(self, name: str) -> tuple:
        return self.entries[name][3]

    def read(self, name: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows [start, stop) (dimension 0) of tensor `name`; a 0-d tensor is read whole."""
        if name not in self.entries:
            raise ModelFileError(f"weight {name} is missing from {', '.join(self.paths)}")
        path, offset, dtype, shape = self.entries[name]
        if not shape:
            start, stop, row_shape = 0, 1, ()
        else:
            stop = shape[0] if stop is None else min(stop, shape[0])
            row_shape = shape[1:]
        rows = max(0, stop - start)
        row_bytes = math.prod(row_shape) * torch.empty((), dtype=dtype).element_size()
        buffer = bytearray(rows * row_bytes)
        if buffer:
            with open(path, "rb") as f:
                f.seek(offset + start * row_bytes)
                f.readinto(buffer)
        self.bytes_read += len(buffer)
        if not buffer:
            return torch.empty((rows, *row_shape), dtype=dtype)
        tensor = torch.frombuffer(buffer, dtype=dtype)
        return tensor.reshape(shape) if not shape else tensor.reshape(rows, *row_shape)
