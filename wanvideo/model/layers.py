"""Basic layers with the reference's numerics.

`Linear` computes in its input's dtype whatever its stored weight dtype is, so the
same module serves bf16/fp16/fp32 weights, fp8 weights kept in memory (with an
optional per-tensor `weight_scale`, dequantised on the fly), block-quantised GGUF
weights kept packed (`weight_format`, see quantized.py), and float32 steps of the
reference (time embedding, head) can run on bf16 weights. With `fp8_matmul` on (see
WanInfiniteTalkModel.set_fp8_matmul) an fp8 weight is multiplied in fp8 by torch._scaled_mm instead
of being dequantised first.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quant.fp8 import can_scaled_mm, scaled_fp8_linear
from .quant.quantized import unpacked_weight


class Linear(nn.Linear):
    """nn.Linear that casts (and, for scaled fp8, rescales) its weight to the input dtype."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        # Per-tensor (or per-output-row) scale of a scaled-fp8 weight; not part of the native state dict.
        self.register_buffer("weight_scale", None, persistent=False)
        # A quantized.PackedFormat when `weight` holds packed GGUF blocks (uint8), dequantised per call.
        self.weight_format = None
        self.fp8_matmul = False  # multiply an fp8 weight in fp8 (torch._scaled_mm) instead of dequantising it

    def dequantized_weight(self, dtype: torch.dtype) -> torch.Tensor:
        if self.weight_format is not None:
            return unpacked_weight(self, dtype)
        w = self.weight
        if w.dtype != dtype:
            w = w.to(dtype)
        if self.weight_scale is not None:
            scale = self.weight_scale.to(device=w.device, dtype=dtype)
            w = w * (scale.reshape(()) if scale.numel() == 1 else scale.reshape(-1, 1))  # per tensor / per row
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fp8_matmul and can_scaled_mm(self.weight, self.weight_scale, x):
            return scaled_fp8_linear(x, self.weight, self.weight_scale, self.bias)
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight(x.dtype), bias)


class Conv3d(nn.Conv3d):
    """nn.Conv3d computing in its input's dtype (the patch embedding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.weight.dtype == x.dtype else self.weight.to(x.dtype)
        b = self.bias if self.bias is None or self.bias.dtype == x.dtype else self.bias.to(x.dtype)
        return self._conv_forward(x, w, b)


class RMSNorm(nn.Module):
    """RMS norm over the last dim, statistics in float32 (reference WanRMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight.to(x.dtype)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32, returned in the input dtype (reference WanLayerNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = False, device=None, dtype=None):
        super().__init__(dim, eps=eps, elementwise_affine=elementwise_affine, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class LayerNormInputDtype(nn.LayerNorm):
    """Plain LayerNorm (eps 1e-5 by default) in the input dtype, as torch.nn.LayerNorm in the reference's img_emb."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)
