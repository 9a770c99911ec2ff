"""Loading the reference DiT fixtures (shared/fixtures/dit_*.safetensors) for the model tests."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from wanvideo.model import config_from_reference

NON_WEIGHT_PREFIXES = ("input.", "output.", "aux.", "debug.", "derived.")

# output name -> (context input, audio input), the four guidance calls of the official loop
CALLS = {
    "cond": ("input.context", "input.audio"),
    "drop_text": ("input.context_null", "input.audio"),
    "uncond": ("input.context_null", "input.audio_null"),
    "drop_audio": ("input.context", "input.audio_null"),
}


def load_dit_fixture(path):
    """(config dict, weights under official names, all tensors) of one DiT fixture file."""
    tensors = load_file(str(path))
    meta = safe_open(str(path), "pt").metadata()
    weights = {k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT_PREFIXES)}
    return config_from_reference(meta["config"]), weights, tensors


def load_animate_fixture(path):
    """(config dict as stored, weights under official names, all tensors) of one WanAnimate fixture file."""
    tensors = load_file(str(path))
    meta = safe_open(str(path), "pt").metadata()
    weights = {k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT_PREFIXES)}
    return json.loads(meta["config"]), weights, tensors


def load_official(module, weights):
    """Load official weights strictly, except the LIA blur-kernel buffers (constants we do not store)."""
    kernels = [k for k in weights if k.endswith(".kernel")]
    missing, unexpected = module.load_state_dict({k: v for k, v in weights.items() if k not in kernels}, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return module


def call_args(tensors, output_name):
    """Arguments of our batched forward for one of the fixture's official calls."""
    ctx_key, audio_key = CALLS[output_name]
    return dict(
        x=tensors["input.x"][None],
        t=tensors["input.t"],
        context=tensors[ctx_key][None],
        clip_fea=tensors["input.clip_fea"],
        y=tensors["input.y"],
        audio=tensors[audio_key],
        ref_target_masks=tensors["input.ref_target_masks"],
    )


# ----- writing the same weights in the layouts and precisions people have -------------------------------
# Sizes of the tiny config that weights cannot tell (a real 14B file needs none of these).
TINY_OVERRIDES = {"num_heads": 4, "text_len": 16, "audio_layers": 2, "audio_channels": 32}
PRECISIONS = ["fp32", "bf16", "fp16", "fp8_e4m3fn", "fp8_e5m2", "fp8_e4m3fn_scaled", "fp8_e4m3fn_scaled_new"]
LAYOUTS = ["original", "original_sharded", "comfyui", "comfyui_separate", "diffusers"]


def is_adapter_key(key):
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key or ".norm_x." in key


def to_precision(weights: dict, precision: str) -> dict:
    """Weights as a file of that precision holds them: fp8 files quantise every >=2-D weight
    (plain: a plain cast; scaled: per-tensor scale, ComfyUI's legacy `scale_weight` + `scaled_fp8`
    marker, or its newer `weight_scale` + `comfy_quant`), keeping 1-D tensors in bf16."""
    if precision in ("fp32", "bf16", "fp16"):
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        return {k: v.to(dtype) for k, v in weights.items()}
    fp8 = torch.float8_e5m2 if "e5m2" in precision else torch.float8_e4m3fn
    out = {}
    for k, v in weights.items():
        if v.dim() < 2 or k.endswith("modulation"):
            out[k] = v.to(torch.bfloat16)
            continue
        if "scaled" not in precision:
            out[k] = v.to(fp8)
            continue
        scale = (v.abs().max() / torch.finfo(fp8).max).float()
        out[k] = (v / scale).to(fp8)
        layer = k[: -len(".weight")]
        if precision.endswith("_new"):
            out[layer + ".weight_scale"] = scale
            out[layer + ".comfy_quant"] = torch.tensor(list(json.dumps({"format": "float8_e4m3fn"}).encode()),
                                                       dtype=torch.uint8)
        else:
            out[layer + ".scale_weight"] = scale
            out[layer + ".scale_input"] = torch.ones(())
    if "scaled" in precision and not precision.endswith("_new"):
        out["scaled_fp8"] = torch.empty(0, dtype=fp8)
    return out


