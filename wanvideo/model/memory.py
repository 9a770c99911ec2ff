"""Memory a forward pass needs beyond the weights, for a host that must make room before a window runs.

An estimate, on the generous side: the residual stream in float32 and, per token, the normalised copy,
q/k/v, the attention output and the FFN's hidden activations (and its GELU) in the compute dtype, all
alive at once in the largest block. Text/CLIP/audio context tokens are few next to a window's video
tokens and are covered by the margin.
"""
from __future__ import annotations

import math

import torch

from .config import normalize_config


def video_tokens(config: dict, latent_shape) -> int:
    """Tokens of one latent [.., frames, height, width] after patching."""
    cfg = normalize_config(config)
    f, h, w = (int(v) for v in tuple(latent_shape)[-3:])
    pf, ph, pw = cfg["patch_size"]
    return math.ceil(f / pf) * math.ceil(h / ph) * math.ceil(w / pw)


def inference_bytes(config: dict, latent_shape, dtype=torch.bfloat16, batch: int = 1) -> int:
    """Estimated peak bytes of activations for one forward of `batch` latents of `latent_shape`."""
    cfg = normalize_config(config)
    tokens = video_tokens(cfg, latent_shape) * int(batch)
    item = torch.empty((), dtype=dtype).element_size()
    dim, ffn = cfg["dim"], cfg["ffn_dim"]
    per_token = dim * 4 + dim * item * 5 + ffn * item * 2
    return int(tokens * per_token)
