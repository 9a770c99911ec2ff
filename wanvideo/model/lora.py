"""LoRA files merged into the model's weights at a strength.

Layouts seen for Wan (including the step-distillation LoRAs such as lightx2v used for
4-8 step sampling): `lora_down`/`lora_up` (+ `alpha`), PEFT `lora_A`/`lora_B`, kohya
`lora_unet_blocks_0_self_attn_q`, and full deltas `diff` (weight) / `diff_b` (bias),
with or without `diffusion_model.` / `model.diffusion_model.` / `transformer.` prefixes,
under native or diffusers module names. Merging: W += s * (alpha / rank) * up @ down;
fp8 weights kept in memory are dequantised, updated and re-quantised with a new scale.
Packed GGUF weights are not re-quantised: the LoRA's factors (or full delta) are kept beside the
weight and added to it each time it is dequantised (quantized.py explains why).
"""
from __future__ import annotations

import logging

import torch

from ..errors import ModelFileError
from .file_sniff import WAN_I2V, wrong_model
from .layouts import diffusers_to_native, is_diffusers
from .quant.fp8 import dequantize, is_fp8, quantize_fp8
from .quant.quantized import add_delta, add_lora, is_packed, weight_shape
from .weight_files import open_weight_file

log = logging.getLogger(__name__)

_KINDS = (
    (".lora_down.weight", "down"), (".lora_up.weight", "up"),
    (".lora_A.weight", "down"), (".lora_B.weight", "up"),
    (".lora_A.default.weight", "down"), (".lora_B.default.weight", "up"),
    (".lora.down.weight", "down"), (".lora.up.weight", "up"),
    (".alpha", "alpha"), (".diff_b", "diff_b"), (".diff", "diff"),
)
_PREFIXES = ("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.", "model.", "unet.")


def _split(key: str):
    for suffix, kind in _KINDS:
        if key.endswith(suffix):
            return key[: -len(suffix)], kind
    return None, None


def _strip(path: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def parse_lora(tensors: dict, model) -> dict:
    """{native module path: {"down", "up", "alpha", "diff", "diff_b"}} from a LoRA state dict."""
    kohya = {name.replace(".", "_"): name for name, _ in model.named_modules() if name}
    groups: dict[str, dict] = {}
    unknown = []
    for key, value in tensors.items():
        path, kind = _split(key)
        if path is None:
            unknown.append(key)
            continue
        path = _strip(path)
        if path.startswith("lora_unet_"):
            path = kohya.get(path[len("lora_unet_"):], path)
        groups.setdefault(path, {})[kind] = value
    if unknown:
        log.warning("LoRA: %d tensors of unknown kind ignored (e.g. %s)", len(unknown), unknown[0])
    if is_diffusers(list(groups)):
        groups = {diffusers_to_native(p + ".weight")[: -len(".weight")]: g for p, g in groups.items()
                  if diffusers_to_native(p + ".weight") is not None}
    return groups


def _factors(group: dict, shape, name: str):
    """(up [out, rank], down [rank, in], alpha / rank) of a low-rank pair checked against the weight's shape."""
    down, up = group["down"].float(), group["up"].float()
    rank = down.shape[0]
    alpha = float(group["alpha"].float().item()) if "alpha" in group else float(rank)
    up, down = up.reshape(up.shape[0], rank), down.reshape(rank, -1)
    if up.shape[0] * down.shape[1] != torch.Size(shape).numel() or up.shape[0] != shape[0]:
        raise ModelFileError(
            f"LoRA layer {name}: up {tuple(group['up'].shape)} x down {tuple(group['down'].shape)} does not fit the "
            f"weight {tuple(shape)}: this LoRA is for a different model"
        )
    return up, down, alpha / rank


def _delta(group: dict, shape, name: str):
    up, down, scale = _factors(group, shape, name)
    return (up @ down).reshape(shape) * scale


def _update(module, attr: str, delta: torch.Tensor) -> None:
    param = getattr(module, attr)
    scale = getattr(module, "weight_scale", None) if attr == "weight" else None
    if is_fp8(param.dtype):
        merged = dequantize(param.data, scale, torch.float32) + delta.to(param.device)
        q, new_scale = quantize_fp8(merged, param.dtype)
        param.data = q
        module.weight_scale = new_scale.to(param.device)
    else:
        param.data = (param.data.float() + delta.to(param.device)).to(param.dtype)


def _compute_dtype(model) -> torch.dtype:
    dtype = getattr(model, "compute_dtype", torch.bfloat16)
    return dtype if dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.bfloat16


def apply_lora(model, tensors_or_path, strength: float = 1.0) -> int:
    """Merge one LoRA (state dict or file) at `strength`; returns the number of layers changed."""
    if isinstance(tensors_or_path, dict):
        tensors, where = tensors_or_path, "LoRA"
    else:
        source = open_weight_file(tensors_or_path)
        tensors, where = {k: source.get(k) for k in source.keys()}, str(tensors_or_path)
    groups = parse_lora(tensors, model)
    modules = dict(model.named_modules())
    changed, skipped = 0, []
    for path, group in groups.items():
        module = modules.get(path)
        if module is None and "diff" in group and "." in path:
            # a bare parameter (e.g. blocks.0.modulation) given as a full delta
            parent, attr = path.rsplit(".", 1)
            owner = modules.get(parent)
            if owner is not None and attr in owner._parameters:
                if tuple(group["diff"].shape) != tuple(owner._parameters[attr].shape):
                    raise ModelFileError(f"{where}: diff for {path} does not fit the parameter's shape")
                _update(owner, attr, strength * group["diff"].float())
                changed += 1
                continue
        if module is None:
            skipped.append(path)
            continue
        if "down" in group or "up" in group:
            if not ("down" in group and "up" in group):
                raise ModelFileError(f"{where}: layer {path} has only one of lora_down/lora_up: the file is damaged")
            if is_packed(module):
                up, down, scale = _factors(group, weight_shape(module), path)
                add_lora(module, up, down, strength * scale, dtype=_compute_dtype(model))
            else:
                _update(module, "weight", strength * _delta(group, module.weight.shape, path))
        elif "diff" in group:
            if tuple(group["diff"].shape) != weight_shape(module):
                raise ModelFileError(
                    f"{where}: diff for {path} has shape {tuple(group['diff'].shape)}, the weight is "
                    f"{weight_shape(module)}: this LoRA is for a different model"
                )
            if is_packed(module):
                add_delta(module, strength * group["diff"].float(), dtype=_compute_dtype(model))
            else:
                _update(module, "weight", strength * group["diff"].float())
        if "diff_b" in group:
            if getattr(module, "bias", None) is None or tuple(group["diff_b"].shape) != tuple(module.bias.shape):
                raise ModelFileError(f"{where}: diff_b for {path} does not fit the layer's bias")
            _update(module, "bias", strength * group["diff_b"].float())
        changed += 1
    if changed == 0:
        raise wrong_model(where, f"a LoRA for {WAN_I2V}", f"this LoRA matches no layer of the model (first names: "
                          f"{', '.join(list(groups)[:3])}): use a LoRA made for {WAN_I2V}")
    if skipped:
        log.warning("LoRA %s: %d layers not in the model were skipped (e.g. %s)", where, len(skipped), skipped[0])
    return changed


def apply_loras(model, loras) -> None:
    """loras: [(path or state dict, strength), ...] merged in order."""
    for item, strength in loras:
        if strength:
            apply_lora(model, item, strength)
