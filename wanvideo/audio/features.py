"""wav2vec2 hidden states at the video frame rate, for any length of audio in bounded memory.

What the reference computes (MeiGen-AI/InfiniteTalk `get_embedding` with its
Wav2Vec2Model subclass), on the whole clip at once:

    conv feature encoder (about 50 frames/s)
    -> linear interpolation (align_corners=True) to int(seconds * fps) rows
    -> feature projection -> positional conv -> transformer layers
    -> hidden states 1..L stacked as [frames, layers, channels]

The same numbers are produced here piece by piece, so memory does not grow
with the clip beyond the result itself:

* The conv encoder is local (a 400-sample receptive field, 320-sample hop)
  except for the first layer's GroupNorm, which has one group per channel and
  normalises over the entire clip. A first pass accumulates those per-channel
  statistics exactly (float64, Chan's parallel formula); the second pass runs
  the conv stack chunk by chunk, chunks starting on multiples of the total
  stride and overlapping by the receptive field, so every output frame sees
  exactly the samples it sees in one whole-clip pass.
* Interpolation, projection, LayerNorms and feed-forwards are per token; the
  positional convolution is local (computed in chunks with a halo).
* Self-attention is global; it runs through torch's scaled_dot_product_attention
  whose flash / memory-efficient kernels (CPU and CUDA) never materialise the
  tokens x tokens matrix. We call it ourselves on the layer's own projection
  weights rather than through transformers' attention dispatch, which differs
  between transformers 4.5x and 5.x and whose eager path (the one the
  reference forces) is quadratic in memory.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

DEFAULT_CHUNK_FRAMES = 250  # conv frames per chunk (5 s at 50 Hz): ~35 MB per activation at base size
DEFAULT_TOKEN_CHUNK = 2048  # tokens per chunk for the per-token parts of the transformer


def conv_geometry(config) -> tuple[int, int]:
    """(total stride, receptive field) of the conv feature encoder, in samples."""
    stride, field = 1, 1
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=False):
        field += (k - 1) * stride
        stride *= s
    return stride, field


def num_conv_frames(num_samples: int, config) -> int:
    """Number of conv feature frames for a clip, exactly as the strided convolutions give it."""
    n = int(num_samples)
    for k, s in zip(config.conv_kernel, config.conv_stride, strict=False):
        if n < k:
            return 0
        n = (n - k) // s + 1
    return n


def num_video_frames(num_samples: int, fps: float, sample_rate: int = 16000) -> int:
    """int(seconds * fps), evaluated as the reference does (seconds first, then times fps)."""
    return int(num_samples / sample_rate * fps)


def _normalize_waveform(wave: torch.Tensor) -> torch.Tensor:
    """Zero-mean unit-variance over the whole clip (Wav2Vec2FeatureExtractor with do_normalize=True)."""
    w64 = wave.double()
    mean = w64.mean()
    var = w64.var(unbiased=False)
    return ((w64 - mean) / torch.sqrt(var + 1e-7)).float()


def _group_norm_stats(enc, wave: torch.Tensor, chunk_frames: int):
    """Per-channel mean and 1/std of the first conv layer's output over the entire clip (float64).

    One group per channel, so these are exactly GroupNorm's statistics. Chunks
    of the first conv are combined with Chan et al.'s parallel mean/M2 update.
    """
    layer = enc.model.feature_extractor.conv_layers[0]
    k, s = enc.config.conv_kernel[0], enc.config.conv_stride[0]
    total = (wave.numel() - k) // s + 1
    step = max(1, int(chunk_frames)) * (conv_geometry(enc.config)[0] // s)  # first-layer frames per chunk
    count = 0
    mean = m2 = None
    for m0 in range(0, total, step):
        m1 = min(total, m0 + step)
        x = wave[m0 * s:(m1 - 1) * s + k].to(enc.device, enc.dtype)
        y = layer.conv(x[None, None])[0]  # [C, m1 - m0]
        n_b = y.shape[1]
        var_b, mean_b = torch.var_mean(y.float(), dim=1, unbiased=False)  # per chunk; combined in float64
        mean_b = mean_b.double()
        m2_b = var_b.double() * n_b
        del y
        if mean is None:
            mean, m2, count = mean_b, m2_b, n_b
        else:
            delta = mean_b - mean
            new_count = count + n_b
            mean = mean + delta * (n_b / new_count)
            m2 = m2 + m2_b + delta ** 2 * (count * n_b / new_count)
            count = new_count
    var = m2 / count
    return mean, 1.0 / torch.sqrt(var + layer.layer_norm.eps)


def conv_features(enc, wave: torch.Tensor, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                  callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Output of the conv feature encoder for the whole clip, `[n_conv, conv_dim]`, computed in chunks.

    `wave` is the 16 kHz mono waveform the model sees (after any input normalisation).
    """
    cfg = enc.config
    fe = enc.model.feature_extractor
    total = num_conv_frames(wave.numel(), cfg)
    stride, field = conv_geometry(cfg)
    if total <= 0:
        raise InputError(
            f"audio of {wave.numel()} samples ({wave.numel() / enc.sample_rate:.3f} s) is shorter than wav2vec2's "
            f"{field}-sample window: use a longer recording")
    group_norm = cfg.feat_extract_norm == "group"
    if group_norm:
        mean, inv_std = _group_norm_stats(enc, wave, chunk_frames)
        gn = fe.conv_layers[0].layer_norm
        scale64 = gn.weight.double() * inv_std
        shift64 = gn.bias.double() - mean * scale64
        scale = scale64.to(enc.dtype)[:, None]
        shift = shift64.to(enc.dtype)[:, None]
    out = torch.empty(total, cfg.conv_dim[-1], dtype=enc.dtype, device=enc.device)
    chunk_frames = max(1, int(chunk_frames))
    n_chunks = math.ceil(total / chunk_frames)
    for i, j0 in enumerate(range(0, total, chunk_frames)):
        j1 = min(total, j0 + chunk_frames)
        # Starts on a multiple of the total stride: every layer's frame grid lines up with the whole clip's.
        x = wave[j0 * stride:(j1 - 1) * stride + field].to(enc.device, enc.dtype)[None, None]
        for li, layer in enumerate(fe.conv_layers):
            if li == 0 and group_norm:
                x = layer.activation(layer.conv(x).mul_(scale).add_(shift))
            else:
                x = layer(x)
        if x.shape[-1] < j1 - j0:  # cannot happen with consistent geometry; guard against silent misalignment
            raise RuntimeError(f"conv chunk produced {x.shape[-1]} frames, expected {j1 - j0}")
        out[j0:j1] = x[0, :, :j1 - j0].T
        if callback is not None:
            callback(i + 1, n_chunks)
    return out


