"""The straightforward whole-clip computation, end to end through transformers' own modules.

This is the reference's path written plainly (conv encoder over the entire
waveform in one call, interpolation, projection, transformers' encoder layers
with their own attention). Its memory grows with the clip (the whole conv
activations, and with eager attention a tokens x tokens matrix per head), so
the pack never uses it for real work: it is the oracle the chunked path
(`features.embed_waveform16k`) is tested against and the benchmark's baseline.
"""
from __future__ import annotations

import torch

from .features import interpolate_features, num_video_frames, prepare_model_input


def set_attention_implementation(model, name: str) -> None:
    """Best effort, on transformers 4.5x and 5.x alike ("eager" or "sdpa"); never raises."""
    setter = getattr(model, "set_attn_implementation", None)
    if callable(setter):
        try:
            setter(name)
            return
        except Exception:  # noqa: BLE001 - fall back to the config attribute
            pass
    try:
        model.config._attn_implementation = name
    except Exception:  # noqa: BLE001 - an older/other config object: keep its own attention, the result is the same
        pass


def _layer_output(result):
    return result[0] if isinstance(result, tuple) else result


@torch.no_grad()
def embed_whole_clip(enc, wave16k, fps: float = 25.0, attention: str = "eager") -> torch.Tensor:
    """`[frames, layers, channels]` float32, computed on the whole clip at once (see module doc)."""
    model = enc.model
    set_attention_implementation(model, attention)
    wave = prepare_model_input(enc, wave16k).to(enc.device, enc.dtype)
    frames = num_video_frames(wave.numel(), fps, enc.sample_rate)
    feats = model.feature_extractor(wave[None])  # [1, C, n]
    feats = interpolate_features(feats[0].T, frames)[None]
    hidden = model.feature_projection(feats)[0]
    encoder = model.encoder
    hidden = hidden + encoder.pos_conv_embed(hidden)
    stable = bool(enc.config.do_stable_layer_norm)
    if not stable:
        hidden = encoder.layer_norm(hidden)
    states = []
    for layer in encoder.layers:
        hidden = _layer_output(layer(hidden, attention_mask=None))
        states.append(hidden)
    if stable:
        states[-1] = encoder.layer_norm(states[-1])
    return torch.stack(states, dim=2)[0].float().cpu()
