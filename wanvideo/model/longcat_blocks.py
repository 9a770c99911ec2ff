"""LongCat-Video-Avatar building blocks: embedders, the audio projection, the single-stream block, the head.

Modulation, LayerNorm and the head run in float32 inside a bf16 model, as the official `*_FP32` classes do.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Conv3d, LayerNorm, Linear
from .longcat_attention import LongCatAudioCrossAttention, LongCatSelfAttention, LongCatTextCrossAttention


def modulate(norm: nn.Module, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """norm(x) * (1 + scale) + shift in float32, returned in x's dtype; x [B, T, S, C], shift/scale [B, T, 1, C]."""
    return (norm(x.float()) * (scale + 1) + shift).to(x.dtype)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [N, dim] (cos first), float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class FloatLinear(Linear):
    """A Linear that always computes in float32 (the official modulation / head under autocast(float32))."""

    def forward(self, x):
        return super().forward(x.float())


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int, device=None, dtype=None):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(FloatLinear(freq_dim, dim, device=device, dtype=dtype), nn.SiLU(),
                                 FloatLinear(dim, dim, device=device, dtype=dtype))

    def forward(self, t):
        return self.mlp(timestep_embedding(t, self.freq_dim))


class CaptionEmbedder(nn.Module):
    def __init__(self, in_dim: int, dim: int, device=None, dtype=None):
        super().__init__()
        self.y_proj = nn.Sequential(Linear(in_dim, dim, device=device, dtype=dtype), nn.GELU(approximate="tanh"),
                                    Linear(dim, dim, device=device, dtype=dtype))

    def forward(self, y):
        return self.y_proj(y)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size, in_channels: int, dim: int, device=None, dtype=None):
        super().__init__()
        self.proj = Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size, device=device, dtype=dtype)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class SwiGLU(nn.Module):
    """SwiGLU FFN; hidden size int(2*hidden/3) rounded up to a multiple of 256 (official FeedForwardSwiGLU)."""

    def __init__(self, dim: int, hidden: int, device=None, dtype=None):
        super().__init__()
        hidden = int(2 * hidden / 3)
        hidden = 256 * ((hidden + 255) // 256)
        self.w1 = Linear(dim, hidden, bias=False, device=device, dtype=dtype)
        self.w2 = Linear(hidden, dim, bias=False, device=device, dtype=dtype)
        self.w3 = Linear(dim, hidden, bias=False, device=device, dtype=dtype)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class AudioProjModel(nn.Module):
    """Audio windows -> `context_tokens` tokens per latent frame (first frame through proj1, later groups of
    `vae_scale` frames through proj1_vf)."""

    def __init__(self, window, window_vf, blocks, channels, intermediate_dim, output_dim, context_tokens,
                 device=None, dtype=None):
        super().__init__()
        self.context_tokens, self.output_dim = context_tokens, output_dim
        kw = {"device": device, "dtype": dtype}
        self.proj1 = Linear(window * blocks * channels, intermediate_dim, **kw)
        self.proj1_vf = Linear(window_vf * blocks * channels, intermediate_dim, **kw)
        self.proj2 = Linear(intermediate_dim, intermediate_dim, **kw)
        self.proj3 = Linear(intermediate_dim, context_tokens * output_dim, **kw)
        self.norm = nn.LayerNorm(output_dim, **kw)

    def forward(self, first, later):
        """first [B, 1, W, S, C], later [B, n, W', S, C] -> [B, 1 + n, context_tokens, output_dim]."""
        b = first.shape[0]
        h_first = torch.relu(self.proj1(first.reshape(b, first.shape[1], -1)))
        h_later = torch.relu(self.proj1_vf(later.reshape(b, later.shape[1], -1)))
        h = torch.relu(self.proj2(torch.cat([h_first, h_later], dim=1)))
        tokens = self.proj3(h).reshape(b, h.shape[1], self.context_tokens, self.output_dim)
        return F.layer_norm(tokens, (self.output_dim,), self.norm.weight.to(tokens.dtype),
                            self.norm.bias.to(tokens.dtype), self.norm.eps)


def audio_frame_windows(audio: torch.Tensor, vae_scale: int, window: int):
    """Split per-video-frame windows [B, F, W, S, C] into the first frame's and the later groups' tap sets.

    Each later group of `vae_scale` frames keeps the first frame's taps up to the centre, the middle frames'
    centre tap and the last frame's taps from the centre: window + vae_scale - 1 taps.
    """
    b, f = audio.shape[:2]
    mid = window // 2
    later = audio[:, 1:].reshape(b, (f - 1) // vae_scale, vae_scale, *audio.shape[2:])
    head = later[:, :, 0, : mid + 1]
    middle = later[:, :, 1:-1, mid]
    tail = later[:, :, -1, mid:]
    return audio[:, :1], torch.cat([head, middle, tail], dim=2)


class LongCatBlock(nn.Module):
    """Self-attention, text cross-attention, gated audio cross-attention, SwiGLU FFN, all modulated per frame."""

    def __init__(self, cfg: dict, device=None, dtype=None):
        super().__init__()
        dim, heads, temb = cfg["hidden_size"], cfg["num_heads"], cfg["adaln_tembed_dim"]
        kw = {"device": device, "dtype": dtype}
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), FloatLinear(temb, 6 * dim, **kw))
        self.audio_adaLN_modulation = nn.Sequential(nn.SiLU(), FloatLinear(temb, 3 * dim, **kw))
        self.mod_norm_attn = LayerNorm(dim, eps=1e-6, elementwise_affine=False, **kw)
        self.mod_norm_ffn = LayerNorm(dim, eps=1e-6, elementwise_affine=False, **kw)
        self.pre_crs_attn_norm = LayerNorm(dim, eps=1e-6, elementwise_affine=True, **kw)
        self.pre_video_crs_attn_norm = LayerNorm(dim, eps=1e-6, elementwise_affine=True, **kw)
        out_dim = cfg["output_dim"]
        self.pre_audio_crs_attn_norm = (LayerNorm(out_dim, eps=1e-6, elementwise_affine=True, **kw)
                                        if cfg["audio_prenorm"] else nn.Identity())
        self.attn = LongCatSelfAttention(dim, heads, **kw)
        self.cross_attn = LongCatTextCrossAttention(dim, heads, **kw)
        self.audio_cross_attn = LongCatAudioCrossAttention(dim, out_dim, heads, cfg["class_range"],
                                                           cfg["class_interval"], **kw)
        self.ffn = SwiGLU(dim, int(dim * cfg["mlp_ratio"]), **kw)

    def _gated(self, x, gate, update, frames):
        b, n, c = x.shape
        return (x + (gate * update.view(b, frames, -1, c)).view(b, n, c)).to(x.dtype)

    def forward(self, x, text, t, text_lengths, shape, num_cond_latents=None, return_kv=False, kv_cache=None,
                skip_crs_attn=False, num_ref_latents=None, audio=None, ref_img_index=None, mask_frame_range=None,
                ref_masks=None, speakers=None):
        b, n, c = x.shape
        frames = shape[0]
        shift, scale, gate, shift_ffn, scale_ffn, gate_ffn = self.adaLN_modulation(t).unsqueeze(2).chunk(6, dim=-1)
        x_m = modulate(self.mod_norm_attn, x.view(b, frames, -1, c), shift, scale).view(b, n, c)
        cache = None
        if kv_cache is not None:
            attn_out, attn_map = self.attn.forward_cached(
                x_m, shape, num_cond_latents, kv_cache, num_ref_latents, ref_img_index, mask_frame_range, ref_masks)
        else:
            attn_out, attn_map, cache = self.attn(x_m, shape, num_cond_latents, return_kv, num_ref_latents,
                                                  ref_img_index, mask_frame_range, ref_masks)
        x = self._gated(x, gate, attn_out.float(), frames)

        if not skip_crs_attn:
            text_cond = None if kv_cache is not None else num_cond_latents
            x = x + self.cross_attn(self.pre_crs_attn_norm(x), text, text_lengths, text_cond, shape)
            x = x + self._audio(x, t, audio, shape, 0 if kv_cache is not None else (num_cond_latents or 0),
                                attn_map, speakers)
            x = x.to(x_m.dtype)

        x_m = modulate(self.mod_norm_ffn, x.view(b, frames, -1, c), shift_ffn, scale_ffn).view(b, n, c)
        x = self._gated(x, gate_ffn, self.ffn(x_m).float(), frames)
        return x, cache

    def _audio(self, x, t, audio, shape, num_cond, attn_map, speakers):
        b, n, c = x.shape
        shift, scale, gate = self.audio_adaLN_modulation(t[:, num_cond:]).unsqueeze(2).chunk(3, dim=-1)
        out_cond, out = self.audio_cross_attn(self.pre_video_crs_attn_norm(x), self.pre_audio_crs_attn_norm(audio),
                                              shape, num_cond, attn_map, speakers)
        noisy = shape[0] - num_cond
        out = modulate(self.mod_norm_attn, out.view(b, noisy, -1, c).float(), shift, scale)
        out = (gate * out).view(b, -1, c)
        if out_cond is not None:
            out = torch.cat([out_cond.float(), out], dim=1)
        return out


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch: int, out_channels: int, temb: int, device=None, dtype=None):
        super().__init__()
        self.norm_final = LayerNorm(dim, eps=1e-6, elementwise_affine=False, device=device, dtype=dtype)
        self.linear = FloatLinear(dim, patch * out_channels, device=device, dtype=dtype)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), FloatLinear(temb, 2 * dim, device=device, dtype=dtype))

    def forward(self, x, t, frames):
        b, n, c = x.shape
        shift, scale = self.adaLN_modulation(t).unsqueeze(2).chunk(2, dim=-1)
        x = modulate(self.norm_final, x.view(b, frames, -1, c).float(), shift, scale).view(b, n, c)
        return self.linear(x)
