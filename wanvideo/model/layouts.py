"""Checkpoint layouts: which files make up a checkpoint, and key names -> native (reference) names.

Layouts handled: the original release (native names, possibly sharded with an index json),
ComfyUI repacks (`model.diffusion_model.` prefix; also `diffusion_model.`), and diffusers
(`WanTransformer3DModel` names, folder with `config.json` and shards). The diffusers names
are the inverse of diffusers' own converter (`convert_wan_transformer_to_diffusers` in
diffusers/loaders/single_file_utils.py); InfiniteTalk has no diffusers naming, so its keys
pass through unchanged in every layout.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ModelFileError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".gguf")

NATIVE_ROOTS = ("patch_embedding.", "text_embedding.", "time_embedding.", "time_projection.", "blocks.", "head.",
                "img_emb.", "audio_proj.", "pose_patch_embedding.", "motion_encoder.", "face_adapter.", "face_encoder.")
DIFFUSERS_ROOTS = ("condition_embedder.", "proj_out.", "scale_shift_table", "blocks.", "patch_embedding.")
PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.", "model.", "module.")

# Keys that describe quantisation but are not weights (ComfyUI scaled fp8 markers / input scales).
NON_WEIGHT_KEY = re.compile(r"(^|\.)(scaled_fp8|comfy_quant|scale_input|input_scale)$")
# WanAnimate's LIA blur kernels: constants (rebuilt by the model), stored by some files and not by others.
LIA_BLUR_KERNEL = re.compile(r"^motion_encoder\..*\.kernel$")
# Per-layer fp8 scales: ComfyUI's legacy `scale_weight` and its newer `weight_scale`.
SCALE_SUFFIXES = (".scale_weight", ".weight_scale")

_DIFFUSERS_TOP = (
    ("condition_embedder.time_embedder.linear_1.", "time_embedding.0."),
    ("condition_embedder.time_embedder.linear_2.", "time_embedding.2."),
    ("condition_embedder.text_embedder.linear_1.", "text_embedding.0."),
    ("condition_embedder.text_embedder.linear_2.", "text_embedding.2."),
    ("condition_embedder.time_proj.", "time_projection.1."),
    ("condition_embedder.image_embedder.norm1.", "img_emb.proj.0."),
    ("condition_embedder.image_embedder.ff.net.0.proj.", "img_emb.proj.1."),
    ("condition_embedder.image_embedder.ff.net.2.", "img_emb.proj.3."),
    ("condition_embedder.image_embedder.norm2.", "img_emb.proj.4."),
    ("proj_out.", "head.head."),
)
_DIFFUSERS_BLOCK = (
    ("attn1.to_q.", "self_attn.q."), ("attn1.to_k.", "self_attn.k."), ("attn1.to_v.", "self_attn.v."),
    ("attn1.to_out.0.", "self_attn.o."), ("attn1.norm_q.", "self_attn.norm_q."), ("attn1.norm_k.", "self_attn.norm_k."),
    ("attn2.to_q.", "cross_attn.q."), ("attn2.to_k.", "cross_attn.k."), ("attn2.to_v.", "cross_attn.v."),
    ("attn2.to_out.0.", "cross_attn.o."), ("attn2.norm_q.", "cross_attn.norm_q."), ("attn2.norm_k.", "cross_attn.norm_k."),
    ("attn2.add_k_proj.", "cross_attn.k_img."), ("attn2.add_v_proj.", "cross_attn.v_img."),
    ("attn2.norm_added_k.", "cross_attn.norm_k_img."),
    ("ffn.net.0.proj.", "ffn.0."), ("ffn.net.2.", "ffn.2."),
    ("norm2.", "norm3."),  # diffusers' norm2 is the (affine) cross-attention norm, the reference's norm3
)
_DIFFUSERS_IGNORED = re.compile(r"^blocks\.\d+\.attn2\.norm_added_q\.")  # diffusers ignores it on load too
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.*)$")


def _strip_prefix(key: str) -> tuple[str, str]:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            rest = key[len(prefix):]
            if rest.startswith(NATIVE_ROOTS + DIFFUSERS_ROOTS):
                return prefix, rest
    return "", key


def is_diffusers(keys) -> bool:
    return any(k.startswith("condition_embedder.") or ".attn1." in k or k == "scale_shift_table" for k in keys)


def diffusers_to_native(key: str) -> str | None:
    """Native name of a diffusers WanTransformer3DModel key (None for keys diffusers itself ignores)."""
    if _DIFFUSERS_IGNORED.match(key):
        return None
    if key == "scale_shift_table":
        return "head.modulation"
    for old, new in _DIFFUSERS_TOP:
        if key.startswith(old):
            return new + key[len(old):]
    m = _BLOCK.match(key)
    if m:
        idx, rest = m.groups()
        if rest == "scale_shift_table":
            return f"blocks.{idx}.modulation"
        for old, new in _DIFFUSERS_BLOCK:
            if rest.startswith(old):
                return f"blocks.{idx}.{new}{rest[len(old):]}"
    return key


class KeyMap:
    """Native names of one file's tensors, and which source keys hold fp8 scales."""

    def __init__(self, keys):
        keys = list(keys)
        stripped = [_strip_prefix(k) for k in keys]
        prefixes = {p for p, _ in stripped if p}
        self.prefix = max(prefixes, key=lambda p: sum(1 for q, _ in stripped if q == p)) if prefixes else ""
        rest_keys = [r for _, r in stripped]
        self.diffusers = is_diffusers(rest_keys)
        self.layout = "diffusers" if self.diffusers else ("comfyui" if self.prefix == "model.diffusion_model." else
                                                         ("prefixed" if self.prefix else "original"))
        self.weights: dict[str, str] = {}  # native name -> source key
        self.scales: dict[str, str] = {}  # native weight name -> source key of its scale
        self.ignored: list[str] = []
        for key, (_, rest) in zip(keys, stripped, strict=False):
            if NON_WEIGHT_KEY.search(rest) or LIA_BLUR_KERNEL.match(rest):
                self.ignored.append(key)
                continue
            scale_suffix = next((s for s in SCALE_SUFFIXES if rest.endswith(s)), None)
            target = rest[: -len(scale_suffix)] + ".weight" if scale_suffix else rest
            if self.diffusers:
                target = diffusers_to_native(target)
                if target is None:
                    self.ignored.append(key)
                    continue
            if scale_suffix:
                self.scales[target] = key
            else:
                if target in self.weights:
                    raise ModelFileError(f"two tensors map to {target}: {self.weights[target]} and {key}")
                self.weights[target] = key


