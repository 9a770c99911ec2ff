"""User-given names and files turned into torch objects, with errors that say what to give instead.

One helper each, used by every loader: a precision name -> dtype, a device name -> device, and a
PyTorch checkpoint file -> its plain state dict.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import InputError, ModelFileError

# Names people use for the three compute precisions (ComfyUI's widgets, torch's own, the reference's).
DTYPE_NAMES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}
COMPUTE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def parse_dtype(value, what: str = "precision", hint: str = "") -> torch.dtype:
    """torch dtype from a torch dtype or a name ('bf16', 'fp16', 'fp32', 'float32', ...); fp8 is refused."""
    if isinstance(value, torch.dtype):
        if value in COMPUTE_DTYPES:
            return value
    elif isinstance(value, str) and value.lower() in DTYPE_NAMES:
        return DTYPE_NAMES[value.lower()]
    raise InputError(f"{what} must be fp32, bf16 or fp16, got {value!r}{hint}")


def parse_device(value, option: str = "device") -> torch.device:
    """torch device from a name; None or 'auto' = CUDA when this torch sees one, else the CPU."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise InputError(f"{option} {value!r}: not a torch device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{option} {value!r}: this PyTorch sees no CUDA GPU; use cpu")
    return device


def load_torch_state_dict(path, what: str = "a model checkpoint") -> dict:
    """{name: tensor} of a .pt/.pth/.bin/.ckpt file, read with weights_only (never pickled code).

    Memory-mapped when the file allows it; a {'state_dict': {...}} wrapper (training checkpoints) is removed.
    """
    from .model.file_sniff import check_weights_file  # lazily: the model package imports this module

    path = Path(path)
    check_weights_file(path)  # an LFS pointer, a web page, an empty file: said the same way by every loader
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old (non-zip) files cannot be memory-mapped: read whole, which reports
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch.load raises many types for damaged or pickled files
            raise ModelFileError(f"{path.name} cannot be read as plain tensors ({exc}); only weights are loaded, "
                                 "never pickled code: re-download it or use its .safetensors version") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(f"{path.name} does not hold a plain dictionary of tensors, so it is not {what}")
    return obj


def check_finite(tensor: torch.Tensor, key: str, path) -> torch.Tensor:
    """`tensor` if every value is a real number; else a ModelFileError naming the file and the tensor.

    NaN/Inf in a weight turns the whole video black (or the speech into silence) with no other sign.
    """
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return tensor
    if tensor.dtype == torch.float8_e4m3fn:
        bad = (tensor.view(torch.uint8) & 0x7F) == 0x7F  # e4m3fn has NaN and no infinity
    elif tensor.dtype == torch.float8_e5m2:
        bad = (tensor.view(torch.uint8) & 0x7C) == 0x7C  # exponent all ones: inf or NaN
    else:
        bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        count = int(bad.sum())
        raise ModelFileError(
            f"{os.path.basename(str(path))} is damaged: tensor {key} holds {count:,} NaN/infinite value(s) of {tensor.numel():,}. "
            "The file is damaged or was converted/quantised wrongly: download it again (or another precision "
            "of the same model)"
        )
    return tensor
