"""Loading LongCat-Video-Avatar weights: the official `base_model` folder (config.json + sharded safetensors),
single-file repacks (ComfyUI-prefixed, bf16/fp16, fp8 with or without scales, the official INT8
`weight_int8`/`weight_scale` layout), and the official distillation LoRA (`lora/dmd_lora.safetensors`).

Every tensor is read from its memory-mapped file and cast once; fp8 weights may stay fp8 in memory
(`keep_fp8`) and are dequantised per layer on the fly by our Linear.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..torch_inputs import parse_dtype
from .layouts import resolve_files
from .longcat_config import MODEL_TYPE
from .longcat_dit import LongCatAvatarModel
from .quant.fp8 import fp8_dtype, is_fp8, quantize_fp8
from .weight_files import open_weight_file

_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.", "model.")
_SCALE_SUFFIXES = (".scale_weight", ".weight_scale")
_IGNORED_SUFFIXES = (".scale_input", ".input_scale", ".comfy_quant")
_LORA_PREFIX, _LORA_HYPHEN = "lora___lorahyphen___", "___lorahyphen___"


def _native(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def read_longcat_weights(path_or_paths) -> tuple[dict, dict, dict]:
    """(name -> (source, key), name -> (source, scale key), config.json or {}) under official names."""
    paths = path_or_paths if isinstance(path_or_paths, (list, tuple)) else [path_or_paths]
    entries, scales, config = {}, {}, {}
    for path in paths:
        files, json_config = resolve_files(path)
        config.update(json_config or {})
        for file in files:
            if Path(file).suffix.lower() == ".gguf":
                raise ModelFileError(
                    f"{Path(file).name}: GGUF files of LongCat-Video-Avatar are not supported; use the official "
                    "safetensors (bf16), an fp8 repack or the official INT8 folder"
                )
            source = open_weight_file(file)
            meta_config = getattr(source, "metadata", {}).get("config")
            if meta_config and not config:
                parsed = json.loads(meta_config)
                config.update(parsed.get("model_kwargs", parsed))
            for key in source.keys():
                name = _native(key)
                if name.endswith(_IGNORED_SUFFIXES) or name.split(".")[0] in ("input", "output", "debug", "aux"):
                    continue
                if name.endswith(".weight_int8"):
                    entries[name[: -len("_int8")]] = (source, key)
                    continue
                scale = next((s for s in _SCALE_SUFFIXES if name.endswith(s)), None)
                if scale:
                    scales[name[: -len(scale)] + ".weight"] = (source, key)
                    continue
                entries[name] = (source, key)
    return entries, scales, config


def _stored(name, entries, scales, dtype, keep_fp8, keep_int8):
    source, key = entries[name]
    tensor = source.get(key)
    scale = scales.get(name)
    scale = None if scale is None else scale[0].get(scale[1]).float()
    if tensor.dtype == torch.int8:  # official INT8: per-output-channel symmetric scale
        if scale is None:
            raise ModelFileError(f"{name}: an INT8 weight without its weight_scale: the file is incomplete")
        if keep_int8 and tensor.dim() == 2:  # kept as stored (half the memory of bf16), dequantised per layer
            return tensor, scale
        return (tensor.float() * scale.reshape(-1, *[1] * (tensor.dim() - 1))).to(dtype), None
    if is_fp8(tensor.dtype):
        if keep_fp8 and tensor.dim() == 2:
            return tensor, scale
        value = tensor.float()
        if scale is not None:
            value = value * (scale.reshape(()) if scale.numel() == 1 else scale.reshape(-1, 1))
        return value.to(dtype), None
    if not tensor.is_floating_point():
        raise ModelFileError(f"{name}: unsupported tensor type {tensor.dtype} in a LongCat-Video-Avatar file")
    return tensor.to(dtype), None


def infer_longcat_config(entries: dict) -> dict:
    """Sizes read from the weights' shapes, for single-file repacks that come without config.json.

    `text_tokens_zero_pad` leaves no trace in the weights: the official default (False) is assumed.
    """
    def shape(name):
        if name not in entries:
            raise ModelFileError(f"not a LongCat-Video-Avatar checkpoint: no {name}")
        source, key = entries[name]
        return tuple(source.shape(key))

    hidden, in_channels = shape("x_embedder.proj.weight")[:2]
    depth = 1 + max(int(k.split(".")[1]) for k in entries if k.startswith("blocks."))
    intermediate, proj1_in = shape("audio_proj.proj1.weight")
    output_dim = shape("blocks.0.audio_cross_attn.kv_linear.weight")[1]
    window = 5
    per_tap = proj1_in // window
    # only the product feeds the projection; the split is what the audio features must look like:
    # v1.0 wav2vec2 (12 layers x 768), else v1.5 Whisper (5 groups x width)
    block, channel = (12, 768) if per_tap == 12 * 768 else (5, per_tap // 5)
    return {
        "in_channels": in_channels, "out_channels": shape("final_layer.linear.weight")[0] // 4, "hidden_size": hidden,
        "depth": depth, "num_heads": max(1, hidden // 128), "caption_channels": shape("y_embedder.y_proj.0.weight")[1],
        "adaln_tembed_dim": shape("t_embedder.mlp.0.weight")[0],
        "frequency_embedding_size": shape("t_embedder.mlp.0.weight")[1], "audio_window": window,
        "audio_block": block, "audio_channel": channel, "intermediate_dim": intermediate, "output_dim": output_dim,
        "context_tokens": shape("audio_proj.proj3.weight")[0] // output_dim,
        "audio_prenorm": "blocks.0.pre_audio_crs_attn_norm.weight" in entries,
    }


def load_longcat_model(path_or_paths, config: dict | None = None, dtype=torch.bfloat16, device="cpu",
                       keep_fp8: bool = False, lora=None, lora_strength: float = 1.0, quantize: str | None = None,
                       initial_device=None) -> LongCatAvatarModel:
    """The avatar DiT from the official files (folder, shard index, single file or several files).

    `config` overrides the folder's config.json (a single-file repack carries none: its sizes are read from the
    weights). `lora`: the distillation LoRA (path or state dict) merged at `lora_strength` before any fp8
    quantization. `quantize` ('fp8_e4m3fn' / 'fp8_e5m2'): the blocks' Linear weights stored in fp8 with a
    per-tensor scale. `device` computes; the weights are placed on `initial_device` (default: `device`).
    """
    dtype = parse_dtype(dtype, "LongCat precision")
    entries, scales, file_config = read_longcat_weights(path_or_paths)
    cfg = dict(file_config) if file_config else infer_longcat_config(entries)
    cfg.update(config or {})
    cfg["model_type"] = MODEL_TYPE
    model = LongCatAvatarModel(cfg, dtype=dtype, device="meta")
    model.main_device = torch.device(device)
    place = torch.device(initial_device or device)
    slots = dict(model.named_parameters())
    missing = sorted(set(slots) - set(entries))
    extra = sorted(set(entries) - set(slots))
    if missing or extra:
        hint = ("this is not a LongCat-Video-Avatar checkpoint, or its config.json does not match it "
                "(depth, audio_block/audio_channel, audio_prenorm)")
        raise ModelFileError(f"LongCat-Video-Avatar weights: missing {missing[:3]} extra {extra[:3]}: {hint}")
    modules = dict(model.named_modules())
    for name, param in slots.items():
        # a LoRA is merged into the weights: INT8 ones are dequantised first (fp8 ones are re-quantised by it)
        value, scale = _stored(name, entries, scales, dtype, keep_fp8, keep_fp8 and lora is None)
        if tuple(value.shape) != tuple(param.shape):
            raise ModelFileError(f"{name}: shape {tuple(value.shape)} in the file, {tuple(param.shape)} in the model "
                                 "built from config.json: the config does not match these weights")
        owner, attr = name.rsplit(".", 1)
        modules[owner]._parameters[attr] = torch.nn.Parameter(value.to(place), requires_grad=False)
        if scale is not None:
            modules[owner].weight_scale = scale.to(place)
    if lora is not None:
        apply_longcat_lora(model, lora, lora_strength)
    if quantize:
        _quantize_blocks(model, fp8_dtype(quantize))
    return model.eval()


def _quantize_blocks(model, dtype) -> None:
    """The blocks' Linear weights to fp8 with a per-tensor scale (dequantised per layer on the fly)."""
    from .layers import Linear

    for module in model.blocks.modules():
        if isinstance(module, Linear) and not is_fp8(module.weight.dtype):
            q, scale = quantize_fp8(module.weight.data, dtype)
            module.weight = torch.nn.Parameter(q, requires_grad=False)
            module.weight_scale = scale.to(q.device)


