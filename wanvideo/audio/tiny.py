"""A tiny random-weight wav2vec2 (the reference fixture's sizes) for tests, benchmarks and demos."""
from __future__ import annotations

import math

import torch

from .encoder import Wav2VecEncoder, build_transformers_model

TINY_CONFIG = {
    "model_type": "wav2vec2",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "conv_dim": [16] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
    "layer_norm_eps": 1e-5,
    "mask_time_prob": 0.05,
}


def random_weights(model: torch.nn.Module, seed: int = 0) -> dict:
    """Random values for every entry of `model`'s state dict, in registration order from one generator.

    >=2-D weights ~ N(0, 1/fan_in); weight-norm magnitudes ~ U[0.5, 1.5);
    1-D `*.weight` (norm scales) ~ U[0.6, 1.4); other 1-D tensors ~ N(0, 0.1^2).
    Nothing is 0 or 1, so every weight influences the output.
    """
    gen = torch.Generator().manual_seed(int(seed))
    sd = {}
    for name, ref in model.state_dict().items():
        shape = tuple(ref.shape)
        # in-place arithmetic: no second copy of the (possibly real-size) weights
        if name.endswith("original0") or name.endswith("weight_g"):
            t = torch.rand(shape, generator=gen).add_(0.5)
        elif len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=gen).div_(math.sqrt(fan_in))
        elif name.endswith(".weight"):
            t = torch.rand(shape, generator=gen).mul_(0.8).add_(0.6)
        elif name == "masked_spec_embed":
            t = torch.rand(shape, generator=gen)
        else:
            t = torch.randn(shape, generator=gen).mul_(0.1)
        sd[name] = t
    return sd


def random_wav2vec2(config: dict, seed: int = 0, dtype=torch.float32, device="cpu") -> Wav2VecEncoder:
    """A Wav2VecEncoder of any wav2vec2 `config` with `random_weights` (e.g. real base size for benchmarks)."""
    model = build_transformers_model(config)
    model.load_state_dict(random_weights(model, seed), strict=True, assign=True)
    model.to(device=device, dtype=dtype)
    return Wav2VecEncoder(model, do_normalize=False, source=f"random weights (seed {seed})")


def tiny_wav2vec2(seed: int = 0, **overrides) -> Wav2VecEncoder:
    """The reference fixture's tiny wav2vec2 (hidden 32, 2 layers, conv 7x16) with random weights, fp32 on CPU."""
    return random_wav2vec2({**TINY_CONFIG, **overrides}, seed=seed)
