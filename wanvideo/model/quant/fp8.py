"""fp8 weights: quantise (per-tensor scale), dequantise, and check ComfyUI quantisation markers.

"Scaled" fp8 files store w_fp8 = w / scale with a float32 scale per tensor (ComfyUI's
`<layer>.scale_weight`, newer `<layer>.weight_scale`); plain fp8 files have no scale
(scale 1). Weights are computed in bf16/fp16/fp32: a `Linear` holding an fp8 weight
dequantises it on the fly (see layers.Linear).
"""
from __future__ import annotations

import json

import torch

from ...errors import ModelFileError

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


# ----- fp8 matmul (torch._scaled_mm) -------------------------------------------------------------------------
FP8_MATMUL_MODES = ("off", "auto", "on")
_E4M3_MAX = 448.0


def fp8_matmul_unavailable_reason(device) -> str | None:
    """Why fp8 matmuls cannot run on `device`, or None when they can (CUDA compute capability >= 8.9, or a CPU
    torch with a working _scaled_mm)."""
    device = torch.device(device)
    if not hasattr(torch, "_scaled_mm"):
        return f"this torch ({torch.__version__}) has no torch._scaled_mm: update torch to 2.4 or newer"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available"
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) < (8, 9):
            return (f"fp8 matmuls need an NVIDIA GPU of compute capability 8.9 or newer (RTX 40xx, L4/L40, H100, "
                    f"RTX 50xx); {torch.cuda.get_device_name(device)} is {major}.{minor}")
        return None
    if device.type == "cpu":
        try:
            one = torch.ones(16, 16).to(torch.float8_e4m3fn)
            torch._scaled_mm(one, one.t(), scale_a=torch.tensor(1.0), scale_b=torch.tensor(1.0), out_dtype=torch.float32)
        except (RuntimeError, NotImplementedError) as exc:
            return f"this torch cannot run fp8 matmuls on the CPU ({str(exc).splitlines()[0][:120]})"
        return None
    return f"fp8 matmuls are not supported on {device.type}"


def can_scaled_mm(weight: torch.Tensor, scale: torch.Tensor | None, x: torch.Tensor) -> bool:
    """Whether this layer's matmul can go through _scaled_mm (per-tensor scale, sizes the kernels take)."""
    if not is_fp8(weight.dtype) or (scale is not None and scale.numel() != 1):
        return False
    if x.device.type == "cuda":  # cuBLASLt wants both matrix dims multiples of 16
        return weight.shape[0] % 16 == 0 and weight.shape[1] % 16 == 0
    return True


def scaled_fp8_linear(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor | None,
                      bias: torch.Tensor | None) -> torch.Tensor:
    """x @ (weight * scale)^T + bias with the input quantised to e4m3 (one scale per call) and the product in fp8."""
    out_dtype = x.dtype
    rows = x.reshape(-1, x.shape[-1])
    x_scale = (rows.abs().amax().float() / _E4M3_MAX).clamp_min(1e-12)
    xq = (rows.float() / x_scale).clamp_(-_E4M3_MAX, _E4M3_MAX).to(torch.float8_e4m3fn)
    w_scale = (scale.reshape(()) if scale is not None else torch.ones((), device=x.device)).to(x.device, torch.float32)
    fused_bias = bias is not None and out_dtype in (torch.bfloat16, torch.float16)
    out = torch._scaled_mm(xq, weight.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=out_dtype,
                           bias=bias.to(out_dtype) if fused_bias else None)
    if isinstance(out, tuple):  # torch < 2.5 returns (out, amax)
        out = out[0]
    if bias is not None and not fused_bias:
        out = out + bias.to(out_dtype)
    return out.reshape(*x.shape[:-1], weight.shape[0])
