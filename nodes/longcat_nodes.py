"""LongCat-Video-Avatar 1.5 nodes (thin layers over wanvideo): model loader (+ the distillation LoRA), Whisper
loader, audio embeds (one or two speakers), sampler (image + speech -> frame store for Video Combine, any length).
Ids start with "InfiniteTalkLongCat", so they do not collide with the wrapper's LongCat nodes."""
from __future__ import annotations

import logging

import torch

from ..wanvideo.app.model_files import FOLDERS
from ..wanvideo.audio.longcat_embeds import longcat_audio_embeds
from ..wanvideo.audio.longcat_whisper import load_whisper
from ..wanvideo.audio.settings import AudioSettings
from ..wanvideo.errors import InputError
from ..wanvideo.model.longcat_loading import load_longcat_model
from ..wanvideo.model.settings import LoaderSettings, LoraSettings
from ..wanvideo.options import LongCatSettings, node_input, node_inputs, settings_from_inputs
from ..wanvideo.sampling.longcat import generate_longcat
from . import host
from .audio_nodes import _audio_input
from .host_adapters import HostWanVAE, conditioning_to_context, mask_tensor
from .host_run import run_on_host
from .model_nodes import LORA_FOLDERS, MODEL_FOLDERS, NONE, _weight_files
from .patcher_choice import make_model_patcher
from .sampler_nodes import FRAMES_FOLDERS, store_root

log = logging.getLogger(__name__)

WHISPER_FOLDERS = FOLDERS["wav2vec"]  # models/wav2vec2, models/audio_encoders
SAMPLER_INPUTS = ("use_distill", "steps", "text_cfg", "audio_cfg", "shift", "enhance_hf", "seed", "resolution",
                  "width", "height", "num_frames", "num_cond_frames", "ref_img_index", "mask_frame_range", "fps",
                  "max_frames", "color_correction")


class LongCatAvatarModelLoader:
    CATEGORY = "InfiniteTalk/LongCat"
    FUNCTION = "load"
    RETURN_TYPES = ("LONGCAT_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("LongCat-Video-Avatar 1.5, for the LongCat Avatar Sampler.",)
    DESCRIPTION = ("Loads the LongCat-Video-Avatar 1.5 transformer (the official base_model folder, its INT8 folder, "
                   "or a single-file bf16/fp8 repack) and merges the distillation LoRA (lora/dmd_lora.safetensors) "
                   "that the official 8-step default needs.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (_weight_files(*MODEL_FOLDERS), {
                    "tooltip": "From models/diffusion_models: the official LongCat-Video-Avatar base_model folder "
                               "(config.json + shards), base_model_int8, or a single .safetensors repack."}),
                "distill_lora": ([NONE] + host.model_choices(*LORA_FOLDERS, keep=lambda f: f.endswith(".safetensors")), {
                    "default": NONE,
                    "tooltip": "The distillation LoRA (lora/dmd_lora.safetensors from models/loras) for the official "
                               "8-step sampling (use_distill on the sampler). none: the base model (50 steps)."}),
                "lora_strength": node_input(LoraSettings, "strength"),
                **node_inputs(LoaderSettings, "precision", "quantization", "blocks_to_swap", "attention"),
            },
            "optional": {"offload_after_sampling": node_input(LoaderSettings, "offload_after_sampling")},
        }

    def load(self, model, distill_lora=NONE, lora_strength=1.0, offload_after_sampling="auto", **widgets):
        settings = LoaderSettings(offload_after_sampling=offload_after_sampling, **widgets)
        kwargs = settings.load_kwargs()  # checks every setting before anything is read
        path = host.resolve_model(model, *MODEL_FOLDERS)
        lora = None if distill_lora in (None, "", NONE) else host.resolve_model(distill_lora, *LORA_FOLDERS)
        main, offload = host.torch_device("main"), host.torch_device("offload")
        dit = load_longcat_model(path, dtype=kwargs["dtype"], device=main, initial_device=offload,
                                 keep_fp8=kwargs["keep_fp8"], quantize=kwargs["quantize"], lora=lora,
                                 lora_strength=float(lora_strength))
        dit.set_attention_backend(kwargs["attention"])
        if kwargs["blocks_to_swap"]:
            dit.enable_block_swap(kwargs["blocks_to_swap"], offload_device=offload)
        host.send_progress_text(f"LongCat-Video-Avatar; {settings.precision}; distillation LoRA: "
                                f"{'yes' if lora else 'no'}")
        return (make_model_patcher(dit, main, offload, offload_after=settings.offload_after_sampling),)