def interpolate_features(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation (align_corners=True) of `[n, C]` features to `[frames, C]`, as the reference does."""
    x = features.T[None]  # [1, C, n]
    y = F.interpolate(x, size=int(frames), mode="linear", align_corners=True)
    return y[0].T


def _per_token(fn, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Apply a per-token function to `[1, T, C]` in token chunks (bounds temporaries such as the FFN's)."""
    if x.shape[1] <= chunk:
        return fn(x)
    return torch.cat([fn(x[:, t:t + chunk]) for t in range(0, x.shape[1], chunk)], dim=1)


def _per_token_(fn, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """In-place version of `_per_token` (the function must map each token on its own)."""
    for t in range(0, x.shape[1], chunk):
        x[:, t:t + chunk] = fn(x[:, t:t + chunk])
    return x


def _positional(enc, hidden: torch.Tensor, chunk: int) -> torch.Tensor:
    """The positional conv embedding, in token chunks with a halo of one kernel width on each side."""
    pos = enc.model.encoder.pos_conv_embed
    T = hidden.shape[1]
    halo = int(enc.config.num_conv_pos_embeddings)
    if T <= chunk + 2 * halo:
        return pos(hidden)
    out = torch.empty_like(hidden)
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        a, b = max(0, t0 - halo), min(T, t1 + halo)
        # Inside the halo the module's own zero padding is never reached, so rows t0..t1 are exact.
        out[:, t0:t1] = pos(hidden[:, a:b])[:, t0 - a:t1 - a]
    return out


def _add_self_attention_(enc, attention, src: torch.Tensor, dst: torch.Tensor, chunk: int) -> None:
    """dst += self-attention(src), exact and global, through torch SDPA (O(tokens) memory kernels).

    Keys and values cover all tokens; queries go in blocks and each block's
    result is added to its own rows of `dst` (which may be `src` itself: a
    block's queries are read before its rows are updated).
    """
    T, H = src.shape[1], src.shape[2]
    heads = int(enc.config.num_attention_heads)
    d = H // heads

    def split(t):
        return t.view(1, t.shape[1], heads, d).transpose(1, 2)

    # contiguous [1, heads, T, d] once, so the kernel does not re-layout them for every query block
    k = split(attention.k_proj(src)).contiguous()
    v = split(attention.v_proj(src)).contiguous()
    for t0 in range(0, T, chunk):
        q = split(attention.q_proj(src[:, t0:t0 + chunk]))
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, scale=d ** -0.5)
        o = o.transpose(1, 2).reshape(1, q.shape[2], H)
        dst[:, t0:t0 + chunk] += attention.out_proj(o)


def project_features(enc, features: torch.Tensor, token_chunk: int = DEFAULT_TOKEN_CHUNK) -> torch.Tensor:
    """Feature projection (LayerNorm + Linear) of frame-rate conv features `[T, conv_dim]` -> `[1, T, hidden]`."""
    return _per_token(lambda t: enc.model.feature_projection(t)[0], features[None], token_chunk)


def encode_hidden(enc, hidden: torch.Tensor, out: torch.Tensor | None = None,
                  token_chunk: int = DEFAULT_TOKEN_CHUNK, intermediates: dict | None = None,
                  callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Positional conv + transformer on projected features `[1, T, hidden]` (updated in place)
    -> hidden states 1..L `[T, L, H]` float32 (CPU)."""
    cfg = enc.config
    enc_mod = enc.model.encoder
    T = hidden.shape[1]
    L, H = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    if out is None:
        out = torch.empty(T, L, H, dtype=torch.float32)
    stable = bool(cfg.do_stable_layer_norm)
    q_chunk = 2 * token_chunk

    pos = _positional(enc, hidden, token_chunk)
    hidden += pos
    del pos
    if not stable:
        _per_token_(enc_mod.layer_norm, hidden, token_chunk)
    if intermediates is not None:
        intermediates["encoder_input_hidden_state"] = hidden.float().cpu().clone()

    for i, layer in enumerate(enc_mod.layers):
        if stable:  # pre-norm layers (large LV-60 / XLSR style)
            attn_in = _per_token(layer.layer_norm, hidden, token_chunk)
            _add_self_attention_(enc, layer.attention, attn_in, hidden, q_chunk)
            del attn_in

            def rest(t, layer=layer):
                t = t + layer.feed_forward(layer.final_layer_norm(t))
                if getattr(layer, "adapter_layer", None) is not None:
                    t = t + layer.adapter_layer(t)
                return t
        else:  # post-norm layers (chinese-wav2vec2-base)
            _add_self_attention_(enc, layer.attention, hidden, hidden, q_chunk)

            def rest(t, layer=layer):
                t = layer.layer_norm(t)
                return layer.final_layer_norm(t + layer.feed_forward(t))
        _per_token_(rest, hidden, token_chunk)
        last = i == L - 1
        for t0 in range(0, T, token_chunk):
            rows = hidden[:, t0:t0 + token_chunk]
            if stable and last:
                # transformers' stable-layer-norm encoder reports its last hidden state after the final LayerNorm
                rows = enc_mod.layer_norm(rows)
            out[t0:t0 + rows.shape[1], i, :] = rows[0].to(device=out.device, dtype=out.dtype)
        if callback is not None:
            callback(i + 1, L)
    return out


def encode_features(enc, features: torch.Tensor, out: torch.Tensor | None = None,
                    token_chunk: int = DEFAULT_TOKEN_CHUNK, intermediates: dict | None = None,
                    callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Projection + transformer on frame-rate conv features `[T, conv_dim]` -> hidden states 1..L `[T, L, H]` float32 (CPU)."""
    hidden = project_features(enc, features, token_chunk)
    if intermediates is not None:
        intermediates["projected_features"] = hidden.float().cpu().clone()
    return encode_hidden(enc, hidden, out=out, token_chunk=token_chunk, intermediates=intermediates, callback=callback)


def prepare_model_input(enc, wave16k) -> torch.Tensor:
    """The float32 waveform the conv encoder sees (what Wav2Vec2FeatureExtractor would hand over)."""
    wave = torch.as_tensor(np.asarray(wave16k, dtype=np.float32)).reshape(-1)
    if enc.do_normalize:
        wave = _normalize_waveform(wave)
    return wave


@torch.no_grad()
def embed_waveform16k(enc, wave16k, fps: float = 25.0, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                      token_chunk: int = DEFAULT_TOKEN_CHUNK, intermediates: dict | None = None,
                      callback: Callable[[str, int, int], None] | None = None) -> torch.Tensor:
    """`[frames, layers, channels]` float32 embedding of a 16 kHz mono waveform (already loudness-processed).

    frames = int(seconds * fps). `callback(stage, done, total)` is called as work
    progresses ("conv" chunks, then "layers"); it may raise to interrupt.
    """
    wave = prepare_model_input(enc, wave16k)
    frames = num_video_frames(wave.numel(), fps, enc.sample_rate)
    if frames < 1:
        raise InputError(
            f"audio of {wave.numel() / enc.sample_rate:.3f} s is shorter than one video frame at {fps:g} fps "
            f"({1 / fps:.3f} s): use a longer recording"
        )
    conv_cb = (lambda d, t: callback("conv", d, t)) if callback is not None else None
    layer_cb = (lambda d, t: callback("layers", d, t)) if callback is not None else None
    feats = conv_features(enc, wave, chunk_frames=chunk_frames, callback=conv_cb)
    if intermediates is not None:
        intermediates["conv_features"] = feats.float().cpu()
    feats = interpolate_features(feats, frames)
    if intermediates is not None:
        intermediates["interpolated_features"] = feats.float().cpu()
    hidden = project_features(enc, feats, token_chunk)
    del feats, wave  # keep only what the transformer needs alive
    if intermediates is not None:
        intermediates["projected_features"] = hidden.float().cpu().clone()
    return encode_hidden(enc, hidden, token_chunk=token_chunk, intermediates=intermediates, callback=layer_cb)
