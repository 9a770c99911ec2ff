"""What a weights file really is, from its first bytes: the same words from every model loader (video model,
wav2vec2, umt5, CLIP vision, LoRA, GGUF, VAE) for the downloads that go wrong the same way everywhere.

    a Git LFS pointer     (a clone without `git lfs pull`)
    an HTML page          (a login or error page saved under the model's name)
    an empty or cut file  (a download that stopped)
    another model         (`wrong_model`: the file is fine, but not the model this loader takes)

and a .safetensors header read and checked against the file's size (`read_safetensors_header`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ModelFileError

_LFS = b"version https://git-lfs"
_PAGE = (b"<!doct", b"<html", b"<?xml", b"<head", b"<body")
_MAX_HEADER = 100 * 1024 * 1024


def _name(path) -> str:
    return os.path.basename(str(path))


def lfs_pointer(path) -> ModelFileError:
    return ModelFileError(f"{_name(path)} is a Git LFS pointer, not the weights: download the real file "
                          "(git lfs pull, or the download button on the model page)")


def web_page(path) -> ModelFileError:
    return ModelFileError(f"{_name(path)} is a web page, not weights: the download failed; download the file again")


def truncated(path, size: int, detail: str = "") -> ModelFileError:
    more = f", {detail}" if detail else ""
    return ModelFileError(f"{_name(path)} is truncated: the download stopped early ({size:,} bytes{more}): "
                          "re-download it")


WAN_I2V = "Wan2.1 I2V 14B"


def wrong_model(where, expected: str, detail: str) -> ModelFileError:
    """The file is readable but holds another model than the one this loader takes: '<file> is another model, not
    <expected>: <what it is and where it belongs>'. `where`: a path, or the names of several files."""
    return ModelFileError(f"{where} is another model, not {expected}: {detail}")


def check_start(path, start: bytes, size: int) -> None:
    """Refuse an LFS pointer, an HTML page or an empty file from its first bytes."""
    if size == 0:
        raise truncated(path, 0, "empty")
    if start.startswith(_LFS):
        raise lfs_pointer(path)
    if start.lstrip().lower().startswith(_PAGE):
        raise web_page(path)


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


def check_weights_file(path) -> None:
    """The first-bytes checks, then the format's own header (safetensors: every tensor within the file; GGUF: its
    signature). Folders are left to their loaders (each of their files is checked when opened)."""
    path = Path(path)
    if path.is_dir():
        return
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            start = handle.read(64)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    check_start(path, start, size)
    suffix = path.suffix.lower()
    if suffix in (".safetensors", ".sft"):
        read_safetensors_header(path)
    elif suffix in (".bin", ".pt", ".pth", ".ckpt") and start.startswith(b"PK"):
        import zipfile

        if not zipfile.is_zipfile(path):  # torch.save's zip lost its end (the table of contents)
            raise truncated(path, size, "its zip archive has no end")
    elif suffix == ".gguf" and not start.startswith(b"GGUF"):
        raise ModelFileError(f"{_name(path)} has a .gguf name but is not a GGUF file (no GGUF signature): "
                             "download the file again")
