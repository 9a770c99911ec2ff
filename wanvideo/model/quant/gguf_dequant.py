"""GGML block quantisations (as stored in GGUF files) dequantised in torch, on whatever device the bytes are.

Each type stores a row of weights as blocks of `block_size` values in `type_size` bytes (fp16
scales + packed small integers). The kernels below unpack whole tensors at once with plain
tensor ops, so the same code runs on the GPU just before a layer needs its weight (and on the
CPU in tests). They compute in float32 in the same order as the `gguf` package's numpy
reference (`gguf.quants.dequantize`), so their float32 results are identical to it; the caller
then rounds once to the compute dtype.

Block layouts follow ggml's `block_q*` structs (ggml-common.h); the bit positions are the ones
the reference's `dequantize_blocks` reads.
"""
from __future__ import annotations

import torch

QK_K = 256  # values per K-quant super-block

# type name -> (values per block, bytes per block)
BLOCK_SIZES = {
    "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q5_1": (32, 24), "Q8_0": (32, 34),
    "Q2_K": (QK_K, 84), "Q3_K": (QK_K, 110), "Q4_K": (QK_K, 144), "Q5_K": (QK_K, 176), "Q6_K": (QK_K, 210),
}
# Byte offsets of each type's fp16 block scales (d, and the min/dmin where there is one). Every other field
# holds small integers, so a block's values are finite exactly when these are.
SCALE_OFFSETS = {"Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
                 "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


def block_scales(packed: torch.Tensor, qtype: str) -> torch.Tensor:
    """[blocks, scales per block] float16: the block scales of `qtype` bytes (for finiteness checks)."""
    nbytes = BLOCK_SIZES[qtype][1]
    blocks = packed.reshape(-1, nbytes)
    return torch.cat([blocks[:, o:o + 2] for o in SCALE_OFFSETS[qtype]], dim=1).contiguous().view(torch.float16)


def _f16(b: torch.Tensor) -> torch.Tensor:
    """[n, 2] little-endian fp16 bytes -> [n, 1] float32."""
    return b.contiguous().view(torch.float16).float()


def _shifts(values, device, dtype=torch.uint8) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def _nibbles(qs: torch.Tensor, groups: int) -> torch.Tensor:
    """Bytes [n, groups*32] -> [n, groups, 2, 32]: per group of 32 bytes, the low nibbles then the high ones."""
    n = qs.shape[0]
    return (qs.reshape(n, groups, 1, 32) >> _shifts([0, 4], qs.device).reshape(1, 1, 2, 1)) & 0x0F


def _q4_0(b):
    n = b.shape[0]
    d = _f16(b[:, :2])
    q = ((b[:, 2:].reshape(n, 1, 16) >> _shifts([0, 4], b.device).reshape(1, 2, 1)) & 0x0F).reshape(n, 32)
    return d * (q.to(torch.int8) - 8).float()


def _q4_1(b):
    n = b.shape[0]
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    q = ((b[:, 4:].reshape(n, 1, 16) >> _shifts([0, 4], b.device).reshape(1, 2, 1)) & 0x0F).reshape(n, 32)
    return d * q.float() + m


def _five_bit(qh: torch.Tensor, qs: torch.Tensor) -> torch.Tensor:
    """Q5_0/Q5_1 quants 0..31: low nibbles from qs (16 bytes), bit 4 of value i is bit i of qh (4 bytes)."""
    n = qs.shape[0]
    high = ((qh.reshape(n, 4, 1) >> _shifts(range(8), qs.device).reshape(1, 1, 8)) & 1).reshape(n, 32)
    low = ((qs.reshape(n, 1, 16) >> _shifts([0, 4], qs.device).reshape(1, 2, 1)) & 0x0F).reshape(n, 32)
    return low | (high << 4)


def _q5_0(b):
    d = _f16(b[:, :2])
    return d * (_five_bit(b[:, 2:6], b[:, 6:]).to(torch.int8) - 16).float()


def _q5_1(b):
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    return d * _five_bit(b[:, 4:8], b[:, 8:]).float() + m


def _q8_0(b):
    return b[:, 2:].contiguous().view(torch.int8).float() * _f16(b[:, :2])


def _q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, :16], b[:, 16:80]
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    dl = (d * (scales & 0x0F).float()).reshape(n, 16, 1)
    ml = (dmin * (scales >> 4).float()).reshape(n, 16, 1)
    q = (qs.reshape(n, 2, 1, 32) >> _shifts([0, 2, 4, 6], b.device).reshape(1, 1, 4, 1)) & 3
    return (dl * q.reshape(n, 16, 16).float() - ml).reshape(n, QK_K)


