"""load_wav2vec: a Hugging Face folder or a single weights file -> Wav2VecEncoder."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..errors import InputError, ModelFileError
from ..model.file_sniff import check_weights_file
from ..torch_inputs import check_finite, load_torch_state_dict
from .checkpoint import (
    OPTIONAL_KEYS,
    bundled_config,
    default_preprocessor,
    find_prefix,
    infer_config,
    normalize_state_dict,
)
from .encoder import Wav2VecEncoder, as_device, as_dtype, build_transformers_model

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def _read_safetensors_keys(path: Path) -> tuple[list[str], dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys()), dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged / non-safetensors file
        raise ModelFileError(f"{path} is not a readable .safetensors file ({exc}): download it again") from exc


def _load_safetensors(path: Path) -> tuple[dict, dict]:
    """(state dict, metadata); checks the keys first so a wrong (possibly huge) model is refused before loading."""
    from safetensors import safe_open

    keys, metadata = _read_safetensors_keys(path)
    prefix = find_prefix(keys, str(path))  # raises for other models
    sd = {}
    with safe_open(str(path), framework="pt") as f:
        for k in keys:
            if k.startswith(prefix):
                sd[k] = check_finite(f.get_tensor(k), k, path)
    return sd, metadata


def _load_torch_file(path: Path) -> dict:
    sd = load_torch_state_dict(path, "a wav2vec2 checkpoint")
    for key, tensor in sd.items():
        check_finite(tensor, key, path)
    return sd


def _load_weights_file(path: Path) -> tuple[dict, dict]:
    check_weights_file(path)  # an LFS pointer, a web page, a cut download: the words every loader uses
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    return _load_torch_file(path), {}


def _folder_weights(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
    raise ModelFileError(
        f"folder {folder} has no wav2vec2 weights: expected model.safetensors or pytorch_model.bin "
        f"(a Hugging Face model folder such as TencentGameMate/chinese-wav2vec2-base), found {found}. "
        f"Download the weights into it, or pick a single .safetensors file instead."
    )


def _metadata_config(metadata: dict) -> dict | None:
    """A wav2vec2 config carried in a safetensors file's metadata, if any."""
    raw = metadata.get("config") if metadata else None
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if isinstance(cfg, dict) and "wav2vec2_config" in cfg:
        cfg = cfg["wav2vec2_config"]
    return cfg if isinstance(cfg, dict) and "hidden_size" in cfg else None


def _build(sd: dict, config: dict, source: str) -> torch.nn.Module:
    model = build_transformers_model(config)
    expected = model.state_dict()
    for key in OPTIONAL_KEYS:
        if key in expected and key not in sd:
            sd[key] = torch.zeros(expected[key].shape)
    mismatched = [f"{k}: file {tuple(sd[k].shape)} vs config {tuple(v.shape)}"
                  for k, v in expected.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    missing = [k for k in expected if k not in sd]
    if mismatched or missing:
        detail = "; ".join(mismatched[:3] + [f"missing {k}" for k in missing[:3]])
        raise ModelFileError(
            f"{source}: the weights do not fit the wav2vec2 config ({detail}). The config.json beside the "
            f"weights may belong to another model, or the file is incomplete."
        )
    sd = {k: v for k, v in sd.items() if k in expected}
    model.load_state_dict(sd, strict=True, assign=True)
    return model


def _probe(enc: Wav2VecEncoder) -> None:
    """Run a tiny input through every kind of op once: some builds cannot run fp16 on the CPU."""
    from .features import embed_waveform16k

    try:
        n = max(4 * 640, 2 * 400)
        embed_waveform16k(enc, torch.zeros(n).numpy() + 0.01, fps=25.0)
    except (RuntimeError, NotImplementedError) as exc:
        raise InputError(
            f"wav2vec2 in {enc.dtype} cannot run on {enc.device} with this PyTorch ({exc}). "
            f"Choose precision fp32 (or bf16), or the main (GPU) device."
        ) from exc


def load_wav2vec(path, dtype=torch.float32, device="cpu", check: bool = True, compute_device=None) -> Wav2VecEncoder:
    """Load a wav2vec2 encoder from a Hugging Face folder or a single weights file.

    Folder: config.json (optional: else inferred) + model.safetensors or
    pytorch_model.bin (read with torch.load(weights_only=True)), and
    preprocessor_config.json if present (do_normalize). File: .safetensors (or
    .bin), prefixed `wav2vec2.` or not, weight norm as weight_g/weight_v or
    parametrizations, with the bundled chinese-wav2vec2-base config corrected
    by the weights' own sizes. `check` runs a tiny forward to refuse a
    precision the device cannot compute. `compute_device`: keep the weights on
    `device` but compute there (see Wav2VecEncoder.compute_device).
    """
    dtype = as_dtype(dtype)
    device = as_device(device)
    compute_device = as_device(compute_device) if compute_device is not None else None
    p = Path(path)
    if not p.exists():
        raise InputError(f"wav2vec2 model {p} does not exist: put it into ComfyUI/models/wav2vec2/")
    config = None
    preprocessor = None
    if p.is_dir():
        weights = _folder_weights(p)
        if (p / "config.json").is_file():
            config = json.loads((p / "config.json").read_text())
        if (p / "preprocessor_config.json").is_file():
            preprocessor = json.loads((p / "preprocessor_config.json").read_text())
    else:
        weights = p
        if p.suffix not in WEIGHT_SUFFIXES:
            raise ModelFileError(f"{p} is not a weights file: expected a .safetensors (or .bin) wav2vec2 model")
        sidecar = p.with_suffix(".json")  # optional config for a single file: <name>.json beside it
        if p.name in ("model.safetensors", "pytorch_model.bin") and (p.parent / "config.json").is_file():
            sidecar = p.parent / "config.json"  # the weights file of a Hugging Face folder
            if (p.parent / "preprocessor_config.json").is_file():
                preprocessor = json.loads((p.parent / "preprocessor_config.json").read_text())
        if sidecar.is_file():
            try:
                config = json.loads(sidecar.read_text())
            except ValueError as exc:
                raise ModelFileError(f"{sidecar} (the config beside {p.name}) is not valid JSON: {exc}") from exc
    raw, metadata = _load_weights_file(weights)
    sd = normalize_state_dict(raw, str(weights))
    del raw
    if config is None:
        config = _metadata_config(metadata)
    if config is not None and config.get("model_type", "wav2vec2") not in ("wav2vec2", "wav2vec2-base"):
        raise ModelFileError(f"{p}: config.json describes a {config.get('model_type')!r} model, expected wav2vec2")
    config_source = "file"
    if config is None:
        config, config_source = infer_config(sd), "bundled chinese-wav2vec2-base, sizes from the weights"
    elif "conv_dim" not in config or "hidden_size" not in config:
        config, config_source = infer_config(sd, {**bundled_config()[0], **config}), "partial, completed from the weights"
    if preprocessor is None:
        preprocessor = default_preprocessor(config)
    model = _build(sd, config, str(weights))
    model.to(device=device, dtype=dtype)
    enc = Wav2VecEncoder(model, do_normalize=bool(preprocessor.get("do_normalize", False)), source=str(p),
                         info={"weights": str(weights), "config": config_source}, compute_device=compute_device)
    if check:
        with enc.computing():
            _probe(enc)
    log.info("loaded %r", enc)
    return enc