def longcat_lora_tensors(tensors: dict) -> dict:
    """The official LoRA network state dict (`lora___lorahyphen___blocks___lorahyphen___0...lora_down.weight`,
    `alpha_scale`, split `lora_up.blocks.i`) as plain `path.lora_down/lora_up/alpha` tensors."""
    groups: dict[str, dict] = {}
    for key, value in tensors.items():
        if not key.startswith(_LORA_PREFIX):
            return tensors  # another layout: apply_lora reads it as is
        name, _, rest = key.partition(".")
        path = name[len(_LORA_PREFIX):].replace(_LORA_HYPHEN, ".")
        groups.setdefault(path, {})[rest] = value
    out = {}
    for path, group in groups.items():
        down = group["lora_down.weight"].float()
        ups = sorted((k for k in group if k.startswith("lora_up.blocks.")), key=lambda k: int(k.split(".")[2]))
        if ups:  # separate up-projections per chunk of the rank: block-diagonal
            up = torch.block_diag(*[group[k].float() for k in ups])
        else:
            up = group["lora_up.weight"].float()
        rank = down.shape[0]
        alpha_scale = float(group["alpha_scale"].float()) if "alpha_scale" in group else 64.0 / (rank // max(len(ups), 1))
        out[f"{path}.lora_down.weight"] = down
        out[f"{path}.lora_up.weight"] = up
        out[f"{path}.alpha"] = torch.tensor(alpha_scale * rank)
    return out


def apply_longcat_lora(model, lora, strength: float = 1.0) -> int:
    """Merge the official distillation LoRA (or any lora_down/lora_up LoRA for this model) into the weights."""
    from .lora import apply_lora

    if not isinstance(lora, dict):
        source = open_weight_file(lora)
        lora = {k: source.get(k) for k in source.keys()}
    return apply_lora(model, longcat_lora_tensors(lora), strength)
