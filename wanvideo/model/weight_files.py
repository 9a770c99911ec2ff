"""Reading weight files one tensor at a time: .safetensors (memory-mapped), torch pickles and .gguf (gguf_file.py).

The safetensors header is parsed here (8-byte length + JSON) before `safe_open` touches
the file, because it lists every tensor's name, dtype and shape without reading data,
and because it lets us tell a truncated download, a Git LFS pointer or an HTML error
page apart with a message that says what to do (safetensors itself only says
"incomplete metadata").
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..torch_inputs import check_finite, load_torch_state_dict
from .file_sniff import check_start, truncated

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_MAX_HEADER = 100 * 1024 * 1024


def _name(path) -> str:
    return os.path.basename(str(path))


def read_safetensors_header(path) -> tuple[dict, dict]:
    """({name: {"dtype", "shape", "data_offsets"}}, metadata) of a .safetensors file, validated against its size."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        start = f.read(64)
        f.seek(8)
        head = start[:8]
        check_start(path, start, size)
        if len(head) < 8:
            raise truncated(path, size)
        n = int.from_bytes(head, "little")
        if n <= 1 or n > _MAX_HEADER:
            raise ModelFileError(f"{_name(path)} is not a safetensors file (bad header): re-download it or pick another file")
        if 8 + n > size:
            raise truncated(path, size, "it ends inside its header")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFileError(f"{_name(path)} is not a safetensors file (unreadable header): re-download it") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{_name(path)} is not a safetensors file (its header is a JSON "
                             f"{type(header).__name__}, not a table of tensors): re-download it")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        metadata = {}
    for key, entry in header.items():
        _check_entry(path, key, entry)
    end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
    if 8 + n + end > size:
        missing = 8 + n + end - size
        raise truncated(path, size, f"{missing:,} bytes shorter than its header says, {8 + n + end:,}")
    return header, metadata


_ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
               "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _check_entry(path, key, entry) -> None:
    """One tensor's header entry: a dtype, a shape of whole numbers, offsets that fit that shape."""
    damaged = f"{_name(path)} has a damaged header entry for {key!r}"
    if not isinstance(entry, dict):
        raise ModelFileError(f"{damaged} (not a table): re-download it")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelFileError(f"{damaged} (shape {shape!r}): re-download it")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise ModelFileError(f"{damaged} (data_offsets {offsets!r}): re-download it")
    if not isinstance(dtype, str):
        raise ModelFileError(f"{damaged} (dtype {dtype!r}): re-download it")
    item = _ITEM_BYTES.get(dtype)
    if item is not None:
        count = 1
        for d in shape:
            count *= d
        if offsets[1] - offsets[0] != count * item:
            raise ModelFileError(f"{damaged}: {offsets[1] - offsets[0]} bytes for a {dtype} tensor of shape "
                                 f"{tuple(shape)}: re-download it")


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
