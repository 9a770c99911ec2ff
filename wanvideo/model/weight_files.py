"""Reading weight files one tensor at a time: .safetensors (memory-mapped), torch pickles and .gguf (gguf_file.py).

The safetensors header is parsed here (8-byte length + JSON) before `safe_open` touches
the file, because it lists every tensor's name, dtype and shape without reading data,
and because it lets us tell a truncated download, a Git LFS pointer or an HTML error
page apart with a message that says what to do (safetensors itself only says
"incomplete metadata").
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..torch_inputs import check_finite, load_torch_state_dict
from .file_sniff import read_safetensors_header as read_safetensors_header  # moved there; re-exported here

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _name(path) -> str:
    return os.path.basename(str(path))


class SafetensorsSource:
    """Tensors of one .safetensors file, read lazily through the memory map."""

    def __init__(self, path):
        from safetensors import safe_open

        self.path = str(path)
        self.header, self.metadata = read_safetensors_header(path)
        try:
            self._file = safe_open(self.path, framework="pt", device="cpu")
        except Exception as exc:  # noqa: BLE001 - any parse error here means a damaged file
            raise ModelFileError(f"{_name(path)} could not be opened as safetensors ({exc}): re-download it") from exc

    def keys(self):
        return list(self.header)

    def shape(self, key) -> tuple:
        return tuple(self.header[key]["shape"])

    def dtype(self, key):
        return SAFETENSORS_DTYPES.get(self.header[key]["dtype"])

    def get(self, key) -> torch.Tensor:
        return check_finite(self._file.get_tensor(key), key, self.path)


class DictSource:
    """Tensors of a state dict already in memory (torch pickles, or tests)."""

    def __init__(self, tensors: dict, path="<state dict>", metadata=None):
        self.path = str(path)
        self.tensors = tensors
        self.metadata = metadata or {}

    def keys(self):
        return list(self.tensors)

    def shape(self, key) -> tuple:
        return tuple(self.tensors[key].shape)

    def dtype(self, key):
        return self.tensors[key].dtype

    def get(self, key) -> torch.Tensor:
        return check_finite(self.tensors[key], key, self.path)


def open_weight_file(path):
    """A tensor source for a weights file (.safetensors, or .pt/.pth/.bin/.ckpt loaded with weights_only)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".gguf":
        from .quant.gguf_file import GGUFSource

        return GGUFSource(path)
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        return DictSource(load_torch_state_dict(path, "a model's weights"), path)
    return SafetensorsSource(path)