class LongCatWhisperLoader:
    CATEGORY = "InfiniteTalk/LongCat"
    FUNCTION = "load"
    RETURN_TYPES = ("LONGCAT_WHISPER",)
    RETURN_NAMES = ("whisper",)
    OUTPUT_TOOLTIPS = ("The Whisper-large-v3 speech encoder: connect to LongCat Avatar Audio Embeds.",)
    DESCRIPTION = "Loads whisper-large-v3 (a Hugging Face folder), the speech encoder of LongCat-Video-Avatar 1.5."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (host.model_subfolders(*WHISPER_FOLDERS), {
                "tooltip": "The whisper-large-v3 folder (config.json, preprocessor_config.json, model.safetensors) in "
                           "models/audio_encoders or models/wav2vec2."}),
        }}

    def load(self, model):
        path = host.model_subfolder_path(model, *WHISPER_FOLDERS)
        if path is None:
            raise InputError(f"Whisper folder {model!r} not found in models/audio_encoders or models/wav2vec2")
        return (load_whisper(path, dtype=torch.float32, device=host.torch_device("main")),)


class LongCatAvatarAudioEmbeds:
    CATEGORY = "InfiniteTalk/LongCat"
    FUNCTION = "embed"
    RETURN_TYPES = ("LONGCAT_AUDIO_EMBEDS", "AUDIO", "INT")
    RETURN_NAMES = ("audio_embeds", "audio", "frame_count")
    OUTPUT_TOOLTIPS = ("Whisper features of the speech (per speaker) for the LongCat Avatar Sampler.",
                       "The speech as the video will play it (two speakers: their mix): connect to Video Combine.",
                       "Frames the video will have (the speech's length at the frame rate).")
    DESCRIPTION = ("Speech -> LongCat-Video-Avatar 1.5 audio features, as the official demos: 16 kHz, -23 LUFS, "
                   "Whisper-large-v3 layer groups. Two speakers: speaker 1 is the left person, speaker 2 the right "
                   "(or as the sampler's masks say); 'para' = they talk at once, 'add' = one after the other.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "whisper": ("LONGCAT_WHISPER", {"tooltip": "From LongCat Whisper Loader."}),
                "audio": ("AUDIO", {"tooltip": "Speaker 1's speech (clean vocals work best)."}),
                **node_inputs(LongCatSettings, "fps", "num_frames", "num_cond_frames"),
            },
            "optional": {
                "audio_2": ("AUDIO", {"tooltip": "Speaker 2's speech (two people in the picture)."}),
                "speaker_mode": node_input(AudioSettings, "speaker_mode"),
            },
        }

    def embed(self, whisper, audio, fps=25.0, num_frames=93, num_cond_frames=13, audio_2=None, speaker_mode="para"):
        wave_1, rate_1 = _audio_input(audio, "audio")
        wave_2, rate_2 = _audio_input(audio_2, "audio_2") if audio_2 is not None else (None, None)
        embeds = longcat_audio_embeds(whisper, wave_1, rate_1, wave_2, rate_2, mode=speaker_mode, fps=fps,
                                      num_frames=num_frames, num_cond_frames=num_cond_frames)
        sound = {"waveform": torch.from_numpy(embeds.waveform)[None, None], "sample_rate": embeds.sample_rate}
        if audio_2 is None:
            sound = audio  # one speaker: the speech as given (its own rate and channels)
        return (embeds, sound, embeds.num_frames)


