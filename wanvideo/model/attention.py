"""Attention backends: PyTorch SDPA (default), SageAttention, FlashAttention.

All take q, k, v as [batch, tokens, heads, head_dim] (the reference's layout) and
return [batch, q_tokens, heads, head_dim] in q's dtype. Every call is exact
softmax(q k^T / sqrt(d)) v without masks: the model never pads tokens.
"""
from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F

from ..errors import InputError

BACKENDS = ("sdpa", "sage", "flash")

_HALF = (torch.float16, torch.bfloat16)


def _sdpa(q, k, v):
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def _half(t, dtype):
    return t if t.dtype in _HALF else t.to(dtype)


def _sage(q, k, v):
    from sageattention import sageattn

    dtype = q.dtype
    half = q.dtype if q.dtype in _HALF else torch.bfloat16
    out = sageattn(_half(q, half), _half(k, half), _half(v, half), tensor_layout="NHD")
    return out.to(dtype)


def _flash_fn():
    try:  # FlashAttention 3 (Hopper)
        from flash_attn_interface import flash_attn_func

        return flash_attn_func
    except ImportError:
        from flash_attn import flash_attn_func

        return flash_attn_func


def _flash(q, k, v):
    dtype = q.dtype
    half = q.dtype if q.dtype in _HALF else torch.bfloat16
    out = _flash_fn()(_half(q, half), _half(k, half), _half(v, half))
    if isinstance(out, tuple):  # FA3 returns (out, softmax_lse)
        out = out[0]
    return out.to(dtype)


_IMPLS = {"sdpa": _sdpa, "sage": _sage, "flash": _flash}


def backend_available(name: str) -> bool:
    if name == "sdpa":
        return True
    if name == "sage":
        return importlib.util.find_spec("sageattention") is not None
    if name == "flash":
        return any(importlib.util.find_spec(m) is not None for m in ("flash_attn_interface", "flash_attn"))
    return False


def check_backend(name: str, device=None) -> str:
    """Validate a backend name for a device; raise an InputError that says how to fix it."""
    if name not in BACKENDS:
        raise InputError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "sdpa":
        return name
    package = {"sage": "sageattention", "flash": "flash-attn"}[name]
    if not backend_available(name):
        raise InputError(
            f"attention backend {name!r} was chosen but the {package} package is not installed in ComfyUI's "
            f"Python: install it (pip install {package}, needs a matching CUDA build) or pick 'sdpa'"
        )
    if device is not None and torch.device(device).type != "cuda":
        raise InputError(f"attention backend {name!r} needs a CUDA GPU; on {device} pick 'sdpa'")
    return name


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "sdpa") -> torch.Tensor:
    """softmax(q k^T / sqrt(head_dim)) v for [B, L, H, D] tensors."""
    return _IMPLS[backend](q, k, v)
