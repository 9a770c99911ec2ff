"""`load_model`: Wan2.1 I2V weights (+ the InfiniteTalk file) in any supported layout and precision.

The model is built on the meta device, then every tensor is streamed from its
memory-mapped file straight to its target dtype and device, one at a time, so no
full-precision copy of the model ever exists. Layouts: original, ComfyUI-prefixed,
diffusers (see layouts.py). Precisions: fp32/bf16/fp16 and fp8 e4m3fn/e5m2, plain or
scaled, dequantised to the compute dtype on load, or kept as fp8 in memory
(`keep_fp8`) and dequantised per layer on the fly. GGUF files (gguf_file.py): their
block-quantised Linear weights stay packed (gguf_load.py) unless `keep_fp8=False`, dequantised
per layer on the fly; everything else is dequantised on load.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import InputError, ModelFileError
from ..torch_inputs import parse_device, parse_dtype
from .config import config_from_reference, normalize_config
from .detect import check_infinitetalk, check_wan_animate, check_wan_i2v, infer_animate_config, infer_config, is_animate
from .dit import WanInfiniteTalkModel
from .layers import Linear
from .layouts import KeyMap, config_from_json, resolve_files
from .quant.fp8 import check_quant_marker, check_quant_metadata, dequantize, fp8_dtype, is_fp8, quantize_fp8
from .quant.gguf_load import check_types, place_packed
from .quant.quantized import is_packed, storage_label
from .weight_files import open_weight_file

FIXTURE_EXTRAS = ("input.", "output.", "aux.", "debug.", "derived.")


def compute_dtype(value) -> torch.dtype:
    """torch dtype from a torch dtype or a name ('bf16', 'fp16', 'fp32')."""
    return parse_dtype(value, "compute precision", " (fp8 is a storage format: use keep_fp8)")


class _Checkpoint:
    """The tensors of a set of files under native names: native name -> (source, key), plus fp8 scales."""

    def __init__(self):
        self.entries: dict[str, tuple] = {}
        self.scales: dict[str, tuple] = {}
        self.files: list[str] = []
        self.layouts: set[str] = set()
        self.explicit: dict = {}

    def add(self, path) -> "_Checkpoint":
        files, json_config = resolve_files(path)
        if json_config:
            self.explicit.update(config_from_json(json_config))
        for file in files:
            source = open_weight_file(file)
            self.files.append(str(file))
            check_quant_metadata(source.metadata, Path(file).name)
            if source.metadata.get("config"):  # a reference-fixture style file carries its constructor arguments
                try:
                    self.explicit.update(config_from_reference(source.metadata["config"]))
                except (ValueError, InputError, TypeError):
                    pass
            keys = source.keys()
            if str(source.metadata.get("format", "")).startswith(("infinitetalk-reference-fixture",
                                                                  "wananimate-reference-fixture")):
                # reference fixtures also carry inputs/outputs/debug tensors beside the weights
                keys = [k for k in keys if not k.startswith(FIXTURE_EXTRAS)]
            keymap = KeyMap(keys)
            self.layouts.add(keymap.layout)
            for key in keymap.ignored:
                if key.endswith(".comfy_quant"):
                    check_quant_marker(source.get(key), key, Path(file).name)
            for name, key in keymap.weights.items():
                if name in self.entries:
                    other = self.entries[name][0].path
                    raise ModelFileError(
                        f"{name} is in both {os.path.basename(other)} and {Path(file).name}: pick each model part once"
                    )
                self.entries[name] = (source, key)
            for name, key in keymap.scales.items():
                self.scales[name] = (source, key)
        return self

    def shapes(self) -> dict:
        return {name: src.shape(key) for name, (src, key) in self.entries.items()}


def _parameter_slots(model: nn.Module) -> dict:
    """native name -> (module, attribute name, expected shape) for every parameter of the meta model."""
    slots = {}
    for mod_name, module in model.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            slots[f"{mod_name}.{attr}" if mod_name else attr] = (module, attr, tuple(param.shape))
    return slots


def _animate_only(key: str) -> bool:
    from .config import ANIMATE_DEFAULTS

    return key in ANIMATE_DEFAULTS


def _is_block_linear_weight(name: str, module) -> bool:
    return isinstance(module, Linear) and name.endswith(".weight") and name.startswith("blocks.")


def load_model(
    path_or_paths,
    dtype=torch.bfloat16,
    device=None,
    *,
    infinitetalk=None,
    config: dict | None = None,
    require_audio: bool | None = None,
    keep_fp8: bool | None = None,
    quantize: str | None = None,
    attention: str = "sdpa",
    blocks_to_swap: int = 0,
    offload_device="cpu",
    initial_device=None,
    loras=(),
    progress=None,
) -> WanInfiniteTalkModel:
    """Load Wan2.1 I2V 14B (+ InfiniteTalk) from files.

    path_or_paths: the Wan model as a file, a shard index json or a folder (original or diffusers layout), or a
        list of such (e.g. [wan, infinitetalk], or one combined file).
    infinitetalk: the InfiniteTalk adapter file, when given apart (checked to be one).
    dtype: compute precision (bf16 default, fp16, fp32). device: main device (default: CUDA if present, else CPU).
    config: overrides of sizes that weights cannot tell (e.g. num_heads, text_len) for non-standard models.
    require_audio: True = the InfiniteTalk weights must be present (default: True when `infinitetalk` is given).
    keep_fp8: True = keep fp8 weights of the file as fp8 in memory (dequantised per layer on the fly); GGUF blocks
        stay packed the same way unless keep_fp8 is False (None, the default: fp8 dequantised on load, GGUF packed).
    quantize: 'fp8_e4m3fn' / 'fp8_e5m2': store the blocks' linear weights in fp8 (per-tensor scaled) even when
        the file is bf16/fp16/fp32 (or GGUF: then dequantised and re-quantised to fp8 on load).
    attention: 'sdpa', 'sage' or 'flash'. blocks_to_swap: blocks kept on `offload_device`, moved in just in time.
    initial_device: where the other weights are put (default: `device`); e.g. the offload device when a host's
        model manager moves them onto `device` later (nodes/model_patcher.py).
    loras: [(path, strength), ...] merged into the weights after loading.
    progress: optional callable(done, total) per tensor loaded.
    """
    dtype = compute_dtype(dtype)
    device = parse_device(device)
    offload_device = torch.device(offload_device)
    initial_device = device if initial_device is None else torch.device(initial_device)
    quant_dtype = fp8_dtype(quantize) if quantize else None

    ckpt = _read_model_files(path_or_paths)
    main_files = list(ckpt.files)
    animate = is_animate(ckpt.entries)
    if animate and (infinitetalk is not None or require_audio):
        raise ModelFileError(
            f"{Path(main_files[0]).name} is Wan2.2-Animate (WanAnimate): it takes no InfiniteTalk file and cannot make "
            "talking video from speech: set the InfiniteTalk file to none and use the InfiniteTalk Animate sampler, or "
            "pick Wan2.1 I2V 14B + an InfiniteTalk file for lip sync"
        )
    audio_files = _add_infinitetalk_file(ckpt, infinitetalk, main_files) if infinitetalk is not None else []
    if infinitetalk is not None and require_audio is None:
        require_audio = True
    shapes = ckpt.shapes()
    explicit = dict(ckpt.explicit)
    explicit.update(config or {})
    if animate:
        from .animate_dit import WanAnimateModel

        check_wan_animate(shapes, main_files)
        cfg = normalize_config(infer_animate_config(shapes, explicit))
        model_class = WanAnimateModel
    else:
        _check_model_parts(shapes, main_files, audio_files, require_audio)
        cfg = normalize_config(infer_config(shapes, {k: v for k, v in explicit.items() if not _animate_only(k)}))
        model_class = WanInfiniteTalkModel

    with torch.device("meta"):
        model = model_class(cfg, dtype=dtype, device="meta")
    model.main_device = device
    slots = _parameter_slots(model)
    _check_slots(slots, shapes, ckpt.files, cfg, "Wan2.2-Animate" if animate else "Wan2.1 I2V + InfiniteTalk")

    check_types(ckpt.entries)
    swap = max(0, min(int(blocks_to_swap), cfg["num_layers"]))
    _load_weights(slots, ckpt, dtype, initial_device, offload_device, swap, keep_fp8, quant_dtype, progress)

    model.loaded_from = {"files": ckpt.files, "layouts": sorted(ckpt.layouts)}
    model.set_attention_backend(attention)
    if loras:
        from .lora import apply_loras

        apply_loras(model, loras)
    if swap:
        from .block_swap import BlockSwapper

        model.block_swap = BlockSwapper(model, swap, main_device=device, offload_device=offload_device)
    return model


def _read_model_files(path_or_paths) -> _Checkpoint:
    """The Wan model's tensors under native names (one file, a folder, shards, or a list of them)."""
    paths = list(path_or_paths) if isinstance(path_or_paths, (list, tuple)) else [path_or_paths]
    ckpt = _Checkpoint()
    for p in paths:
        ckpt.add(p)
    return ckpt


