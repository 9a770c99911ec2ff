"""Rotary position embeddings: Wan's 3-D RoPE (frame, height, width) and InfiniteTalk's 1-D RoPE.

Both rotate adjacent channel pairs (2j, 2j+1) of each head. The 3-D angles are
computed in float64 as the reference does (its table is float64/complex128),
then the rotation itself runs in float32: the reference rotates in float64 and
casts the result to float32, which differs from this by about one float32 ulp,
while a float64 copy of q and k would cost several GB at 14B/480p sizes.
"""
from __future__ import annotations

import functools

import torch

from .config import ROPE_MAX_POSITIONS


def axis_pairs(head_dim: int) -> tuple[int, int, int]:
    """Channel pairs given to (frame, height, width): (c - 2*(c//3), c//3, c//3) with c = head_dim/2."""
    c = head_dim // 2
    return c - 2 * (c // 3), c // 3, c // 3


def _axis_angles(length: int, pairs: int, theta: float = 10000.0) -> torch.Tensor:
    """[length, pairs] float64 angles pos * theta^(-2j/n), n = 2*pairs (the reference's rope_params)."""
    n = 2 * pairs
    inv = 1.0 / torch.pow(theta, torch.arange(0, n, 2, dtype=torch.float64).div(n))
    return torch.outer(torch.arange(length, dtype=torch.float64), inv)


@functools.lru_cache(maxsize=16)
def _grid_cos_sin_cpu(f: int, h: int, w: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    pf, ph, pw = axis_pairs(head_dim)
    af = _axis_angles(f, pf)[:, None, None, :].expand(f, h, w, pf)
    ah = _axis_angles(h, ph)[None, :, None, :].expand(f, h, w, ph)
    aw = _axis_angles(w, pw)[None, None, :, :].expand(f, h, w, pw)
    angles = torch.cat([af, ah, aw], dim=-1).reshape(f * h * w, head_dim // 2)
    return torch.cos(angles).float(), torch.sin(angles).float()


def grid_cos_sin(grid: tuple[int, int, int], head_dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [f*h*w, head_dim/2] float32 for a latent token grid, tokens in (f, h, w) order."""
    f, h, w = (int(v) for v in grid)
    if max(f, h, w) > ROPE_MAX_POSITIONS:
        from ..errors import InputError

        raise InputError(
            f"latent grid {f}x{h}x{w} exceeds the model's {ROPE_MAX_POSITIONS} RoPE positions per axis: "
            "use a smaller resolution or fewer frames per window"
        )
    cos, sin = _grid_cos_sin_cpu(f, h, w, head_dim)
    return cos.to(device), sin.to(device)


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of x [..., 2*P] by angles given as cos/sin broadcastable to [..., P].

    Runs in float32 and returns x's dtype.
    """
    shape = x.shape
    xf = x.float().reshape(*shape[:-1], shape[-1] // 2, 2)
    a, b = xf[..., 0], xf[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.reshape(shape).to(x.dtype)


def apply_rope_3d(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, chunk_tokens: int = 4096) -> torch.Tensor:
    """x [B, L, heads, head_dim] with L = f*h*w tokens; cos/sin from `grid_cos_sin`.

    Long sequences are rotated in chunks of tokens so the float32 temporaries stay small
    (a whole 14B/480p q in float32 would be ~0.7 GB per copy).
    """
    length = x.shape[1]
    if length <= chunk_tokens:
        return rotate_pairs(x, cos[None, :, None, :], sin[None, :, None, :])
    out = torch.empty_like(x)
    for start in range(0, length, chunk_tokens):
        end = min(start + chunk_tokens, length)
        out[:, start:end] = rotate_pairs(x[:, start:end], cos[None, start:end, None, :], sin[None, start:end, None, :])
    return out


def rope_1d_cos_sin(positions: torch.Tensor, head_dim: int, base: float = 10000.0):
    """cos/sin [..., head_dim/2] for float positions, in float32 as the reference computes them."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = positions.float()[..., None] * inv.to(positions.device)
    return angles.cos(), angles.sin()


def apply_rope_1d(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x [B, L, heads, head_dim]; positions [B, L] or [L] (float): InfiniteTalk's speaker RoPE."""
    cos, sin = rope_1d_cos_sin(positions, x.shape[-1])
    if positions.dim() == 1:
        cos, sin = cos[None], sin[None]
    return rotate_pairs(x, cos[:, :, None, :], sin[:, :, None, :])
