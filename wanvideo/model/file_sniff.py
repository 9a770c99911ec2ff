"""What a weights file really is, from its first bytes: the same words from every model loader (video model,
wav2vec2, umt5, CLIP vision, LoRA, GGUF, VAE) for the downloads that go wrong the same way everywhere.

    a Git LFS pointer     (a clone without `git lfs pull`)
    an HTML page          (a login or error page saved under the model's name)
    an empty or cut file  (a download that stopped)
    another model         (`wrong_model`: the file is fine, but not the model this loader takes)
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelFileError

_LFS = b"version https://git-lfs"
_PAGE = (b"<!doct", b"<html", b"<?xml", b"<head", b"<body")


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
        from .weight_files import read_safetensors_header

        read_safetensors_header(path)
    elif suffix in (".bin", ".pt", ".pth", ".ckpt") and start.startswith(b"PK"):
        import zipfile

        if not zipfile.is_zipfile(path):  # torch.save's zip lost its end (the table of contents)
            raise truncated(path, size, "its zip archive has no end")
    elif suffix == ".gguf" and not start.startswith(b"GGUF"):
        raise ModelFileError(f"{_name(path)} has a .gguf name but is not a GGUF file (no GGUF signature): "
                             "download the file again")
