"""WanAnimate's face path after the LIA encoder: the causal face encoder and the face cross-attention blocks.

`FaceEncoder`: motion vectors [B, T, C] (T = 4n+1 video frames) -> tokens [B, n+1, heads+1, dim]: a causal
conv (kernel 3, replicate padding on the left) into `heads` token streams, two stride-2 causal convs
(T -> 2n+1 -> n+1 latent frames), a projection to the model width and one learned padding token per frame.

`FaceBlock`: cross-attention of the video tokens of latent frame l to the face tokens of frame l only, added
after every `face_block_every`-th transformer block; no modulation, no gate. Names follow the reference
(`face_encoder.conv1_local.conv.weight`, `face_adapter.fuser_blocks.0.linear1_kv.weight`).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import attention
from .layers import Linear, RMSNorm


def _layer_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Affine-free LayerNorm over the last dim in the input dtype (nn.LayerNorm(elementwise_affine=False))."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


class CausalConv1d(nn.Module):
    """Conv1d over time whose output at t sees frames <= t: replicate-pads kernel-1 frames on the left."""

    def __init__(self, cin, cout, kernel=3, stride=1, device=None, dtype=None):
        super().__init__()
        self.left = kernel - 1
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.left, 0), mode="replicate")
        w, b = self.conv.weight.to(x.dtype), self.conv.bias.to(x.dtype)
        return F.conv1d(x, w, b, stride=self.conv.stride)


class FaceEncoder(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, num_heads: int, width: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.num_heads = num_heads
        self.conv1_local = CausalConv1d(in_dim, width * num_heads, 3, stride=1, **kw)
        self.conv2 = CausalConv1d(width, width, 3, stride=2, **kw)
        self.conv3 = CausalConv1d(width, width, 3, stride=2, **kw)
        self.out_proj = Linear(width, hidden_dim, **kw)
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, 1, hidden_dim, **kw))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """motion [B, T, in_dim] -> [B, (T-1)//4 + 1, num_heads + 1, hidden_dim]."""
        b = motion.shape[0]
        x = self.conv1_local(motion.transpose(1, 2))  # [B, heads*width, T]
        x = x.unflatten(1, (self.num_heads, -1)).flatten(0, 1)  # [(B heads), width, T]
        x = F.silu(_layer_norm(x.transpose(1, 2))).transpose(1, 2)
        x = F.silu(_layer_norm(self.conv2(x).transpose(1, 2))).transpose(1, 2)
        x = F.silu(_layer_norm(self.conv3(x).transpose(1, 2)))  # [(B heads), frames, width]
        x = self.out_proj(x)
        x = x.unflatten(0, (b, self.num_heads)).transpose(1, 2)  # [B, frames, heads, hidden]
        pad = self.padding_tokens.to(x.dtype).expand(b, x.shape[1], 1, -1)
        return torch.cat([x, pad], dim=2)


class FaceBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.linear1_kv = Linear(dim, dim * 2, **kw)
        self.linear1_q = Linear(dim, dim, **kw)
        self.linear2 = Linear(dim, dim, **kw)
        self.q_norm = RMSNorm(head_dim, eps=1e-6, **kw)
        self.k_norm = RMSNorm(head_dim, eps=1e-6, **kw)

    def forward(self, x: torch.Tensor, motion_tokens: torch.Tensor, backend: str = "sdpa", span=None) -> torch.Tensor:
        """x [B, L, dim] video tokens (L = frames * tokens per frame); motion_tokens [B, frames, K, dim].
        Returns the residual [B, L, dim] to add to x. `span` (a FrameSpan): x holds only those tokens of the
        sequence (a sequence-parallel shard), which attend to their own frames' face tokens."""
        if span is not None:
            motion_tokens = motion_tokens[:, span.first_frame:span.first_frame + span.frames]
        b, frames, k_tokens, dim = motion_tokens.shape
        n = self.num_heads
        kv = self.linear1_kv(_layer_norm(motion_tokens.to(x.dtype)))  # [B, frames, K, 2*dim]
        k, v = kv.unflatten(-1, (2, n, -1)).unbind(3)  # each [B, frames, K, heads, head_dim]
        q = self.linear1_q(_layer_norm(x)).unflatten(-1, (n, -1))  # [B, L, heads, head_dim]
        q = self.q_norm(q).to(v.dtype)
        k = self.k_norm(k).to(v.dtype)
        if span is None:
            per_frame = x.shape[1] // frames
            q = q.reshape(b * frames, per_frame, n, -1)
        else:
            q = span.to_frames(q)  # padded out to whole frames
        out = attention(q, k.flatten(0, 1), v.flatten(0, 1), backend)  # each frame sees its own face tokens
        if span is not None:
            return self.linear2(span.from_frames(out, b).reshape(b, x.shape[1], dim))
        return self.linear2(out.reshape(b, frames * per_frame, dim))


class FaceAdapter(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_blocks: int, device=None, dtype=None):
        super().__init__()
        self.fuser_blocks = nn.ModuleList([FaceBlock(dim, num_heads, device=device, dtype=dtype)
                                           for _ in range(num_blocks)])
