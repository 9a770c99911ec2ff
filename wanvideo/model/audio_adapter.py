"""The InfiniteTalk audio adapter: audio projection, per-latent-frame audio cross-attention,
and the two-speaker routing (reference attention map to the first latent frame + 1-D RoPE labels).

Weights are named as in the reference: `audio_proj.proj1/proj1_vf/proj2/proj3/norm`,
`blocks.N.audio_cross_attn.q_linear/kv_linear/proj`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from .layers import Linear
from .parallel.sequence_parallel import FrameSpan
from .rope import apply_rope_1d

# Speaker RoPE labels of the reference (class_range 24, class_interval 4).
SPEAKER1_RANGE = (0.0, 4.0)
SPEAKER2_RANGE = (20.0, 24.0)
BACKGROUND_POSITION = 12.0
# Query tokens per chunk when computing the attention map (bounds memory at 14B sizes; exact).
_MAP_CHUNK_ELEMENTS = 1 << 26


def arrange_audio_windows(audio: torch.Tensor, vae_scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split per-video-frame windows into the adapter's per-latent-frame inputs.

    audio [speakers, 1 + vae_scale*(T-1), window, layers, channels] ->
    first [speakers, 1, window, L, C] (the first video frame's whole window) and
    later [speakers, T-1, window + vae_scale - 1, L, C]: for each later latent frame's
    vae_scale video frames, the first frame's rows 0..mid, the middle frames' row mid,
    and the last frame's rows mid..window-1.
    """
    speakers, frames, window, layers, channels = audio.shape
    mid = window // 2
    first = audio[:, :1]
    rest = audio[:, 1:].reshape(speakers, (frames - 1) // vae_scale, vae_scale, window, layers, channels)
    later = torch.cat(
        [
            rest[:, :, 0, : mid + 1],
            rest[:, :, 1:-1, mid],
            rest[:, :, -1, mid:],
        ],
        dim=2,
    )
    return first, later


class AudioProjModel(nn.Module):
    """Audio windows -> `context_tokens` tokens of `output_dim` per latent frame and speaker."""

    def __init__(self, window, vae_scale, layers, channels, intermediate_dim, output_dim, context_tokens,
                 norm_output_audio=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.context_tokens = context_tokens
        self.output_dim = output_dim
        self.vae_scale = vae_scale
        self.proj1 = Linear(window * layers * channels, intermediate_dim, **kw)
        self.proj1_vf = Linear((window + vae_scale - 1) * layers * channels, intermediate_dim, **kw)
        self.proj2 = Linear(intermediate_dim, intermediate_dim, **kw)
        self.proj3 = Linear(intermediate_dim, context_tokens * output_dim, **kw)
        self.norm = nn.LayerNorm(output_dim, **kw) if norm_output_audio else nn.Identity()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [speakers, frames, window, L, C] -> [speakers, latent frames, context_tokens, output_dim]."""
        first, later = arrange_audio_windows(audio, self.vae_scale)
        speakers = audio.shape[0]
        h = [torch.relu(self.proj1(first.flatten(2)))]
        if later.shape[1]:
            h.append(torch.relu(self.proj1_vf(later.flatten(2))))
        h = torch.cat(h, dim=1)  # [speakers, T, intermediate]
        h = torch.relu(self.proj2(h))
        tokens = self.proj3(h).reshape(speakers, h.shape[1], self.context_tokens, self.output_dim)
        if isinstance(self.norm, nn.LayerNorm):  # in float32 (the reference runs it under fp32 autocast)
            tokens = F.layer_norm(tokens.float(), self.norm.normalized_shape, self.norm.weight.float(),
                                  self.norm.bias.float(), self.norm.eps).to(audio.dtype)
        return tokens


def audio_tokens_per_frame(projected: torch.Tensor) -> torch.Tensor:
    """[speakers, T, tokens, C] -> [T, speakers*tokens, C]: each latent frame's tokens, speaker 1 first."""
    speakers, frames, tokens, channels = projected.shape
    return projected.permute(1, 0, 2, 3).reshape(frames, speakers * tokens, channels)


class AudioCrossAttention(nn.Module):
    """Each latent frame's video tokens attend to that frame's audio tokens (no q/k norm)."""

    def __init__(self, dim, audio_dim, num_heads, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_linear = Linear(dim, dim, **kw)
        self.kv_linear = Linear(audio_dim, dim * 2, **kw)
        self.proj = Linear(dim, dim, **kw)

    def forward(self, x, audio_tokens, span: FrameSpan, positions=None):
        """x [B, n, dim]: `span`'s tokens (the whole sequence, or a sequence-parallel shard's real tokens);
        audio_tokens [T, N_a, audio_dim] for all latent frames, shared by the batch, or [B, T, N_a, audio_dim] one
        per batch row (batched guidance); positions [B, n] speaker RoPE positions or None.

        Each token attends to its own latent frame's audio tokens; the span is padded out to whole frames so
        this runs as one batched attention per frame.
        """
        b, length, dim = x.shape
        n, d = self.num_heads, self.head_dim
        per_row = audio_tokens.dim() == 4
        window = slice(span.first_frame, span.first_frame + span.frames)
        frames = audio_tokens[:, window] if per_row else audio_tokens[window]
        na = frames.shape[-2]
        q = self.q_linear(x).view(b, length, n, d)
        kv = self.kv_linear(frames).reshape(-1, na, 2, n, d)  # [t or B*t, N_a, 2, n, d]
        k, v = kv[:, :, 0], kv[:, :, 1]
        if positions is not None:
            q = apply_rope_1d(q, positions)
            key_pos = torch.full((na,), sum(SPEAKER2_RANGE) / 2, device=k.device)
            key_pos[: na // 2] = sum(SPEAKER1_RANGE) / 2
            k = apply_rope_1d(k, key_pos)
        q = span.to_frames(q)  # [B*t, per_frame, n, d]
        if not per_row:
            k = k.repeat(b, 1, 1, 1)
            v = v.repeat(b, 1, 1, 1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out = span.from_frames(out.transpose(1, 2), b).reshape(b, length, dim)
        return self.proj(out)


def token_masks_from(ref_target_masks: torch.Tensor, grid) -> torch.Tensor:
    """[3, h, w] masks (any resolution) -> [3, N_h*N_w] 0/1 float at token resolution (nearest, > 0)."""
    if ref_target_masks.dim() != 3 or ref_target_masks.shape[0] != 3:
        raise InputError(
            f"ref_target_masks must be [3, H, W] (speaker 1, speaker 2, background), got {tuple(ref_target_masks.shape)}"
        )
    _, nh, nw = grid
    m = F.interpolate(ref_target_masks[None].float(), size=(nh, nw), mode="nearest")[0]
    return (m > 0).float().reshape(3, nh * nw)


def reference_attention_map(q, k, grid, token_masks) -> torch.Tensor:
    """How much each token attends to each mask's tokens of the first latent frame.

    q, k [B, L, H, D] after RoPE. Softmax over the first latent frame's keys only,
    summed inside each mask and divided by the mask size, averaged over the first
    2*(H//2) heads (the reference averages two halves of H//2 heads). Returns [B, 3, L]
    float32; a class whose mask is empty gets +inf (the reference divides 0 by 0 there,
    and its argmax then picks that class).
    """
    b, length, heads, d = q.shape
    first = grid[1] * grid[2]
    used = 2 * (heads // 2)
    k_ref = k[:, :first, :used].transpose(1, 2)  # [B, h, R, D]
    masks = token_masks.to(device=q.device, dtype=torch.float32)  # [3, R]
    sizes = masks.sum(dim=1)
    scale = 1.0 / d**0.5
    chunk = max(1, _MAP_CHUNK_ELEMENTS // max(1, b * used * first))
    out = torch.empty(b, 3, length, device=q.device, dtype=torch.float32)
    for start in range(0, length, chunk):
        qc = (q[:, start:start + chunk, :used] * scale).transpose(1, 2)  # [B, h, c, D]
        probs = torch.matmul(qc, k_ref.transpose(-1, -2)).float().softmax(dim=-1)  # [B, h, c, R]
        per_class = torch.matmul(probs, masks.t())  # [B, h, c, 3]
        out[:, :, start:start + chunk] = (per_class.mean(dim=1) / sizes).transpose(1, 2)
    empty = sizes == 0
    if bool(empty.any()):
        out[:, empty] = float("inf")
    return out


def _rescale(values, lo, hi, low, high):
    return (values - lo) / (hi - lo + 1e-8) * (high - low) + low


def speaker_rope_positions(q, k, grid, token_masks, shard=None) -> torch.Tensor:
    """[B, L] 1-D RoPE positions: speaker 1's map rescaled to [0,4], speaker 2's to [20,24],
    background 12, each token taking the class its attention map is largest for.

    With a sequence-parallel `shard`, q holds the shard's real tokens, k the first latent frame's keys
    (gathered), and the rescaling uses the map's range over all ranks, as on one process.
    """
    maps = reference_attention_map(q, k, grid, token_masks)  # [B, 3, L]
    if maps.shape[-1]:
        lo, hi = maps.amin(dim=-1), maps.amax(dim=-1)
    else:  # a shard of padding only: neutral values for the global range
        lo = maps.new_full(maps.shape[:2], float("inf"))
        hi = maps.new_full(maps.shape[:2], float("-inf"))
    if shard is not None:
        lo, hi = shard.global_min(lo), shard.global_max(hi)
    positions = []
    for m, m_lo, m_hi in zip(maps, lo, hi, strict=True):
        labels = torch.stack(
            [
                _rescale(m[0], m_lo[0], m_hi[0], *SPEAKER1_RANGE),
                _rescale(m[1], m_lo[1], m_hi[1], *SPEAKER2_RANGE),
                torch.full_like(m[0], BACKGROUND_POSITION),
            ],
            dim=1,
        )
        positions.append(labels.gather(1, m.argmax(dim=0)[:, None])[:, 0])
    return torch.stack(positions)
