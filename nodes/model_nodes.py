"""Model nodes: the InfiniteTalk model loader and LoRA selection (thin layers over wanvideo.model)."""
from __future__ import annotations

import logging
import os

from ..wanvideo.app.model_files import DIFFUSERS_FOLDER_MARKERS, FOLDERS, GGUF_EXTENSION, LISTED_EXTENSIONS
from ..wanvideo.model import load_model
from ..wanvideo.model.loading import describe
from ..wanvideo.model.parallel.pool import ModelSource
from ..wanvideo.model.settings import QUANTIZATIONS, LoaderSettings, LoraSettings
from ..wanvideo.options import node_input, node_inputs
from . import host
from .patcher_choice import make_model_patcher

log = logging.getLogger(__name__)

# Folders and file types: the engine's one map (wanvideo/app/model_files.py), shared with the command line.
MODEL_FOLDERS = FOLDERS["model"]
ADAPTER_FOLDERS = FOLDERS["infinitetalk"]
LORA_FOLDERS = FOLDERS["lora"]
host.register_model_folder("model_patches")
WEIGHT_EXTENSIONS = LISTED_EXTENSIONS
FOLDER_MARKERS = DIFFUSERS_FOLDER_MARKERS
NONE = "none"
_LORA = LoraSettings()  # the engine's defaults
QUANTIZATION = QUANTIZATIONS


def _is_adapter(name: str) -> bool:
    return "infinitetalk" in name.lower().replace("_", "").replace("-", "")


def _model_rank(name: str) -> int:
    """Model slot: Wan I2V files first, then other models, InfiniteTalk adapters last (never preselected)."""
    low = name.lower()
    if _is_adapter(name):
        return 2
    return 0 if "wan" in low and "i2v" in low else 1


def _adapter_rank(name: str) -> int:
    """Adapter slot: InfiniteTalk files first, then the rest of the folder."""
    return 0 if _is_adapter(name) else 1


def _weight_files(*folders: str, rank=None) -> list[str]:
    return host.model_choices(*folders, keep=lambda f: f.lower().endswith(WEIGHT_EXTENSIONS), markers=FOLDER_MARKERS,
                              rank=rank, also=(GGUF_EXTENSION,))


