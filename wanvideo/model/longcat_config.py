"""LongCat-Video-Avatar DiT configuration: the official constructor names and defaults.

A checkpoint's `config.json` (diffusers style) is passed as is; keys that only pick the official attention
kernels or the context-parallel split (`enable_flashattn2`, `enable_bsa`, `cp_split_hw`, ...) are accepted and
ignored here, because attention runs through our backends instead.
"""
from __future__ import annotations

from ..errors import InputError

MODEL_TYPE = "longcat_avatar"

# Constructor defaults of the official LongCatVideoAvatarTransformer3DModel.
DEFAULTS = {
    "in_channels": 16,
    "out_channels": 16,
    "hidden_size": 4096,
    "depth": 48,
    "num_heads": 32,
    "caption_channels": 4096,
    "mlp_ratio": 4,
    "adaln_tembed_dim": 512,
    "frequency_embedding_size": 256,
    "patch_size": (1, 2, 2),
    "text_tokens_zero_pad": False,
    "audio_window": 5,
    "audio_block": 12,
    "audio_channel": 768,
    "intermediate_dim": 512,
    "output_dim": 768,
    "context_tokens": 32,
    "vae_scale": 4,
    "audio_prenorm": False,
    "class_range": 24,
    "class_interval": 4,
}

# Keys of the official config that choose kernels / parallel layout: no effect on the numbers.
IGNORED = {
    "enable_flashattn3", "enable_flashattn2", "enable_xformers", "enable_bsa", "bsa_params", "cp_split_hw",
    "model_type", "_class_name", "_diffusers_version", "_name_or_path",
}


def is_longcat(config) -> bool:
    return isinstance(config, dict) and config.get("model_type") == MODEL_TYPE


def longcat_config(config: dict) -> dict:
    """The full constructor config: official defaults overlaid with `config`; unknown keys are an error."""
    unknown = sorted(k for k in config if k not in DEFAULTS and k not in IGNORED)
    if unknown:
        raise InputError(
            f"LongCat-Video-Avatar config has unknown keys {unknown}: pass the checkpoint's config.json "
            f"(keys {sorted(DEFAULTS)})"
        )
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in config.items() if k in DEFAULTS})
    cfg["patch_size"] = tuple(int(p) for p in cfg["patch_size"])
    cfg["model_type"] = MODEL_TYPE
    if cfg["patch_size"][0] != 1:
        raise InputError("LongCat-Video-Avatar needs a temporal patch size of 1 (patch_size[0] == 1)")
    if cfg["hidden_size"] % cfg["num_heads"]:
        raise InputError("LongCat-Video-Avatar config: hidden_size must be divisible by num_heads")
    if (cfg["hidden_size"] // cfg["num_heads"]) % 8:
        raise InputError("LongCat-Video-Avatar config: the head size must be a multiple of 8 for its 3-D RoPE")
    return cfg


def tiny_longcat_config(**overrides) -> dict:
    """The fixtures' tiny sizes (2 blocks of 64 channels) for tests and the embedded CLI demo."""
    cfg = {
        "model_type": MODEL_TYPE, "in_channels": 16, "out_channels": 16, "hidden_size": 64, "depth": 2,
        "num_heads": 2, "caption_channels": 32, "mlp_ratio": 4, "adaln_tembed_dim": 32,
        "frequency_embedding_size": 256, "patch_size": [1, 2, 2], "audio_window": 5, "audio_block": 5,
        "audio_channel": 16, "intermediate_dim": 32, "output_dim": 32, "context_tokens": 4, "vae_scale": 4,
        "audio_prenorm": True, "text_tokens_zero_pad": False, "class_range": 24, "class_interval": 4,
    }
    cfg.update(overrides)
    return cfg
