"""Writing the tiny random-weight models (see tiny.py) as files in ComfyUI's models/ layout.

`python -m wanvideo write-tiny-models DIR`: lets the pack's own loaders (and the tests of the real-weights
paths) run on files without downloading anything.
"""
from __future__ import annotations

import json
import os

import torch


def write_tiny_models(models_dir: str, clip_dim: int | None = None, text_dim: int | None = None,
                      gguf: str | None = None) -> dict:
    """Write the tiny random-weight DiT (+ InfiniteTalk), a tiny WanAnimate DiT and wav2vec2 in ComfyUI's models/ layout.

    gguf: also write the Wan model and the InfiniteTalk adapter as two GGUF files of that type ('Q8_0', ...).
    Returns the file names to select in the loaders and the tiny model's text/image widths.
    """
    from safetensors.torch import save_file

    from ..audio import tiny_wav2vec2
    from ..model import build_model, tiny_config

    overrides = {}
    if clip_dim:
        overrides["clip_dim"] = int(clip_dim)
    if text_dim:
        overrides["text_dim"] = int(text_dim)
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    dit = build_model(config, dtype=torch.float32, device="cpu")
    sd = {k: v.contiguous() for k, v in dit.state_dict().items()}
    # Sizes the weights cannot tell (heads, text length, wav2vec layers x channels) travel in the metadata,
    # the way the reference fixtures carry their constructor arguments. Two files: the Wan model with the
    # InfiniteTalk weights in it (a "combined" file), and the plain Wan model (for image-to-video without audio).
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()
              if k not in ("clip_dim", "audio_layers", "audio_channels", "audio_adapter")}

    def meta(audio_adapter):
        return {"config": json.dumps({"model_kwargs": dict(kwargs, audio_adapter=audio_adapter),
                                      "clip_dim": config["clip_dim"],
                                      "audio_proj": {"blocks": config["audio_layers"],
                                                     "channels": config["audio_channels"]}})}

    dm = os.path.join(models_dir, "diffusion_models")
    os.makedirs(dm, exist_ok=True)
    names = {"model": "wan2.1_i2v_infinitetalk_tiny_random.safetensors",
             "model_no_audio": "wan2.1_i2v_tiny_random.safetensors"}
    save_file(sd, os.path.join(dm, names["model"]), metadata=meta(True))
    save_file({k: v for k, v in sd.items() if not _is_adapter_key(k)}, os.path.join(dm, names["model_no_audio"]),
              metadata=meta(False))
    if gguf:
        from ..model.quant.gguf_write import write_gguf

        names["gguf_model"] = f"wan2.1-i2v-tiny-random-{gguf}.gguf"
        names["gguf_infinitetalk"] = f"infinitetalk-single-tiny-random-{gguf}.gguf"
        # The pair loads together (model + InfiniteTalk file): the size metadata describes the pair.
        write_gguf(os.path.join(dm, names["gguf_model"]), {k: v for k, v in sd.items() if not _is_adapter_key(k)},
                   gguf, metadata=meta(True))
        write_gguf(os.path.join(dm, names["gguf_infinitetalk"]), {k: v for k, v in sd.items() if _is_adapter_key(k)},
                   gguf, metadata=meta(True))
    names["animate_model"] = "wan2.2_animate_tiny_random.safetensors"
    _write_tiny_animate(os.path.join(dm, names["animate_model"]), overrides)
    # wav2vec2 as a Hugging Face folder (config.json + model.safetensors), as users keep chinese-wav2vec2-base.
    names["wav2vec"] = "tiny-wav2vec2-random"
    tiny_wav2vec2(seed=0).model.save_pretrained(os.path.join(models_dir, "wav2vec2", names["wav2vec"]),
                                                safe_serialization=True)
    names["text_dim"] = config["text_dim"]
    names["clip_dim"] = config["clip_dim"]
    return names


def _write_tiny_animate(path: str, overrides: dict) -> None:
    """The tiny WanAnimate DiT (the tiny-animate preset, same text/image widths as the tiny Wan model)."""
    from safetensors.torch import save_file

    from ..model import build_model
    from ..model.config import normalize_config, preset

    config = preset("tiny-animate")
    config.update(overrides)
    config = normalize_config(config)
    torch.manual_seed(0)
    dit = build_model(config, dtype=torch.float32, device="cpu")
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if k != "clip_dim"}
    save_file({k: v.contiguous() for k, v in dit.state_dict().items()}, path,
              metadata={"config": json.dumps({"model_kwargs": kwargs, "clip_dim": config["clip_dim"]})})


def _is_adapter_key(key: str) -> bool:
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key or ".norm_x." in key
