"""Where model files live and which file is which: the ComfyUI models/ folder map, the weight-file types,
and the command line's search of a models folder (the nodes list the same folders).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import InputError

# Weight files the loaders read. GGUF (the GGUF loader pack's format) is read for the video models only:
# Wan2.1 I2V, the InfiniteTalk adapter and WanAnimate (which come as Q8_0 ... Q3_K repacks), not for the encoders
# or LoRAs; the nodes list .gguf files everywhere, so picking one in another slot gets a clear message.
MODEL_EXTENSIONS = (".safetensors", ".sft", ".pt", ".pth", ".bin", ".ckpt")
GGUF_EXTENSION = ".gguf"
GGUF_KINDS = ("model", "infinitetalk")  # a WanAnimate kind gets added here when it has its own FOLDERS entry
LISTED_EXTENSIONS = MODEL_EXTENSIONS + (GGUF_EXTENSION,)
# A model kept as a folder: Hugging Face (wav2vec2), a diffusers transformer or pipeline, a sharded release.
HF_FOLDER_MARKERS = ("config.json", "model.safetensors", "pytorch_model.bin")
DIFFUSERS_FOLDER_MARKERS = ("config.json", "model_index.json", "diffusion_pytorch_model.safetensors.index.json")


@dataclass
class ModelPaths:
    models_dir: str | None = None
    model: str | None = None
    infinitetalk: str | None = None
    wav2vec: str | None = None
    vae: str | None = None
    clip_vision: str | None = None
    text_encoder: str | None = None
    loras: list = field(default_factory=list)  # [(path, strength)]

    FILES = ("model", "infinitetalk", "wav2vec", "vae", "clip_vision", "text_encoder")

    @property
    def embedded(self) -> bool:
        return self.models_dir is None and not self.loras and all(getattr(self, f) is None for f in self.FILES)


# ComfyUI models/ sub-folders per kind of model, searched in this order (the loader nodes list the same).
# InfiniteTalk adapters: diffusion_models (the wrapper's convention) or model_patches (ComfyUI's native support).
# wav2vec2: wav2vec2 (InfiniteTalk / wrapper convention) or audio_encoders (ComfyUI's own folder).
FOLDERS = {
    "model": ("diffusion_models", "unet"),
    "animate": ("diffusion_models", "unet"),
    "infinitetalk": ("diffusion_models", "model_patches", "unet"),
    "wav2vec": ("wav2vec2", "audio_encoders"),
    "vae": ("vae",),
    "clip_vision": ("clip_vision",),
    "text_encoder": ("text_encoders", "clip"),
    "lora": ("loras",),
}
WHAT = {
    "model": "Wan2.1 I2V 14B (e.g. wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors or wan2.1-i2v-14b-480p-Q8_0.gguf)",
    "animate": "Wan2.2-Animate-14B (e.g. Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors)",
    "infinitetalk": "InfiniteTalk (e.g. Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors or "
                    "Wan2_1-InfiniteTalk_Single_Q8.gguf)",
    "wav2vec": "wav2vec2 (e.g. wav2vec2-chinese-base_fp16.safetensors or a chinese-wav2vec2-base folder)",
    "vae": "Wan 2.1 VAE (wan_2.1_vae.safetensors)",
    "clip_vision": "CLIP ViT-H/14 (clip_vision_h.safetensors)",
    "text_encoder": "umt5-xxl (umt5_xxl_fp8_e4m3fn_scaled.safetensors)",
}


def extensions(kind: str) -> tuple:
    """The weight-file types read for one kind of model (a FOLDERS key)."""
    return MODEL_EXTENSIONS + ((GGUF_EXTENSION,) if kind in GGUF_KINDS else ())


def _candidates(models_dir: str, kind: str) -> list[str]:
    found = []
    for folder in FOLDERS[kind]:
        root = os.path.join(models_dir, folder)
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if kind == "wav2vec" and "config.json" in filenames and dirpath != root:
                found.append(dirpath)  # a Hugging Face folder
                dirnames[:] = []
                continue
            for name in sorted(filenames):
                if name.lower().endswith(extensions(kind)):
                    found.append(os.path.join(dirpath, name))
    return found


def _matches(kind: str, path: str, two_speakers: bool) -> int:
    """Preference score of a candidate (0 = not this kind of model)."""
    name = os.path.basename(path).lower().replace("-", "_")
    if kind == "animate":
        return 2 if "animate" in name else 0
    if kind == "model":
        return 2 if "i2v" in name and "infinitetalk" not in name and "2.2" not in name and "2_2" not in name else 0
    if kind == "infinitetalk":
        if "infinitetalk" not in name:
            return 0
        return 3 if ("multi" in name) == two_speakers else 1
    if kind == "wav2vec":
        return 2 if "wav2vec" in name else 0
    if kind == "vae":
        if "wan" not in name or "2.2" in name or "2_2" in name:
            return 0
        return 2
    if kind == "clip_vision":
        return 2 if "clip_vision_h" in name or "vit_h" in name or "vit-h" in name else 1
    if kind == "text_encoder":
        return 2 if "umt5" in name else 0
    return 0


def resolve_models(paths: ModelPaths, two_speakers: bool, need_audio: bool = True, model_kind: str = "model") -> dict:
    """{kind: path} for every model the run needs: given paths first, then a search of --models-dir.

    model_kind: what `--model` is: "model" (Wan2.1 I2V 14B) or "animate" (Wan2.2-Animate-14B)."""
    out: dict = {}
    for path, _ in paths.loras:  # the option the user typed is named first, whatever else is missing
        if not os.path.isfile(path):
            raise InputError(f"--lora {path}: file not found")
    if paths.loras and not paths.models_dir and all(getattr(paths, f) is None for f in ModelPaths.FILES):
        raise InputError("--lora applies to real weights: give --models-dir (your ComfyUI models folder) or the "
                         "model files; the embedded tiny demo models take no LoRA")
    kinds = [k for k in ModelPaths.FILES if need_audio or k not in ("infinitetalk", "wav2vec")]
    for option in kinds:
        given = getattr(paths, option)
        kind = model_kind if option == "model" else option  # what to look for (WHAT, FOLDERS, name match)
        if kind == "infinitetalk" and given == "none":
            out[option] = None  # the model file holds the InfiniteTalk weights itself (a combined file)
            continue
        if given:
            if not os.path.exists(given):
                raise InputError(f"--{option.replace('_', '-')} {given}: not found (the {WHAT[kind]})")
            out[option] = given
            continue
        if not paths.models_dir:
            raise InputError(f"--{option.replace('_', '-')} is missing: give the {WHAT[kind]}, or --models-dir "
                             "with your ComfyUI models folder (or no model options at all for the embedded demo)")
        if not os.path.isdir(paths.models_dir):
            raise InputError(f"--models-dir {paths.models_dir}: not a folder")
        scored = [(_matches(kind, p, two_speakers), p) for p in _candidates(paths.models_dir, kind)]
        scored = [sp for sp in scored if sp[0] > 0]
        if not scored:
            folders = " or ".join(f"{paths.models_dir}/{f}/" for f in FOLDERS[kind])
            raise InputError(f"no {WHAT[kind]} found in {folders}: download it there (see README, "
                             f"'Model files'), or give --{option.replace('_', '-')}")
        best = max(s for s, _ in scored)
        top = [p for s, p in scored if s == best]
        if len(top) > 1:
            listing = "\n  ".join(top)
            raise InputError(f"several {WHAT[kind]} candidates in {paths.models_dir}; choose one with "
                             f"--{option.replace('_', '-')}:\n  {listing}")
        out[option] = top[0]
    return out