def expected_weights(weights: dict, precision: str, dtype=torch.float32) -> dict:
    """What a loader must produce from a file written by `to_precision`, dequantised to `dtype`."""
    stored = to_precision(weights, precision)
    out = {}
    for k in weights:
        v = stored[k].float()
        layer = k[: -len(".weight")]
        for scale_key in (layer + ".scale_weight", layer + ".weight_scale"):
            if scale_key in stored and k.endswith(".weight"):
                v = v * stored[scale_key]
        out[k] = v.to(dtype)
    return out


def write_layout(weights: dict, layout: str, precision: str, root: Path) -> list:
    """Write `weights` (native names, Wan + InfiniteTalk) like a user's files; returns the paths to load."""
    root.mkdir(parents=True, exist_ok=True)
    wan = {k: v for k, v in weights.items() if not is_adapter_key(k)}
    adapter = {k: v for k, v in weights.items() if is_adapter_key(k)}
    adapter_file = root / "infinitetalk_single.safetensors"
    if layout == "original":
        path = root / "combined.safetensors"
        save_file(to_precision(weights, precision), str(path))
        return [path]
    if layout == "original_sharded":
        folder = root / "Wan2.1-I2V-14B-480P"
        folder.mkdir()
        stored = to_precision(wan, precision)
        names = sorted(stored)
        parts = [dict((k, stored[k]) for k in names[: len(names) // 2]), dict((k, stored[k]) for k in names[len(names) // 2:])]
        weight_map = {}
        for i, part in enumerate(parts, start=1):
            fname = f"diffusion_pytorch_model-0000{i}-of-00002.safetensors"
            save_file(part, str(folder / fname))
            weight_map.update({k: fname for k in part})
        (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
        (folder / "config.json").write_text(json.dumps({"_class_name": "WanModel", "model_type": "i2v", "dim": 64,
                                                        "num_heads": 4, "text_len": 16}))
        save_file(to_precision(adapter, precision), str(adapter_file))
        return [folder, adapter_file]
    if layout == "comfyui":
        path = root / "wan2.1_i2v_480p_14B_comfy.safetensors"
        save_file({"model.diffusion_model." + k: v for k, v in to_precision(weights, precision).items()}, str(path))
        return [path]
    if layout == "comfyui_separate":
        path = root / "wan2.1_i2v_480p_14B_comfy.safetensors"
        save_file({"model.diffusion_model." + k: v for k, v in to_precision(wan, precision).items()}, str(path))
        save_file({"diffusion_model." + k: v for k, v in to_precision(adapter, precision).items()}, str(adapter_file))
        return [path, adapter_file]
    if layout == "diffusers":
        from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

        folder = root / "Wan2.1-I2V-14B-480P-Diffusers" / "transformer"
        folder.mkdir(parents=True)
        stored = to_precision(wan, precision)
        scale_suffixes = (".scale_weight", ".weight_scale", ".scale_input", ".comfy_quant")
        weights_only = {k: v for k, v in stored.items() if not k.endswith(scale_suffixes) and k != "scaled_fp8"}
        converted = convert_wan_transformer_to_diffusers(dict(weights_only))
        # scales follow their layer's diffusers name (as diffusers' converter renames the layer)
        native_of = {}
        for k in weights_only:
            native_of[list(convert_wan_transformer_to_diffusers({k: torch.zeros(1)}))[0]] = k
        extra = {}
        for diff_key, native in native_of.items():
            layer = native[: -len(".weight")]
            for suffix in (".scale_weight", ".weight_scale", ".scale_input", ".comfy_quant"):
                if layer + suffix in stored and native.endswith(".weight"):
                    extra[diff_key[: -len(".weight")] + suffix] = stored[layer + suffix]
        converted.update(extra)
        if "scaled_fp8" in stored:
            converted["scaled_fp8"] = stored["scaled_fp8"]
        save_file(converted, str(folder / "diffusion_pytorch_model.safetensors"))
        (folder / "config.json").write_text(json.dumps({
            "_class_name": "WanTransformer3DModel", "num_attention_heads": 4, "attention_head_dim": 16,
            "in_channels": 36, "out_channels": 16, "text_dim": 32, "freq_dim": 32, "ffn_dim": 128, "num_layers": 2,
            "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "image_dim": 32,
            "added_kv_proj_dim": 64, "rope_max_seq_len": 1024}))
        save_file(to_precision(adapter, precision), str(adapter_file))
        return [folder.parent, adapter_file]
    raise ValueError(layout)