class LongCatAvatarSampler:
    CATEGORY = "InfiniteTalk/LongCat"
    FUNCTION = "sample"
    RETURN_TYPES = ("INFINITETALK_FRAMES", "INT", "FLOAT")
    RETURN_NAMES = ("frames", "frame_count", "fps")
    OUTPUT_TOOLTIPS = ("The video's frames on disk (segment by segment): connect to InfiniteTalk Video Combine "
                       "with the audio from LongCat Avatar Audio Embeds.",
                       "Number of frames (the speech's length, or max_frames).", "Frame rate.")
    DESCRIPTION = ("LongCat-Video-Avatar 1.5: the portrait talks (or two people talk) with the speech, any length: "
                   "93-frame segments, each continuing from the last 13 frames of the one before, the portrait as "
                   "the reference throughout. Finished segments go to disk; a rerun with the same inputs resumes.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("LONGCAT_MODEL", {"tooltip": "From LongCat Avatar Model Loader."}),
                "vae": ("VAE", {"tooltip": "The Wan 2.1 VAE (wan_2.1_vae.safetensors), as LongCat-Video uses."}),
                "image": ("IMAGE", {"tooltip": "The portrait (snapped to the nearest official size bucket)."}),
                "audio_embeds": ("LONGCAT_AUDIO_EMBEDS", {"tooltip": "From LongCat Avatar Audio Embeds."}),
                **node_inputs(LongCatSettings, *SAMPLER_INPUTS),
            },
            "optional": {
                "positive": ("CONDITIONING", {"tooltip": "Prompt (CLIP Text Encode with umt5-xxl)."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt (used when guidance > 1)."}),
                "speaker_1_mask": ("MASK", {"tooltip": "Two speakers: where speaker 1 is (default: the left half)."}),
                "speaker_2_mask": ("MASK", {"tooltip": "Two speakers: where speaker 2 is (default: the right half)."}),
                "frames_folder": (list(FRAMES_FOLDERS), {
                    "default": "temp",
                    "tooltip": "Where finished segments are kept: temp, or output/infinitetalk_frames (survives a "
                               "restart, so long runs can resume)."}),
            },
        }

    def sample(self, model, vae, image, audio_embeds, positive=None, negative=None, speaker_1_mask=None,
               speaker_2_mask=None, frames_folder="temp", **widgets):
        settings = settings_from_inputs(LongCatSettings, widgets, "LongCat sampler")
        masks = None
        if speaker_1_mask is not None or speaker_2_mask is not None:
            if speaker_1_mask is None or speaker_2_mask is None:
                raise InputError("connect both speaker masks, or neither for the default left / right halves")
            masks = [mask_tensor(speaker_1_mask), mask_tensor(speaker_2_mask)]

        def run(dit, prepare_model, progress):
            return generate_longcat(
                dit, HostWanVAE(vae), image, audio_embeds,
                context=conditioning_to_context(positive, "positive"), context_mask=_mask(positive),
                context_null=conditioning_to_context(negative, "negative"), context_null_mask=_mask(negative),
                speaker_masks=masks, settings=settings, store_root=store_root(frames_folder),
                on_progress=progress.on_progress, should_stop=host.interrupt_requested,
                on_window_done=progress.on_window_done, prepare_model=prepare_model)

        store = run_on_host(model, run, unit="segment")
        return (store, len(store), float(store.fps))


def _mask(conditioning):
    """The text encoder's attention mask when the host keeps one (padded prompts), else None (all tokens)."""
    try:
        mask = conditioning[0][1].get("attention_mask")
    except (TypeError, IndexError, AttributeError):
        return None
    return None if mask is None else torch.as_tensor(mask).reshape(1, -1).long().cpu()


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkLongCatModelLoader": LongCatAvatarModelLoader,
    "InfiniteTalkLongCatWhisperLoader": LongCatWhisperLoader,
    "InfiniteTalkLongCatAudioEmbeds": LongCatAvatarAudioEmbeds,
    "InfiniteTalkLongCatSampler": LongCatAvatarSampler,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "InfiniteTalkLongCatModelLoader": "LongCat Avatar Model Loader",
    "InfiniteTalkLongCatWhisperLoader": "LongCat Whisper Loader",
    "InfiniteTalkLongCatAudioEmbeds": "LongCat Avatar Audio Embeds",
    "InfiniteTalkLongCatSampler": "LongCat Avatar Sampler",
}