class InfiniteTalkModelLoader:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "load"
    RETURN_TYPES = ("INFINITETALK_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("Wan2.1 I2V 14B with the InfiniteTalk audio adapter, for the InfiniteTalk sampler (or "
                       "Wan2.2-Animate-14B, for the InfiniteTalk Animate Sampler).",)
    DESCRIPTION = ("Loads Wan2.1 image-to-video 14B and the InfiniteTalk audio adapter (original, ComfyUI or "
                   "diffusers layout; bf16/fp16/fp32, fp8 plain/scaled, or GGUF Q8_0 ... Q3_K), with LoRAs, block swap and "
                   "attention choice.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (_weight_files(*MODEL_FOLDERS, rank=_model_rank), {
                    "tooltip": "The Wan2.1 I2V 14B model (480p or 720p) from models/diffusion_models or models/unet: "
                               "a .safetensors file (e.g. wan2.1_i2v_480p_14B_bf16.safetensors or an fp8 repack), "
                               "a GGUF (e.g. wan2.1-i2v-14b-480p-Q8_0.gguf, Q5_K_M, Q4_K_M: kept quantised in VRAM), "
                               "or a diffusers / sharded original folder. Not T2V, not Wan2.2 — except "
                               "Wan2.2-Animate-14B (recognised by its weights) for the InfiniteTalk Animate Sampler."}),
                "infinitetalk": ([NONE] + _weight_files(*ADAPTER_FOLDERS, rank=_adapter_rank), {
                    "default": NONE,
                    "tooltip": "The InfiniteTalk adapter file (single- or multi-speaker, e.g. "
                               "Wan2_1-InfiniteTalk_Single_fp16.safetensors or Wan2_1-InfiniteTalk_Single_Q8.gguf) "
                               "from models/diffusion_models or "
                               "models/model_patches. 'none': the model file already contains it, or plain I2V "
                               "without audio."}),
                **node_inputs(LoaderSettings, "precision", "quantization", "blocks_to_swap", "attention"),
            },
            "optional": {
                "lora": ("INFINITETALK_LORA", {
                    "tooltip": "LoRAs from InfiniteTalk LoRA Select (e.g. a lightx2v step-distillation LoRA for "
                               "4-8 step sampling), merged into the weights at their strengths."}),
                "offload_after_sampling": node_input(LoaderSettings, "offload_after_sampling"),
            },
        }

    def load(self, model, infinitetalk=NONE, lora=None, **widgets):
        settings = LoaderSettings(**widgets)
        load_kwargs = settings.load_kwargs()  # checks every setting before anything is read
        model_path = host.resolve_model(model, *MODEL_FOLDERS)
        adapter_path = None if infinitetalk in (None, "", NONE) else host.resolve_model(infinitetalk, *ADAPTER_FOLDERS)
        loras = [(host.resolve_model(item["name"], *LORA_FOLDERS) if "path" not in item else item["path"], item["strength"])
                 for item in (lora or [])]
        bar = host.progress_bar(100)

        def progress(done, total):
            host.raise_if_interrupted()
            bar.update_absolute(done, total)

        main, offload = host.torch_device("main"), host.torch_device("offload")
        # The weights wait on the offload device: the sampler asks ComfyUI to load them, which makes room first.
        result = load_model(
            model_path,
            device=main,
            initial_device=offload,
            infinitetalk=adapter_path,
            offload_device=offload,
            loras=loras,
            progress=progress,
            **load_kwargs,
        )
        # what the multi-GPU workers load (they read the files themselves)
        result.wanvideo_source = ModelSource.of_loaded(result, [model_path, adapter_path], load_kwargs, loras)
        if result.config.get("model_type") == "animate":
            adapter = "WanAnimate (Wan2.2-Animate-14B) model: use the InfiniteTalk Animate Sampler"
        else:
            adapter = "InfiniteTalk adapter loaded" if result.has_audio_adapter else "no InfiniteTalk adapter (plain I2V)"
        host.send_progress_text(f"{adapter}; {settings.precision}; {len(loras)} LoRA(s); "
                                f"{settings.blocks_to_swap} blocks swapped")
        log.info("InfiniteTalk model: %s", describe(result))
        return (make_model_patcher(result, main, offload, offload_after=settings.offload_after_sampling),)


class InfiniteTalkLoraSelect:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "select"
    RETURN_TYPES = ("INFINITETALK_LORA",)
    RETURN_NAMES = ("lora",)
    OUTPUT_TOOLTIPS = ("The chosen LoRAs with their strengths: connect to the model loader (or to another LoRA Select).",)
    DESCRIPTION = "Picks a LoRA for Wan2.1 I2V 14B at a strength; chain several, then connect to the model loader."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "lora": (host.model_files(*LORA_FOLDERS), {
                    "tooltip": "A LoRA for Wan2.1 I2V 14B from models/loras (lora_down/lora_up, lora_A/lora_B or "
                               "diff layouts), e.g. lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors."}),
                "strength": node_input(LoraSettings, "strength"),
            },
            "optional": {
                "prev_lora": ("INFINITETALK_LORA", {"tooltip": "LoRAs chosen before this one (chain several)."}),
            },
        }

    def select(self, lora, strength=_LORA.strength, prev_lora=None):
        path = host.resolve_model(lora, *LORA_FOLDERS)
        chosen = list(prev_lora or [])
        chosen.append({"name": lora, "path": path, "strength": float(strength), "file": os.path.basename(path)})
        return (chosen,)


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkModelLoader": InfiniteTalkModelLoader,
    "InfiniteTalkLoraSelect": InfiniteTalkLoraSelect,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "InfiniteTalkModelLoader": "InfiniteTalk Model Loader",
    "InfiniteTalkLoraSelect": "InfiniteTalk LoRA Select",
}
