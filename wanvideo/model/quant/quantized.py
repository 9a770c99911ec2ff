"""Weights kept packed (block-quantised, e.g. from a GGUF file) in memory and dequantised just before use.

A packed `Linear` holds its file bytes as a uint8 `weight` parameter (so VRAM ~ file size, and
block swap / `.to()` move it like any other tensor) and a `PackedFormat` in `weight_format` that
knows the quantisation and the logical shape. `Linear.dequantized_weight` asks this module for
the real weight in the compute dtype on the weight's own device, one layer at a time; the
full-precision copy lives only while that layer runs.

Code elsewhere treats a packed weight as opaque: `is_packed(module)`, `weight_shape(module)` and
`Linear.dequantized_weight(dtype)` are all it needs (fp8 matmuls, host model patchers, memory
estimates: the uint8 parameter's bytes are the real bytes held).

LoRAs on packed weights are not merged into the bytes (re-quantising K-quants would add a second
rounding, and the `gguf` package cannot quantise them): their factors are kept beside the weight
(`weight_lora_up` [out, rank], `weight_lora_down` [rank, in], several LoRAs concatenated along the
rank) and added to the dequantised weight in float32 before the one rounding to the compute dtype.
That is the merged weight a bf16 file would get, for out*in*rank extra multiply-adds per layer and
call: far fewer than a separate low-rank pass over the activations once a call has more tokens than
out*in/(out+in) (2,560 for Wan's 5120x5120 layers; a 480p window has ~32,000).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .gguf_dequant import dequantize


@dataclass(frozen=True)
class PackedFormat:
    """How a uint8 tensor of blocks decodes: GGML quantisation type and the weight's logical (torch) shape."""

    qtype: str
    shape: tuple

    def dequantize(self, packed: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        return dequantize(packed, self.qtype, self.shape, dtype)

    def __str__(self) -> str:
        return f"gguf {self.qtype}"


def is_packed(module: nn.Module) -> bool:
    return getattr(module, "weight_format", None) is not None


def weight_shape(module: nn.Module) -> tuple:
    """The logical shape of `module.weight`, packed or not."""
    fmt = getattr(module, "weight_format", None)
    return tuple(fmt.shape) if fmt is not None else tuple(module.weight.shape)


def pack(module: nn.Module, packed: torch.Tensor, fmt: PackedFormat) -> None:
    """Make `packed` (uint8 blocks) the module's weight, dequantised on use."""
    module._parameters["weight"] = nn.Parameter(packed, requires_grad=False)
    module.weight_format = fmt


def unpacked_weight(module: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    """The packed weight (+ its LoRAs) as a `dtype` tensor on the weight's device."""
    w = module.weight_format.dequantize(module.weight, torch.float32)
    up = getattr(module, "weight_lora_up", None)
    if up is not None:  # (.to: a no-op unless a LoRA was added after block swap had placed the weight)
        up, down = up.to(w.device, torch.float32), module.weight_lora_down.to(w.device, torch.float32)
        w = w.reshape(up.shape[0], -1).addmm_(up, down).reshape(w.shape)
    delta = getattr(module, "weight_delta", None)
    if delta is not None:
        w += delta.to(w.device, torch.float32)
    return w.to(dtype)


def add_lora(module: nn.Module, up: torch.Tensor, down: torch.Tensor, scale: float, dtype=torch.bfloat16) -> None:
    """Keep `scale * up @ down` beside a packed weight (concatenated with LoRAs added before)."""
    device = module.weight.device
    up = (up.float().reshape(up.shape[0], -1) * scale).to(device, dtype)
    down = down.float().reshape(down.shape[0], -1).to(device, dtype)
    old_up, old_down = getattr(module, "weight_lora_up", None), getattr(module, "weight_lora_down", None)
    if old_up is not None:
        up, down = torch.cat([old_up, up.to(old_up.dtype)], dim=1), torch.cat([old_down, down.to(old_down.dtype)], dim=0)
    # Buffers (not persistent): block swap moves them with the weight, state_dict() keeps the file's names.
    module.register_buffer("weight_lora_up", up, persistent=False)
    module.register_buffer("weight_lora_down", down, persistent=False)


def add_delta(module: nn.Module, delta: torch.Tensor, dtype=torch.bfloat16) -> None:
    """Keep a full weight difference (a `diff` LoRA) beside a packed weight."""
    old = getattr(module, "weight_delta", None)
    delta = delta.float().reshape(weight_shape(module)).to(module.weight.device)
    if old is not None:
        delta = delta + old.float()
    module.register_buffer("weight_delta", delta.to(dtype), persistent=False)


def storage_label(module: nn.Module) -> str:
    """'gguf Q4_K' for a packed weight, else the weight's dtype name."""
    fmt = getattr(module, "weight_format", None)
    return str(fmt) if fmt is not None else str(module.weight.dtype).replace("torch.", "")
