"""Model configuration: the reference constructor names, defaults, presets and validation.

A config is a plain dict using the names of Wan's `config.json` and of the
InfiniteTalk `WanModel` constructor, plus three sizes the reference hard-codes
(`clip_dim`, `audio_layers`, `audio_channels`) and `audio_adapter` (False = plain
Wan2.1 I2V without the InfiniteTalk weights).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from ..errors import InputError

# Defaults are those of the real model (Wan2.1 I2V 14B + InfiniteTalk), so a
# config only has to name what differs.
DEFAULTS = {
    "model_type": "i2v",
    "patch_size": (1, 2, 2),
    "text_len": 512,
    "in_dim": 36,
    "dim": 5120,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "text_dim": 4096,
    "out_dim": 16,
    "num_heads": 40,
    "num_layers": 40,
    "window_size": (-1, -1),
    "qk_norm": True,
    "cross_attn_norm": True,
    "eps": 1e-6,
    # InfiniteTalk adapter
    "audio_window": 5,
    "intermediate_dim": 512,
    "output_dim": 768,
    "context_tokens": 32,
    "vae_scale": 4,
    "norm_input_visual": True,
    "norm_output_audio": True,
    # sizes the reference hard-codes
    "clip_dim": 1280,
    "audio_layers": 12,
    "audio_channels": 768,
    # False: plain Wan2.1 I2V (no audio_proj / audio_cross_attn / norm_x weights)
    "audio_adapter": True,
}

# Accepted for compatibility with the reference constructor / diffusers configs, not used.
IGNORED_KEYS = {"weight_init", "_class_name", "_diffusers_version", "_name_or_path"}

# The real model: Wan2.1 I2V 14B (480p and 720p share the sizes) + InfiniteTalk.
WAN21_I2V_14B = dict(DEFAULTS)

# The reference fixtures' tiny configuration (shared/fixtures/README.md), for tests and demos.
TINY = dict(
    DEFAULTS,
    text_len=16,
    dim=64,
    ffn_dim=128,
    freq_dim=32,
    text_dim=32,
    num_heads=4,
    num_layers=2,
    intermediate_dim=32,
    output_dim=16,
    context_tokens=4,
    clip_dim=32,
    audio_layers=2,
    audio_channels=32,
)

# WanAnimate (Wan2.2-Animate-14B): the same Wan2.1 blocks plus the pose embedding and the face path.
# LIA motion-encoder channels per feature-map size (the released model's table).
LIA_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
ANIMATE_DEFAULTS = {
    "motion_encoder_dim": 512,  # width of the LIA motion vector (rows of its Direction matrix)
    "face_encoder_width": 1024,  # FaceEncoder's hard-coded conv width
    "face_encoder_num_heads": 4,  # FaceEncoder's token streams per frame (hard-coded 4 in the reference)
    "motion_encoder": {"size": 512, "style_dim": 512, "motion_dim": 20, "channels": dict(LIA_CHANNELS)},
    "face_block_every": 5,  # a face cross-attention block after blocks 0, 5, 10, ...
    "use_img_emb": True,
    "use_context_parallel": False,  # the reference's sequence-parallel switch; accepted, not used here
}
WAN22_ANIMATE_14B = dict(DEFAULTS, model_type="animate", audio_adapter=False, **ANIMATE_DEFAULTS)

# Tiny WanAnimate config (the fixture animate_a's sizes): for tests, demos and the CLI's default.
TINY_ANIMATE = dict(
    WAN22_ANIMATE_14B,
    text_len=16, dim=64, ffn_dim=128, freq_dim=32, text_dim=32, num_heads=4, num_layers=5, clip_dim=32,
    face_encoder_width=8,
    motion_encoder={"size": 32, "style_dim": 16, "motion_dim": 20, "channels": {32: 8, 16: 12, 8: 16, 4: 16}},
)

PRESETS = {"wan2.1-i2v-14b": WAN21_I2V_14B, "tiny": TINY, "wan2.2-animate-14b": WAN22_ANIMATE_14B,
           "tiny-animate": TINY_ANIMATE}

# The number of CLIP image tokens Wan's image cross-attention expects (hard-coded in the reference).
CLIP_TOKENS = 257
# Table length of the reference's RoPE: latent grids larger than this on any axis are out of range.
ROPE_MAX_POSITIONS = 1024


def preset(name: str) -> dict:
    """A copy of a named preset config ('wan2.1-i2v-14b' or 'tiny')."""
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise InputError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}") from None


def tiny_config(**overrides) -> dict:
    """The fixture-sized tiny config (dim 64, 2 layers, 4 heads, ...), optionally changed."""
    cfg = preset("tiny")
    cfg.update(overrides)
    return normalize_config(cfg)


def is_animate(config: dict) -> bool:
    return isinstance(config, dict) and config.get("model_type") == "animate"


def normalize_config(config: dict) -> dict:
    """Fill defaults, check values, return a new dict with tuples where the reference uses them."""
    if not isinstance(config, dict):
        raise InputError(f"model config must be a dict, got {type(config).__name__}")
    defaults = WAN22_ANIMATE_14B if is_animate(config) else DEFAULTS
    unknown = set(config) - set(defaults) - IGNORED_KEYS
    if unknown:
        hint = " (those are WanAnimate sizes: set model_type='animate')" if unknown & set(ANIMATE_DEFAULTS) else ""
        raise InputError(f"unknown model config keys {sorted(unknown)}{hint}; known keys: {sorted(defaults)}")
    cfg: dict[str, Any] = copy.deepcopy(defaults)
    cfg.update({k: copy.deepcopy(v) for k, v in config.items() if k not in IGNORED_KEYS})
    cfg["patch_size"] = tuple(int(p) for p in cfg["patch_size"])
    cfg["window_size"] = tuple(int(w) for w in cfg["window_size"])
    for key in ("text_len", "in_dim", "dim", "ffn_dim", "freq_dim", "text_dim", "out_dim", "num_heads",
                "num_layers", "audio_window", "intermediate_dim", "output_dim", "context_tokens", "vae_scale",
                "clip_dim", "audio_layers", "audio_channels"):
        cfg[key] = int(cfg[key])
        if cfg[key] <= 0:
            raise InputError(f"model config {key} must be positive, got {cfg[key]}")
    cfg["eps"] = float(cfg["eps"])
    for key in ("qk_norm", "cross_attn_norm", "norm_input_visual", "norm_output_audio", "audio_adapter"):
        cfg[key] = bool(cfg[key])
    if cfg["model_type"] == "animate":
        _normalize_animate(cfg)
    elif cfg["model_type"] != "i2v":
        raise InputError(
            f"model_type {cfg['model_type']!r}: InfiniteTalk needs the Wan2.1 image-to-video model ('i2v'); "
            "WanAnimate is 'animate'"
        )
    if cfg["window_size"] != (-1, -1):
        raise InputError("window_size other than (-1, -1) (local attention) is not supported; Wan2.1 uses global attention")
    if len(cfg["patch_size"]) != 3:
        raise InputError(f"patch_size must have 3 entries (frames, height, width), got {cfg['patch_size']}")
    if cfg["dim"] % cfg["num_heads"]:
        raise InputError(f"dim {cfg['dim']} is not divisible by num_heads {cfg['num_heads']}")
    head_dim = cfg["dim"] // cfg["num_heads"]
    if head_dim % 2:
        raise InputError(f"head dim {head_dim} (dim / num_heads) must be even for the RoPE")
    if cfg["freq_dim"] % 2:
        raise InputError(f"freq_dim must be even, got {cfg['freq_dim']}")
    if cfg["vae_scale"] < 2:
        raise InputError(f"vae_scale (video frames per latent frame) must be at least 2, got {cfg['vae_scale']}")
    return cfg


def _normalize_animate(cfg: dict) -> None:
    """WanAnimate's extra sizes: positive ints, a power-of-two face size with a channel for every LIA level."""
    if cfg["audio_adapter"]:
        raise InputError("WanAnimate has no InfiniteTalk audio adapter: audio_adapter must be False for model_type 'animate'")
    for key in ("motion_encoder_dim", "face_encoder_width", "face_encoder_num_heads", "face_block_every"):
        cfg[key] = int(cfg[key])
        if cfg[key] <= 0:
            raise InputError(f"model config {key} must be positive, got {cfg[key]}")
    if not cfg["use_img_emb"]:
        raise InputError("use_img_emb=False (no CLIP image branch) is not supported: Wan2.2-Animate uses the CLIP image")
    cfg["use_img_emb"] = True
    cfg["use_context_parallel"] = bool(cfg["use_context_parallel"])
    given = dict(cfg["motion_encoder"] or {})
    unknown = set(given) - {"size", "style_dim", "motion_dim", "channels"}
    if unknown:
        raise InputError(f"unknown motion_encoder keys {sorted(unknown)}; known: size, style_dim, motion_dim, channels")
    motion = dict(ANIMATE_DEFAULTS["motion_encoder"])
    motion.update(given)
    channels = dict(LIA_CHANNELS)
    channels.update({int(k): int(v) for k, v in (given.get("channels") or {}).items()})
    size = int(motion["size"])
    if size < 4 or size & (size - 1):
        raise InputError(f"motion_encoder size (face crop size) must be a power of two >= 4, got {size}")
    levels = [size >> i for i in range(size.bit_length()) if size >> i >= 4]
    missing = [s for s in levels if s not in channels]
    if missing:
        raise InputError(f"motion_encoder channels has no entry for feature-map sizes {missing}")
    motion["size"] = size
    motion["style_dim"] = int(motion["style_dim"])
    motion["motion_dim"] = int(motion["motion_dim"])
    motion["channels"] = {s: channels[s] for s in levels}
    cfg["motion_encoder"] = motion