def _q3_k(b):
    n = b.shape[0]
    hmask, qs, scales, d = b[:, :32], b[:, 32:96], b[:, 96:108], _f16(b[:, 108:110])
    # 16 six-bit scales: low 4 bits from bytes 0..7 (low nibbles, then high), high 2 bits from bytes 8..11
    low = ((scales[:, :8].reshape(n, 1, 8) >> _shifts([0, 4], b.device).reshape(1, 2, 1)) & 0x0F).reshape(n, 16)
    high = ((scales[:, 8:].reshape(n, 1, 4) >> _shifts([0, 2, 4, 6], b.device).reshape(1, 4, 1)) & 3).reshape(n, 16)
    sc = ((low | (high << 4)).to(torch.int8) - 32).float()
    dl = (d * sc).reshape(n, 16, 1)
    ql = ((qs.reshape(n, 2, 1, 32) >> _shifts([0, 2, 4, 6], b.device).reshape(1, 1, 4, 1)) & 3).reshape(n, 16, 16)
    qh = ((hmask.reshape(n, 1, 1, 32) >> _shifts(range(8), b.device).reshape(1, 1, 8, 1)) & 1).reshape(n, 16, 16)
    q = ql.to(torch.int8) - ((qh ^ 1) << 2).to(torch.int8)  # a clear mask bit subtracts 4
    return (dl * q.float()).reshape(n, QK_K)


def _scale_min_k4(scales: torch.Tensor):
    """The eight 6-bit scales and mins packed into 12 bytes (Q4_K, Q5_K)."""
    n = scales.shape[0]
    s = scales.reshape(n, 3, 4)
    d, m, md = s[:, 0], s[:, 1], s[:, 2]
    sc = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=1)
    mn = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=1)
    return sc.float(), mn.float()


def _q4_k(b):
    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    dl, ml = (d * sc).reshape(n, 8, 1), (dmin * mn).reshape(n, 8, 1)
    q = _nibbles(b[:, 16:], 4).reshape(n, 8, 32).float()
    return (dl * q - ml).reshape(n, QK_K)


def _q5_k(b):
    n = b.shape[0]
    d, dmin = _f16(b[:, :2]), _f16(b[:, 2:4])
    sc, mn = _scale_min_k4(b[:, 4:16])
    dl, ml = (d * sc).reshape(n, 8, 1), (dmin * mn).reshape(n, 8, 1)
    low = _nibbles(b[:, 48:], 4).reshape(n, 8, 32)
    high = ((b[:, 16:48].reshape(n, 1, 1, 32) >> _shifts(range(8), b.device).reshape(1, 1, 8, 1)) & 1).reshape(n, 8, 32)
    return (dl * (low | (high << 4)).float() - ml).reshape(n, QK_K)


def _q6_k(b):
    n = b.shape[0]
    ql, qh, scales, d = b[:, :128], b[:, 128:192], b[:, 192:208], _f16(b[:, 208:210])
    dl = (d * scales.contiguous().view(torch.int8).float()).reshape(n, 16, 1)
    low = ((ql.reshape(n, 2, 1, 64) >> _shifts([0, 4], b.device).reshape(1, 1, 2, 1)) & 0x0F).reshape(n, 8, 32)
    high = ((qh.reshape(n, 2, 1, 32) >> _shifts([0, 2, 4, 6], b.device).reshape(1, 1, 4, 1)) & 3).reshape(n, 8, 32)
    q = ((low | (high << 4)).to(torch.int8) - 32).reshape(n, 16, 16).float()
    return (dl * q).reshape(n, QK_K)


_KERNELS = {"Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
            "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k}
BLOCK_TYPES = tuple(_KERNELS)


def packed_shape(shape, qtype: str) -> tuple:
    """Byte shape of a tensor of logical `shape` in `qtype`: rows (the last dim) become their blocks' bytes."""
    block, nbytes = BLOCK_SIZES[qtype]
    if not shape or shape[-1] % block:
        raise ValueError(f"{qtype} needs rows that are a multiple of {block} values, got shape {tuple(shape)}")
    return (*shape[:-1], shape[-1] // block * nbytes)


def dequantize(packed: torch.Tensor, qtype: str, shape, dtype=torch.float32) -> torch.Tensor:
    """The `qtype` blocks in the uint8 tensor `packed` as a `dtype` tensor of logical `shape` (on packed's device)."""
    kernel = _KERNELS[qtype]
    block, nbytes = BLOCK_SIZES[qtype]
    if packed.dtype != torch.uint8 or packed.numel() % nbytes:
        raise ValueError(f"{qtype} data must be uint8 bytes, a multiple of {nbytes}; got {packed.dtype} x {packed.numel()}")
    values = kernel(packed.reshape(-1, nbytes))
    return values.reshape(shape).to(dtype)
