"""Wan2.1 I2V transformer pieces: self-attention, text+image cross-attention, the block, the head, img_emb.

Module and parameter names follow the reference so the native state dict loads as is
(`blocks.N.self_attn.q.weight`, `blocks.N.cross_attn.k_img.weight`, `blocks.N.norm3.weight`, ...).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from .attention import attention
from .audio_adapter import AudioCrossAttention, speaker_rope_positions
from .layers import LayerNorm, LayerNormInputDtype, Linear, RMSNorm
from .parallel.sequence_parallel import FrameSpan, TokenShard
from .rope import apply_rope_3d


@dataclass
class ForwardState:
    """What every block needs besides the hidden states and the time modulation."""

    grid: tuple  # latent tokens (frames, height, width) after patching
    rope_cos: torch.Tensor  # [tokens, head_dim/2] float32
    rope_sin: torch.Tensor
    context: torch.Tensor  # [B, text_len, dim] embedded text
    context_img: torch.Tensor  # [B, clip tokens, dim] embedded CLIP image tokens
    backend: str = "sdpa"
    # [latent frames, speakers*context_tokens, output_dim] shared by the batch, or [B, ...] one per batch row
    audio_tokens: torch.Tensor | None = None
    speakers: int = 0
    token_masks: torch.Tensor | None = None  # [3, tokens per latent frame] 0/1 (two speakers only)
    face_tokens: torch.Tensor | None = None  # WanAnimate: [B, latent frames, K, dim] face tokens per latent frame
    shard: TokenShard | None = None  # sequence parallel: this rank's tokens (hidden states hold only those)
    audio_scale: float = 1.0  # multiplies the audio cross-attention's output (0: the blocks run as without audio)

    def self_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Full self-attention of the hidden states' tokens: the backend, or the sequence-parallel exchange."""
        if self.shard is not None:
            return self.shard.attention(q, k, v, self.backend)
        return attention(q, k, v, self.backend)

    def frame_span(self, tokens: int) -> FrameSpan:
        """The real tokens of the hidden states as a run of latent frames (for per-frame cross-attention)."""
        per_frame = self.grid[1] * self.grid[2]
        return FrameSpan(0, tokens, per_frame) if self.shard is None else self.shard.frame_span(per_frame)

    def per_frame_residual(self, h: torch.Tensor, fn) -> torch.Tensor:
        """`fn(x, span)` on the real tokens x of h and their FrameSpan -> its residual shaped like h
        (zeros on sequence-parallel padding). For blocks that attend per latent frame (WanAnimate's face blocks)."""
        n = h.shape[1] if self.shard is None else self.shard.valid
        if n == 0:
            return torch.zeros_like(h)
        out = fn(h[:, :n], self.frame_span(n))
        return out if self.shard is None else self.shard.pad(out)

    def select(self, rows) -> "ForwardState":
        """The state of some batch rows only (step caching runs the blocks on the rows it does not skip)."""
        index = torch.as_tensor(rows, device=self.context.device)
        audio = self.audio_tokens
        if audio is not None and audio.dim() == 4:
            audio = audio.index_select(0, index.to(audio.device))
        face = None if self.face_tokens is None else self.face_tokens.index_select(0, index.to(self.face_tokens.device))
        return replace(self, context=self.context.index_select(0, index),
                       context_img=self.context_img.index_select(0, index.to(self.context_img.device)),
                       audio_tokens=audio, face_tokens=face)


class SelfAttention(nn.Module):
    """Full self-attention with q/k RMSNorm over the whole width and 3-D RoPE."""

    def __init__(self, dim, num_heads, qk_norm=True, eps=1e-6, device=None, dtype=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        kw = dict(device=device, dtype=dtype)
        self.q = Linear(dim, dim, **kw)
        self.k = Linear(dim, dim, **kw)
        self.v = Linear(dim, dim, **kw)
        self.o = Linear(dim, dim, **kw)
        self.norm_q = RMSNorm(dim, eps=eps, **kw) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps=eps, **kw) if qk_norm else nn.Identity()

    def forward(self, x, state: ForwardState):
        """Returns (output, q, k); q and k (after RoPE) feed the two-speaker attention map."""
        b, s = x.shape[:2]
        n, d = self.num_heads, self.head_dim
        q = apply_rope_3d(self.norm_q(self.q(x)).view(b, s, n, d), state.rope_cos, state.rope_sin)
        k = apply_rope_3d(self.norm_k(self.k(x)).view(b, s, n, d), state.rope_cos, state.rope_sin)
        v = self.v(x).view(b, s, n, d)
        out = state.self_attention(q, k, v)
        return self.o(out.flatten(2)), q, k


class I2VCrossAttention(SelfAttention):
    """Cross-attention to the text tokens plus, added, to the CLIP image tokens.

    Same q/k/v/o projections and q/k norms as self-attention (and the same state-dict names), plus the image ones.
    """

    def __init__(self, dim, num_heads, qk_norm=True, eps=1e-6, device=None, dtype=None):
        super().__init__(dim, num_heads, qk_norm=qk_norm, eps=eps, device=device, dtype=dtype)
        kw = dict(device=device, dtype=dtype)
        self.k_img = Linear(dim, dim, **kw)
        self.v_img = Linear(dim, dim, **kw)
        self.norm_k_img = RMSNorm(dim, eps=eps, **kw) if qk_norm else nn.Identity()

    def forward(self, x, state: ForwardState):
        b = x.shape[0]
        n, d = self.num_heads, self.head_dim
        ctx, ctx_img = state.context, state.context_img
        q = self.norm_q(self.q(x)).view(b, -1, n, d)
        k = self.norm_k(self.k(ctx)).view(b, -1, n, d)
        v = self.v(ctx).view(b, -1, n, d)
        k_img = self.norm_k_img(self.k_img(ctx_img)).view(b, -1, n, d)
        v_img = self.v_img(ctx_img).view(b, -1, n, d)
        img_out = attention(q, k_img, v_img, state.backend)
        out = attention(q, k, v, state.backend)
        return self.o(out.flatten(2) + img_out.flatten(2))