def config_from_reference(reference: dict | str) -> dict:
    """Config from a reference fixture's `config` metadata (JSON or dict).

    The fixtures give the official constructor's arguments under `model_kwargs`,
    plus the smaller `clip_dim` and `audio_proj` (`blocks`, `channels`) they substituted.
    """
    if isinstance(reference, str):
        reference = dict(json.loads(reference))
    cfg = dict(reference.get("model_kwargs", reference))
    if "clip_dim" in reference:
        cfg["clip_dim"] = reference["clip_dim"]
    if "motion_encoder" in reference or "motion_encoder_dim" in cfg:  # a WanAnimate fixture
        cfg["model_type"] = "animate"
        cfg["audio_adapter"] = False
        for key in ("face_encoder_width", "face_encoder_num_heads", "motion_encoder"):
            if key in reference:
                cfg[key] = reference[key]
    audio = reference.get("audio_proj") or {}
    if "blocks" in audio:
        cfg["audio_layers"] = audio["blocks"]
    if "channels" in audio:
        cfg["audio_channels"] = audio["channels"]
    return normalize_config(cfg)


def audio_frames_for(latent_frames: int, config: dict) -> int:
    """Video frames of audio the adapter needs for `latent_frames` latent frames (1 + vae_scale*(T-1))."""
    return 1 + config["vae_scale"] * (latent_frames - 1)
