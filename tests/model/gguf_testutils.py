"""GGUF test data: valid random K-quant blocks, a Q6_K quantiser for real weights, tiny DiTs written as GGUF."""
from __future__ import annotations

import numpy as np
import torch

from wanvideo.model.quant.gguf_dequant import BLOCK_SIZES

# Byte offsets of each K-quant's fp16 super-block scales (d, and dmin where there is one) in its block.
K_SCALE_OFFSETS = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}


def random_k_blocks(qtype: str, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """[rows, bytes per row] of valid `qtype` blocks: random quants and sub-scales, finite fp16 super-scales."""
    block, nbytes = BLOCK_SIZES[qtype]
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(rows * cols // block, nbytes), dtype=np.uint8)
    for offset in K_SCALE_OFFSETS[qtype]:
        scale = (rng.uniform(2e-4, 2e-3, size=blocks.shape[0]) * rng.choice([-1, 1], size=blocks.shape[0]))
        blocks[:, offset:offset + 2] = scale.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1)


def quantize_q6_k(weight: np.ndarray) -> np.ndarray:
    """A plain Q6_K quantiser (the gguf package has none): per 16 values an int8 scale, per 256 an fp16 one.

    The packing is the inverse of the bit positions gguf.quants.Q6_K reads; tests check it through that dequantiser.
    """
    rows = weight.reshape(-1, 256).astype(np.float32)
    n = rows.shape[0]
    sub = rows.reshape(n, 16, 16)
    amax_idx = np.abs(sub).argmax(axis=-1)
    sub_max = np.take_along_axis(sub, amax_idx[..., None], axis=-1)[..., 0]  # signed extreme per 16 values
    sub_scale = sub_max / -32.0
    d = np.abs(sub_scale).max(axis=1, keepdims=True) / 127.0
    d16 = d.astype(np.float16)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d16 > 0, np.round(sub_scale / d16.astype(np.float32)), 0).clip(-128, 127).astype(np.int8)
        step = (d16.astype(np.float32) * sc.astype(np.float32))[..., None]
        q = np.where(step != 0, np.round(sub / step), 0)
    q = (q.clip(-32, 31) + 32).astype(np.uint8).reshape(n, 256)
    ql = np.zeros((n, 128), np.uint8)
    qh = np.zeros((n, 64), np.uint8)
    for h in range(2):
        part = q[:, h * 128:(h + 1) * 128]
        ql[:, h * 64:(h + 1) * 64] = (part[:, :64] & 0x0F) | ((part[:, 64:] & 0x0F) << 4)
        for s in range(4):
            qh[:, h * 32:(h + 1) * 32] |= ((part[:, s * 32:(s + 1) * 32] >> 4) & 3) << (2 * s)
    blocks = np.concatenate([ql, qh, sc.view(np.uint8), d16.view(np.uint8).reshape(n, 2)], axis=1)
    return blocks.reshape(*weight.shape[:-1], -1)


def gguf_state_dict(weights: dict, qtype: str) -> dict:
    """`weights` as write_gguf takes them, Q6_K made by quantize_q6_k where rows split into 256-value blocks."""
    if qtype != "Q6_K":
        return dict(weights)
    out = {}
    for name, w in weights.items():
        eligible = w.dim() >= 2 and w.shape[-1] % 256 == 0 and w.numel() > 1024 and not name.endswith("modulation")
        out[name] = (quantize_q6_k(w.float().numpy()), "Q6_K") if eligible and w.dim() <= 4 else w
    return out


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())
