"""fp8 weights: quantise (per-tensor scale), dequantise, and check ComfyUI quantisation markers.

"Scaled" fp8 files store w_fp8 = w / scale with a float32 scale per tensor (ComfyUI's
`<layer>.scale_weight`, newer `<layer>.weight_scale`); plain fp8 files have no scale
(scale 1). Weights are computed in bf16/fp16/fp32: a `Linear` holding an fp8 weight
dequantises it on the fly (see layers.Linear).
"""
from __future__ import annotations

import json

import torch

from ..errors import ModelFileError

FP8_DTYPES = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


def is_fp8(dtype) -> bool:
    return dtype in (torch.float8_e4m3fn, torch.float8_e5m2)


def fp8_dtype(name: str):
    try:
        return FP8_DTYPES[name]
    except KeyError:
        raise ModelFileError(f"unknown fp8 format {name!r}; choose one of {sorted(FP8_DTYPES)}") from None


def quantize_fp8(weight: torch.Tensor, dtype=torch.float8_e4m3fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 weight, float32 scalar scale) with weight ~= fp8.float() * scale, the tensor's max mapped to fp8's max."""
    w = weight.float()
    amax = w.abs().max()
    fmax = torch.finfo(dtype).max
    scale = torch.where(amax > 0, amax / fmax, torch.ones_like(amax)).to(torch.float32)
    return (w / scale).clamp(-fmax, fmax).to(dtype), scale


def dequantize(weight: torch.Tensor, scale: torch.Tensor | None, dtype) -> torch.Tensor:
    """weight (any dtype) * scale (scalar or per output row) in float32, returned in `dtype`."""
    w = weight.float()
    if scale is not None:
        s = scale.to(device=w.device, dtype=torch.float32)
        w = w * (s if s.dim() < 2 and s.numel() == 1 else s.reshape(-1, *([1] * (w.dim() - 1))))
    return w.to(dtype)


def check_quant_marker(value: torch.Tensor, key: str, path: str) -> None:
    """A ComfyUI `<layer>.comfy_quant` marker (JSON bytes): only float8 formats are loadable here."""
    try:
        conf = json.loads(bytes(value.to(torch.uint8).tolist()).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return
    fmt = str(conf.get("format", "")) if isinstance(conf, dict) else str(conf)
    if fmt and not fmt.startswith("float8"):
        raise ModelFileError(
            f"{path}: layer {key[: -len('.comfy_quant')]} is quantised as {fmt!r}, which this pack cannot load: "
            "use a bf16, fp16 or fp8 (e4m3fn/e5m2, plain or scaled) file"
        )


def check_quant_metadata(metadata: dict, path: str) -> None:
    """The `_quantization_metadata` header entry of newer ComfyUI repacks: float8 formats only."""
    raw = metadata.get("_quantization_metadata")
    if not raw:
        return
    try:
        layers = json.loads(raw).get("layers", {})
    except (ValueError, AttributeError):
        return
    for layer, conf in layers.items():
        fmt = conf.get("format", "") if isinstance(conf, dict) else str(conf)
        if fmt and not str(fmt).startswith("float8"):
            raise ModelFileError(
                f"{path}: layer {layer} is quantised as {fmt!r}, which this pack cannot load: "
                "use a bf16, fp16 or fp8 (e4m3fn/e5m2, plain or scaled) file"
            )