def _index_shards(index_path: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text())
        names = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{index_path.name} is not a valid shard index ({exc})") from None
    shards = [index_path.parent / n for n in names]
    missing = [s.name for s in shards if not s.exists()]
    if missing:
        raise ModelFileError(
            f"{index_path.name} lists shards that are missing: {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}: download every part of the model"
        )
    return shards


def resolve_files(path) -> tuple[list[Path], dict | None]:
    """Weight files making up one checkpoint given as a file, a shard index json or a folder, plus its config.json."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model path not found: {path}")
    if path.is_file():
        if path.name.endswith(".index.json"):
            return _index_shards(path), _read_config(path.parent / "config.json")
        if path.suffix.lower() == ".json":
            raise ModelFileError(f"{path.name} is a json file, not weights: pick the .safetensors file (or its folder)")
        return [path], None
    if (path / "transformer").is_dir():  # a diffusers pipeline folder
        path = path / "transformer"
    config = _read_config(path / "config.json")
    indexes = sorted(path.glob("*.safetensors.index.json")) or sorted(path.glob("*.index.json"))
    if indexes:
        return _index_shards(indexes[0]), config
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
    if not files:
        raise ModelFileError(f"folder {path} holds no weight files (.safetensors)")
    return files, config


def _read_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not valid json ({exc})") from None


def config_from_json(cfg: dict) -> dict:
    """Our config names from a Wan `config.json` (original release) or a diffusers transformer config."""
    if "num_attention_heads" in cfg:  # diffusers WanTransformer3DModel
        out = {
            "dim": cfg["num_attention_heads"] * cfg.get("attention_head_dim", 128),
            "num_heads": cfg["num_attention_heads"],
        }
        for ours, theirs in (("in_dim", "in_channels"), ("out_dim", "out_channels"), ("text_dim", "text_dim"),
                             ("freq_dim", "freq_dim"), ("ffn_dim", "ffn_dim"), ("num_layers", "num_layers"),
                             ("eps", "eps"), ("cross_attn_norm", "cross_attn_norm"), ("patch_size", "patch_size")):
            if cfg.get(theirs) is not None:
                out[ours] = cfg[theirs]
        if cfg.get("image_dim"):
            out["clip_dim"] = cfg["image_dim"]
        if "qk_norm" in cfg:
            out["qk_norm"] = bool(cfg["qk_norm"])
        return out
    keys = ("model_type", "patch_size", "text_len", "in_dim", "dim", "ffn_dim", "freq_dim", "text_dim", "out_dim",
            "num_heads", "num_layers", "qk_norm", "cross_attn_norm", "eps")
    out = {k: cfg[k] for k in keys if k in cfg}
    if cfg.get("_class_name") == "WanAnimateModel" or "motion_encoder_dim" in cfg:  # the official Animate release
        out["model_type"] = "animate"
        out["audio_adapter"] = False
        if "motion_encoder_dim" in cfg:
            out["motion_encoder_dim"] = cfg["motion_encoder_dim"]
    return out