def _add_infinitetalk_file(ckpt: _Checkpoint, infinitetalk, main_files: list) -> list:
    """Add the InfiniteTalk file's tensors (checked to be the adapter, not a second Wan model); its files."""
    audio_ckpt = _Checkpoint().add(infinitetalk)
    audio_files = audio_ckpt.files
    audio_shapes = audio_ckpt.shapes()
    if not any(k.startswith("audio_proj.") for k in audio_shapes):
        if "patch_embedding.weight" in audio_shapes and "patch_embedding.weight" not in ckpt.shapes() \
                and any(k.startswith("audio_proj.") for k in ckpt.shapes()):
            raise ModelFileError(
                "the Wan model and the InfiniteTalk file are swapped: pick the Wan2.1 I2V file as the model and "
                f"{Path(main_files[0]).name} as the InfiniteTalk file"
            )
        check_infinitetalk(audio_shapes, audio_files, dim=0)
    for name, entry in audio_ckpt.entries.items():
        if name in ckpt.entries:
            raise ModelFileError(
                f"{name} is in both {Path(ckpt.entries[name][0].path).name} and {Path(entry[0].path).name}: "
                "the model file already holds InfiniteTalk weights; set the InfiniteTalk file to none"
            )
        ckpt.entries[name] = entry
    ckpt.scales.update(audio_ckpt.scales)
    ckpt.files += audio_files
    return audio_files


