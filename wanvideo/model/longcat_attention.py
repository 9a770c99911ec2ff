"""LongCat-Video-Avatar attention: 3-D RoPE self-attention (reference frame, condition frames, key/value cache,
masked reference range), packed text cross-attention, per-frame audio cross-attention with speaker routing.

Numbers follow the official modules; every softmax runs through our attention backends (`attention.py`),
tensors in [batch, tokens, heads, head_dim].
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import attention
from .layers import Linear, RMSNorm
from .rope import rotate_pairs


def longcat_rope_cos_sin(grid, head_dim: int, device, ref_img_index=None, num_ref_latents=None):
    """cos/sin [T*H*W, head_dim/2] of LongCat's 3-D RoPE.

    Channel pairs: time gets head_dim - 4*(head_dim//6) channels, height and width 2*(head_dim//6) each; angles
    pos * 10000^(-2j/n) per axis (float32, as the official table). With a reference latent its temporal
    position is `ref_img_index` and the other frames count from 0.
    """
    t, h, w = (int(v) for v in grid)
    dim_t = head_dim - 4 * (head_dim // 6)
    dim_hw = 2 * (head_dim // 6)

    def inv(n):
        return 1.0 / (10000.0 ** (torch.arange(0, n, 2)[: n // 2].float() / n))

    if ref_img_index is not None and num_ref_latents is not None:
        pos_t = torch.cat([torch.tensor([float(ref_img_index)]), torch.arange(0, t - num_ref_latents).float()])
    else:
        pos_t = torch.arange(t).float()
    at = torch.outer(pos_t, inv(dim_t))[:, None, None, :].expand(t, h, w, -1)
    ah = torch.outer(torch.arange(h).float(), inv(dim_hw))[None, :, None, :].expand(t, h, w, -1)
    aw = torch.outer(torch.arange(w).float(), inv(dim_hw))[None, None, :, :].expand(t, h, w, -1)
    angles = torch.cat([at, ah, aw], dim=-1).reshape(t * h * w, head_dim // 2)
    return angles.cos().to(device), angles.sin().to(device)


def rope_1d(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """1-D RoPE on x [B, L, heads, D] at float positions [L] (speaker routing)."""
    d = x.shape[-1]
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2)[: d // 2].float() / d))
    angles = torch.outer(positions.float(), inv.to(positions.device))
    return rotate_pairs(x, angles.cos()[None, :, None, :], angles.sin()[None, :, None, :])


def reference_attention_map(q, k_ref, masks, chunk_tokens: int = 4096) -> torch.Tensor:
    """[n_masks, L] mean attention of each query to each mask's area of the first (reference) latent frame.

    q [1, L, heads, D] (after RoPE), k_ref [1, HW, heads, D], masks [n_masks, HW]. Heads are split in two groups
    (heads // 2 each; with an odd count the last head is left out, as officially), each group averaged, then the
    groups. Computed in query chunks so the [heads, L, HW] probabilities never exist whole.
    """
    heads = q.shape[2]
    group = heads // 2
    scale = q.shape[-1] ** -0.5
    masks = masks.to(q.dtype)
    area = masks.sum(dim=1)
    out = torch.zeros(masks.shape[0], q.shape[1], dtype=q.dtype, device=q.device)
    for start in range(0, q.shape[1], chunk_tokens):
        qc = q[0, start:start + chunk_tokens] * scale  # [l, H, D]
        for g in range(2):
            sl = slice(g * group, (g + 1) * group)
            probs = torch.einsum("lhd,khd->hlk", qc[:, sl], k_ref[0, :, sl].to(q.dtype)).softmax(-1)
            per_mask = torch.einsum("hlk,mk->mhl", probs, masks) / area[:, None, None]
            out[:, start:start + chunk_tokens] += per_mask.mean(dim=1)
    return out / 2


class LongCatSelfAttention(nn.Module):
    """Self-attention with q/k RMSNorm and 3-D RoPE (official `Attention`)."""

    def __init__(self, dim: int, num_heads: int, device=None, dtype=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Linear(dim, dim * 3, bias=True, device=device, dtype=dtype)
        self.q_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.k_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.proj = Linear(dim, dim, device=device, dtype=dtype)
        self.backend = "sdpa"

    def _qkv(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).unbind(2)
        return self.q_norm(q), self.k_norm(k), v

    def _attend(self, q, k, v):
        return attention(q.contiguous(), k.contiguous(), v.contiguous(), self.backend)

    def _rope(self, x, cos, sin):
        return rotate_pairs(x, cos[None, :, None, :], sin[None, :, None, :])

    def _noisy(self, q_noise, k, v, frame_tokens, first_masked, ref_range):
        """Noisy queries over all keys, except frames in `ref_range` (noisy-frame indices) skip the reference."""
        if ref_range is None:
            return self._attend(q_noise, k, v)
        start, end = ref_range[0] * frame_tokens, ref_range[1] * frame_tokens
        parts = [self._attend(q_noise[:, :start], k, v)]
        parts.append(self._attend(q_noise[:, start:end], k[:, first_masked:], v[:, first_masked:]))
        parts.append(self._attend(q_noise[:, end:], k, v))
        return torch.cat(parts, dim=1)

    def forward(self, x, shape, num_cond_latents=None, return_kv=False, num_ref_latents=None,
                ref_img_index=None, mask_frame_range=None, ref_masks=None):
        b, n, c = x.shape
        t = shape[0]
        frame_tokens = n // t
        q, k, v = self._qkv(x)
        cache = (k.clone(), v.clone()) if return_kv else None
        cos, sin = longcat_rope_cos_sin(shape, self.head_dim, x.device, ref_img_index, num_ref_latents)
        q, k = self._rope(q, cos, sin), self._rope(k, cos, sin)
        cond_tokens = 0
        if num_cond_latents == 1:  # image to video: the condition frame sees only itself
            cond_tokens = frame_tokens
            out = torch.cat([self._attend(q[:, :cond_tokens], k[:, :cond_tokens], v[:, :cond_tokens]),
                             self._attend(q[:, cond_tokens:], k, v)], dim=1)
        elif num_cond_latents is not None and num_cond_latents > 1:  # continuation: reference + condition frames
            ref, cond_tokens = frame_tokens, num_cond_latents * frame_tokens
            parts = [self._attend(q[:, :ref], k[:, :ref], v[:, :ref]),
                     self._attend(q[:, ref:cond_tokens], k[:, ref:cond_tokens], v[:, ref:cond_tokens])]
            if num_cond_latents < t:
                rng = masked_reference_range(ref_img_index, mask_frame_range, num_cond_latents, num_ref_latents,
                                             t - num_cond_latents)
                parts.append(self._noisy(q[:, cond_tokens:], k, v, frame_tokens, ref, rng))
            out = torch.cat(parts, dim=1)
        else:
            out = self._attend(q, k, v)
        out = self.proj(out.reshape(b, n, c))
        attn_map = None
        if ref_masks is not None:
            attn_map = reference_attention_map(q[:, cond_tokens:].to(out.dtype), k[:, :frame_tokens].to(out.dtype),
                                               ref_masks)
        return out, attn_map, cache

    def forward_cached(self, x, shape, num_cond_latents, kv_cache, num_ref_latents=None, ref_img_index=None,
                       mask_frame_range=None, ref_masks=None):
        """Noisy tokens only; keys/values of the reference + condition frames come from `kv_cache` (pre-RoPE)."""
        b, n, c = x.shape
        t, h, w = shape
        frame_tokens = n // t
        q, k, v = self._qkv(x)
        k_cache, v_cache = kv_cache
        if k_cache.shape[0] == 1 and b > 1:
            k_cache, v_cache = k_cache.expand(b, -1, -1, -1), v_cache.expand(b, -1, -1, -1)
        k_full = torch.cat([k_cache.to(k.dtype), k], dim=1)
        v_full = torch.cat([v_cache.to(v.dtype), v], dim=1)
        cos, sin = longcat_rope_cos_sin((t + num_cond_latents, h, w), self.head_dim, x.device, ref_img_index,
                                        num_ref_latents)
        cached = k_cache.shape[1]
        q = self._rope(q, cos[cached:], sin[cached:])
        k_full = self._rope(k_full, cos, sin)
        rng = masked_reference_range(ref_img_index, mask_frame_range, num_cond_latents, num_ref_latents, t)
        out = self._noisy(q, k_full, v_full, frame_tokens, frame_tokens, rng)
        out = self.proj(out.reshape(b, n, c))
        attn_map = None
        if ref_masks is not None:
            attn_map = reference_attention_map(q.to(out.dtype), k_full[:, :frame_tokens].to(out.dtype), ref_masks)
        return out, attn_map


def masked_reference_range(ref_img_index, mask_frame_range, num_cond_latents, num_ref_latents, num_noisy):
    """(start, end) noisy-frame indices that may not attend to the reference latent, or None.

    The official rule: frames around the reference's RoPE position, [ref - r, ref + r] shifted into noisy-frame
    indices, only when that range lies inside the noisy frames.
    """
    if not mask_frame_range or mask_frame_range <= 0:
        return None
    offset = -num_cond_latents + (num_ref_latents or 0)
    start = ref_img_index - mask_frame_range + offset
    end = ref_img_index + mask_frame_range + offset + 1
    if start >= 0 and end > start and end <= num_noisy:
        return start, end
    return None


class LongCatTextCrossAttention(nn.Module):
    """Text cross-attention over packed valid tokens: batch item i sees only its own `lengths[i]` tokens."""

    def __init__(self, dim: int, num_heads: int, device=None, dtype=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_linear = Linear(dim, dim, device=device, dtype=dtype)
        self.kv_linear = Linear(dim, dim * 2, device=device, dtype=dtype)
        self.proj = Linear(dim, dim, device=device, dtype=dtype)
        self.q_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.k_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.backend = "sdpa"

    def _attend(self, x, context, lengths):
        b, n, c = x.shape
        q = self.q_norm(self.q_linear(x).view(b, n, self.num_heads, self.head_dim))
        k, v = self.kv_linear(context).view(1, -1, 2, self.num_heads, self.head_dim).unbind(2)
        k = self.k_norm(k)
        outs, start = [], 0
        for i, length in enumerate(lengths):
            end = start + int(length)
            outs.append(attention(q[i:i + 1], k[:, start:end].contiguous(), v[:, start:end].contiguous(),
                                  self.backend))
            start = end
        return self.proj(torch.cat(outs, dim=0).reshape(b, n, c))

    def forward(self, x, context, lengths, num_cond_latents=None, shape=None):
        """x [B, N, C]; context [1, sum(lengths), C]; condition frames (if any) get zeros."""
        if not num_cond_latents:
            return self._attend(x, context, lengths)
        cond_tokens = num_cond_latents * (x.shape[1] // shape[0])
        noisy = self._attend(x[:, cond_tokens:], context, lengths)
        return torch.cat([noisy.new_zeros(x.shape[0], cond_tokens, x.shape[2]), noisy], dim=1)


def _normalize_into(values, lo, hi, eps=1e-8):
    vmin, vmax = values.min(), values.max()
    return (values - vmin) / (vmax - vmin + eps) * (hi - lo) + lo


class LongCatAudioCrossAttention(nn.Module):
    """Per-latent-frame audio cross-attention (official `SingleStreamAttention`), with the multi-speaker routing."""

    def __init__(self, dim: int, context_dim: int, num_heads: int, class_range=24, class_interval=4,
                 device=None, dtype=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_linear = Linear(dim, dim, bias=True, device=device, dtype=dtype)
        self.q_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.kv_linear = Linear(context_dim, dim * 2, bias=True, device=device, dtype=dtype)
        self.k_norm = RMSNorm(self.head_dim, eps=1e-6, device=device, dtype=dtype)
        self.proj = Linear(dim, dim, device=device, dtype=dtype)
        self.speaker1 = (0.0, float(class_interval))
        self.speaker2 = (float(class_range - class_interval), float(class_range))
        self.background = float(class_range // 2)
        self.backend = "sdpa"

    def _query_positions(self, attn_map):
        """Each query token's 1-D RoPE position: its speaker's normalised attention, or the background's."""
        pos1 = _normalize_into(attn_map[0], *self.speaker1)
        pos2 = _normalize_into(attn_map[1], *self.speaker2)
        back = torch.full_like(pos1, self.background if attn_map.shape[0] <= 3 else 100.0)
        choice = attn_map.argmax(dim=0).clamp(max=2)
        return torch.stack([pos1, pos2, back], dim=1).gather(1, choice[:, None])[:, 0]

    def _key_positions(self, tokens, speakers, attn_map, device, dtype):
        pos = torch.zeros(tokens, dtype=dtype, device=device)
        p1, p2 = sum(self.speaker1) / 2, sum(self.speaker2) / 2
        if speakers is not None and speakers > 2:
            per = tokens // speakers
            pos[:per], pos[per:2 * per] = p1, p2
            pos[2 * per:] = self.background if attn_map.shape[0] <= 3 else 100.0
        else:
            pos[: tokens // 2], pos[tokens // 2:] = p1, p2
        return pos

    def _attend(self, x, context, frames, attn_map=None, speakers=None):
        """x [B, frames*S, C]; context [B*frames, M, C_a]."""
        b, n, c = x.shape
        s = n // frames
        q = self.q_norm(self.q_linear(x).view(b, n, self.num_heads, self.head_dim))
        m = context.shape[1]
        k, v = self.kv_linear(context).view(b * frames, m, 2, self.num_heads, self.head_dim).unbind(2)
        k = self.k_norm(k)
        if attn_map is not None:
            q = rope_1d(q, self._query_positions(attn_map))
            key_pos = self._key_positions(m, speakers, attn_map, k.device, k.dtype).repeat(frames)
            k = rope_1d(k.reshape(b, frames * m, self.num_heads, self.head_dim), key_pos)
            k = k.reshape(b * frames, m, self.num_heads, self.head_dim)
        out = attention(q.reshape(b * frames, s, self.num_heads, self.head_dim), k.contiguous(), v.contiguous(),
                        self.backend)
        return self.proj(out.reshape(b, n, c))

    def forward(self, x, context, shape, num_cond_latents=None, attn_map=None, speakers=None):
        """Returns (zeros for the condition tokens or None, output for the other tokens)."""
        b, n, c = x.shape
        if not num_cond_latents:
            return None, self._attend(x, context, shape[0], attn_map, speakers)
        cond_tokens = num_cond_latents * (n // shape[0])
        context = context.reshape(b, shape[0], *context.shape[1:])[:, num_cond_latents:]
        context = context.reshape(-1, *context.shape[2:])
        routed = speakers if speakers is not None and speakers > 2 else None
        noisy = self._attend(x[:, cond_tokens:], context, shape[0] - num_cond_latents,
                             attn_map if speakers is not None and speakers >= 2 else None, routed)
        return noisy.new_zeros(b, cond_tokens, c), noisy