class AttentionBlock(nn.Module):
    """One Wan block: modulated self-attention, text/image cross-attention, audio cross-attention, modulated FFN."""

    def __init__(self, cfg: dict, device=None, dtype=None):
        super().__init__()
        dim, eps = cfg["dim"], cfg["eps"]
        kw = dict(device=device, dtype=dtype)
        self.norm1 = LayerNorm(dim, eps)
        self.self_attn = SelfAttention(dim, cfg["num_heads"], cfg["qk_norm"], eps, **kw)
        self.norm3 = LayerNorm(dim, eps, elementwise_affine=True, **kw) if cfg["cross_attn_norm"] else nn.Identity()
        self.cross_attn = I2VCrossAttention(dim, cfg["num_heads"], cfg["qk_norm"], eps, **kw)
        self.norm2 = LayerNorm(dim, eps)
        self.ffn = nn.Sequential(
            Linear(dim, cfg["ffn_dim"], **kw), nn.GELU(approximate="tanh"), Linear(cfg["ffn_dim"], dim, **kw)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim, **kw) / dim**0.5)
        self.has_audio = cfg["audio_adapter"]
        if self.has_audio:
            self.audio_cross_attn = AudioCrossAttention(dim, cfg["output_dim"], cfg["num_heads"], **kw)
            self.norm_x = LayerNorm(dim, eps, elementwise_affine=True, **kw) if cfg["norm_input_visual"] else nn.Identity()

    def forward(self, x: torch.Tensor, e0: torch.Tensor, state: ForwardState) -> torch.Tensor:
        """x [B, L, dim] in the compute dtype; e0 [B, 6, dim] float32."""
        dtype = x.dtype
        e = (self.modulation.float() + e0).unsqueeze(2).unbind(1)  # 6 x [B, 1, dim] float32
        shift1, scale1, gate1, shift2, scale2, gate2 = e

        y, q, k = self.self_attn((self.norm1(x).float() * (1 + scale1) + shift1).to(dtype), state)
        x = (x + y * gate1).to(dtype)  # float32 residual add, as the reference's autocast block

        x = x + self.cross_attn(self.norm3(x), state)

        if self.has_audio and state.audio_tokens is not None and state.audio_scale != 0:
            audio = self.audio_residual(x, q, k, state)
            x = x + (audio if state.audio_scale == 1 else audio * state.audio_scale)
        del q, k

        y = self.ffn((self.norm2(x).float() * (1 + scale2) + shift2).to(dtype))
        return (x + y * gate2).to(dtype)


    def audio_residual(self, x, q, k, state: ForwardState) -> torch.Tensor:
        """The audio cross-attention's output for x's real tokens (zeros on sequence-parallel padding)."""
        shard = state.shard
        n = x.shape[1] if shard is None else shard.valid
        positions = None
        if state.speakers == 2:
            first_frame = state.grid[1] * state.grid[2]
            k_ref = k if shard is None else shard.leading_tokens(k, first_frame)
            positions = speaker_rope_positions(q[:, :n], k_ref, state.grid, state.token_masks, shard)
        if n == 0:
            return torch.zeros_like(x)
        out = self.audio_cross_attn(self.norm_x(x[:, :n]), state.audio_tokens, state.frame_span(n), positions)
        return out if shard is None else shard.pad(out)


class Head(nn.Module):
    """Output head: modulated LayerNorm + linear to patch channels, in float32."""

    def __init__(self, dim, out_dim, patch_size, eps=1e-6, device=None, dtype=None):
        super().__init__()
        self.norm = LayerNorm(dim, eps)
        self.head = Linear(dim, math.prod(patch_size) * out_dim, device=device, dtype=dtype)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim, device=device, dtype=dtype) / dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, L, dim]; e [B, dim] float32 time embedding. Returns float32 [B, L, prod(patch)*out_dim]."""
        mod = self.modulation.float() + e.float().unsqueeze(1)
        shift, scale = mod[:, 0:1], mod[:, 1:2]
        return self.head(self.norm(x).float() * (1 + scale) + shift)


class MLPProj(nn.Module):
    """CLIP image tokens -> model width (`img_emb.proj.{0,1,3,4}`), exact GELU, LayerNorm eps 1e-5."""

    def __init__(self, in_dim, out_dim, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.proj = nn.Sequential(
            LayerNormInputDtype(in_dim, **kw),
            Linear(in_dim, in_dim, **kw),
            nn.GELU(),
            Linear(in_dim, out_dim, **kw),
            LayerNormInputDtype(out_dim, **kw),
        )

    def forward(self, clip_fea: torch.Tensor) -> torch.Tensor:
        return self.proj(clip_fea)