def _check_model_parts(shapes: dict, main_files: list, audio_files: list, require_audio) -> None:
    """A Wan2.1 I2V model, and complete InfiniteTalk weights when required or present."""
    check_wan_i2v(shapes, main_files)
    dim = shapes["patch_embedding.weight"][0]
    if require_audio or any(k.startswith("audio_proj.") for k in shapes):
        check_infinitetalk(shapes, audio_files or main_files, dim)


def _check_slots(slots: dict, shapes: dict, files: list, cfg: dict, kind: str) -> None:
    """Every parameter of the model is in the files, nothing else is, and every shape fits."""
    names = ", ".join(Path(f).name for f in files)
    missing = sorted(set(slots) - set(shapes))
    unexpected = sorted(set(shapes) - set(slots))
    if unexpected:
        raise ModelFileError(
            f"{len(unexpected)} tensors of {names} are not part of {kind}: "
            f"{', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}"
        )
    if missing:
        raise ModelFileError(
            f"{len(missing)} weights are missing from {names}: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (an incomplete or different model)"
        )
    for name, (_, _, expected) in slots.items():
        if tuple(shapes[name]) != expected:
            raise ModelFileError(
                f"shape mismatch for {name}: the file has {tuple(shapes[name])}, this model needs {expected} "
                f"(config dim={cfg['dim']}, heads={cfg['num_heads']}, layers={cfg['num_layers']}): "
                "the files belong to different models"
            )


def _load_weights(slots, ckpt, dtype, device, offload_device, swap, keep_fp8, quant_dtype, progress) -> None:
    """Stream every tensor from its file to its device and storage format, one at a time."""
    swapped_prefixes = tuple(f"blocks.{i}." for i in range(swap))
    total = len(slots)
    for done, (name, (module, attr, _)) in enumerate(sorted(slots.items()), start=1):
        target = offload_device if (swap and name.startswith(swapped_prefixes)) else device
        source, key = ckpt.entries[name]
        # GGUF blocks stay packed unless the caller asked for dequantised (keep_fp8=False) or fp8 storage
        if place_packed(source, key, module, attr, target, keep=keep_fp8 is not False and quant_dtype is None):
            if progress is not None:
                progress(done, total)
            continue
        value, scale, keeps_scale = _stored_tensor(name, module, attr, ckpt, dtype, target, keep_fp8, quant_dtype)
        if keeps_scale:
            module.weight_scale = scale
        module._parameters[attr] = nn.Parameter(value, requires_grad=False)
        if progress is not None:
            progress(done, total)


def _stored_tensor(name, module, attr, ckpt, dtype, target, keep_fp8, quant_dtype):
    """(value, its fp8 scale, whether the module keeps the scale) of one weight in its storage format."""
    source, key = ckpt.entries[name]
    tensor = source.get(key)
    scale = None
    if name in ckpt.scales:
        scale_src, scale_key = ckpt.scales[name]
        scale = scale_src.get(scale_key).to(target, torch.float32)
    linear_weight = isinstance(module, Linear) and attr == "weight"
    if is_fp8(tensor.dtype) and keep_fp8 and linear_weight:
        return tensor.to(target), scale, True
    if quant_dtype is not None and _is_block_linear_weight(name, module):
        if is_fp8(tensor.dtype) and tensor.dtype == quant_dtype:
            return tensor.to(target), scale, True
        value, scale = quantize_fp8(dequantize(tensor.to(target), scale, torch.float32), quant_dtype)
        return value, scale, True
    if is_fp8(tensor.dtype) or scale is not None:
        return dequantize(tensor.to(target), scale, dtype), scale, False
    if not tensor.is_floating_point():
        raise ModelFileError(f"{name} is stored as {tensor.dtype}, which is not a weight format this pack loads")
    return tensor.to(target).to(dtype), scale, False


def describe(model: WanInfiniteTalkModel) -> str:
    """One line for logs/UI: sizes, precision, storage, audio adapter."""
    cfg = model.config
    packed = {storage_label(m) for m in model.modules() if is_packed(m)}
    storage = sorted(packed | {str(p.dtype).replace("torch.", "") for p in model.parameters() if p.dtype != torch.uint8})
    return json.dumps({
        "dim": cfg["dim"], "layers": cfg["num_layers"], "audio_adapter": cfg["audio_adapter"],
        "compute": str(model.compute_dtype).replace("torch.", ""), "storage": storage,
        "layouts": getattr(model, "loaded_from", {}).get("layouts"),
    })
