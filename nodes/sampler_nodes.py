"""Sampler nodes: InfiniteTalkSampler (any length, window by window, to a disk frame store) and
InfiniteTalkFramesToImages (a store, or a slice of it, as a plain IMAGE batch)."""
from __future__ import annotations

import logging
import os

import torch

from ..wanvideo.errors import InputError
from ..wanvideo.options import node_input, node_inputs, option_values, settings_from_inputs
from ..wanvideo.sampling import SamplerSettings, generate
from ..wanvideo.sampling.cache import CacheOptions
from ..wanvideo.sampling.face_box import face_models_for
from ..wanvideo.sampling.guidance_settings import GuidanceOptions
from ..wanvideo.sampling.prompts import DEFAULT_NEGATIVE_PROMPT
from ..wanvideo.video.frame_store import FrameStore
from . import host
from .animate_preprocess_nodes import detection_model_folders
from .host_adapters import HostWanVAE, clip_vision_encoder, clip_vision_features, conditioning_to_context, mask_tensor
from .host_run import progress_text, run_on_host  # noqa: F401 - progress_text: the badge's line, kept importable here
from .multi_gpu_nodes import parallel_executor
from .prompt_nodes import PROMPTS_TYPE, prompts_to_contexts

log = logging.getLogger(__name__)

STORE_FOLDER = "infinitetalk_frames"
FRAMES_FOLDERS = ("temp", "output")


def store_root(where: str) -> str:
    if where not in FRAMES_FOLDERS:
        raise InputError(f"frames folder must be one of {FRAMES_FOLDERS}, got {where!r}")
    base = host.temp_directory() if where == "temp" else host.output_directory()
    root = os.path.join(base, STORE_FOLDER)
    os.makedirs(root, exist_ok=True)
    return root


def speed_settings(cache, guidance) -> dict:
    """SamplerSettings fields from the optional `cache` / `guidance` inputs (dicts from the speed nodes)."""
    values = {}
    for name, given, options, node in (("cache", cache, CacheOptions, "InfiniteTalk Step Cache"),
                                       ("guidance", guidance, GuidanceOptions, "InfiniteTalk Guidance Options")):
        if given is None:
            continue
        if not isinstance(given, dict):
            raise InputError(f"the sampler's {name} input must come from the {node} node")
        values.update(option_values(options, given))
    return values


def warn_no_negative(cfg: float) -> None:
    """With text guidance and no negative prompt the model is pushed away from an empty prompt, where the reference
    uses its default negative prompt; this node cannot encode text, so it says so (once per run)."""
    log.warning("WanVideo InfiniteTalk: cfg is %g but no negative prompt is connected, so text guidance pushes away "
                "from an empty prompt instead of the reference's default negative prompt. Connect a CLIP Text Encode "
                "(umt5) to `negative` with: %s", cfg, DEFAULT_NEGATIVE_PROMPT)
    host.send_progress_text("no negative prompt connected: see the console (the reference uses a default one)")


def sampler_settings(widgets: dict) -> SamplerSettings:
    """SamplerSettings from the node's widget values (an unknown name is an error, a missing one its default)."""
    return settings_from_inputs(SamplerSettings, widgets, "sampler")


class InfiniteTalkSampler:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "sample"
    RETURN_TYPES = ("INFINITETALK_FRAMES", "INT", "FLOAT")
    RETURN_NAMES = ("frames", "frame_count", "fps")
    OUTPUT_TOOLTIPS = (
        "The video's frames, on disk (window by window): connect to InfiniteTalk Video Combine, or to "
        "InfiniteTalk Frames To Images for a plain IMAGE batch.",
        "Number of frames: exactly the audio's length at its frame rate (or max_frames).",
        "Frame rate of the frames (25 with InfiniteTalk audio embeddings).",
    )
    DESCRIPTION = ("Generates a lip-synced talking video of any length from one image (or a source video for "
                   "dubbing) and InfiniteTalk audio embeddings, window by window. Finished windows go to disk at "
                   "once, memory stays flat, and a rerun with the same inputs resumes after a crash or Cancel.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("INFINITETALK_MODEL", {
                    "tooltip": "Wan2.1 I2V 14B + InfiniteTalk from the InfiniteTalk Model Loader."}),
                "vae": ("VAE", {"tooltip": "The Wan 2.1 VAE (Load VAE: wan_2.1_vae.safetensors)."}),
                "image": ("IMAGE", {
                    "tooltip": "The reference portrait. Several frames (a loaded video) = video-to-video dubbing: "
                               "each window is conditioned on the source frame at its start."}),
                "clip_vision_output": ("CLIP_VISION_OUTPUT", {
                    "tooltip": "CLIP Vision Encode of the image with clip_vision_h (crop 'none' comes closest). It "
                               "encodes the uploaded image; the reference encodes the frame cropped to the output "
                               "size in every window: connect the CLIP vision model to clip_vision (optional input) "
                               "for that. For dubbing, encode the whole video to condition each window on its own "
                               "frame, or one frame for all."}),
                **node_inputs(SamplerSettings, "width", "height", "size_bucket", "frame_window", "motion_frames",
                              "steps", "shift", "cfg", "audio_cfg", "scheduler", "seed", "color_correction",
                              "max_frames"),
            },
            "optional": {
                "audio_embeds": ("INFINITETALK_AUDIO_EMBEDS", {
                    "tooltip": "From InfiniteTalk Audio Embeds. Leave empty for plain Wan image-to-video "
                               "(no lip sync; set max_frames)."}),
                "positive": ("CONDITIONING", {
                    "tooltip": "Prompt from CLIP Text Encode with the umt5-xxl text encoder (empty = no prompt)."}),
                "negative": ("CONDITIONING", {
                    "tooltip": "Negative prompt from CLIP Text Encode (umt5-xxl). The reference uses a default "
                               "negative prompt when none is given; this node cannot encode text, so connect one "
                               "(the example workflows do). Empty with cfg != 1: a warning, and no negative prompt."}),
                "speaker_1_mask": ("MASK", {
                    "tooltip": "Two speakers: where speaker 1 (first audio) is in the image. Default: left half."}),
                "speaker_2_mask": ("MASK", {
                    "tooltip": "Two speakers: where speaker 2 (second audio) is in the image. Default: right half."}),
                "cache": ("INFINITETALK_CACHE", {
                    "tooltip": "Step cache (TeaCache / MagCache) from InfiniteTalk Step Cache: fewer model calls. "
                               "Not connected: off, as the reference."}),
                "guidance": ("INFINITETALK_GUIDANCE", {
                    "tooltip": "From InfiniteTalk Guidance Options: batched or one-by-one guidance passes, APG. "
                               "Not connected: passes batched when memory allows, plain CFG."}),
                "parallel": ("INFINITETALK_PARALLEL", {
                    "tooltip": "Several GPUs, from InfiniteTalk Multi-GPU (guidance split, layer split or "
                               "sequence-parallel workers). Not connected: one GPU."}),
                "frames_folder": (list(FRAMES_FOLDERS), {
                    "default": "temp",
                    "tooltip": "Where finished windows are kept. temp: ComfyUI's temp folder (emptied when ComfyUI "
                               "restarts). output: output/infinitetalk_frames, survives a ComfyUI crash or restart "
                               "so very long runs can resume (delete old runs there yourself)."}),
                "vae_precision": node_input(SamplerSettings, "vae_precision"),
                "audio_scale": node_input(SamplerSettings, "audio_scale"),
                "positive_per_window": (PROMPTS_TYPE, {
                    "tooltip": "A prompt per window from InfiniteTalk Prompts Per Window (prompt k for window k, the "
                               "last for the windows after it). Connected, it replaces positive."}),
                "edit_mask": ("MASK", {
                    "tooltip": "Dubbing: where the picture may change (white), one mask or one per source frame, the "
                               "video's size. Everything else stays the source video's pixels (face-only dubbing). "
                               "Empty: the whole frame is generated, unless face_only is on."}),
                **node_inputs(SamplerSettings, "face_only", "face_margin", "mask_feather"),
                "clip_vision": ("CLIP_VISION", {
                    "tooltip": "Optional: the CLIP vision model (Load CLIP Vision, clip_vision_h). Connected, every "
                               "window's CLIP features are encoded from its conditioning frame as the model sees it "
                               "(cropped to the output size; for dubbing, the window's own frame), as the reference "
                               "does; clip_vision_output is then not used."}),
            },
        }

    def sample(self, model, vae, image, clip_vision_output, audio_embeds=None, positive=None, negative=None,
               speaker_1_mask=None, speaker_2_mask=None, frames_folder="temp", cache=None, guidance=None,
               clip_vision=None, positive_per_window=None, edit_mask=None, parallel=None, **widgets):
        if image is None or len(image) == 0:
            raise InputError("connect an image (or the frames of a source video for dubbing)")
        settings = sampler_settings({**widgets, **speed_settings(cache, guidance)})
        # face_only's detector files, named before any work when missing (one image: refused as "for dubbing" later)
        face_models = face_models_for(edit_mask, settings, detection_model_folders()) if len(image) > 1 else None
        executor, host_loads = parallel_executor(parallel, model)
        context = positive_context(positive, positive_per_window)
        if negative is None and settings.cfg != 1.0:
            warn_no_negative(settings.cfg)
        masks = None
        if speaker_1_mask is not None or speaker_2_mask is not None:
            masks = [mask_tensor(speaker_1_mask), mask_tensor(speaker_2_mask)]

        def run(dit, prepare_model, progress):
            return generate(
                dit,
                HostWanVAE(vae),
                image,
                clip_vision_features(clip_vision_output),
                audio=audio_embeds,
                context=context,
                context_null=conditioning_to_context(negative, "negative"),
                speaker_masks=masks,
                settings=settings,
                store_root=store_root(frames_folder),
                on_progress=progress.on_progress,
                should_stop=host.interrupt_requested,
                prepare_model=prepare_model if host_loads else None,
                parallel=executor,
                clip_encoder=clip_vision_encoder(clip_vision),
                on_window_done=progress.on_window_done,
                edit_mask=edit_mask,
                face_models=face_models,
            )

        store = run_on_host(model, run, unit="window")
        return (store, len(store), float(store.fps))


def positive_context(positive, positive_per_window):
    """The engine's positive prompt: one embedding, or a list (one per window) from positive_per_window."""
    if positive_per_window is None:
        return conditioning_to_context(positive, "positive")
    if positive is not None:
        raise InputError("connect either positive or positive_per_window (a prompt per window), not both")
    return prompts_to_contexts(positive_per_window)


class InfiniteTalkFramesToImages:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "convert"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The frames as an IMAGE batch [frames, height, width, 3] in 0..1.",)
    DESCRIPTION = ("Loads frames of an InfiniteTalk frame store as a plain IMAGE batch, for nodes that need "
                   "images. A long video does not fit in memory: take a slice with start/count.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("INFINITETALK_FRAMES", {"tooltip": "The frames from the InfiniteTalk Sampler."}),
                "start": ("INT", {
                    "default": 0, "min": 0, "max": 10_000_000,
                    "tooltip": "First frame to load (0 = the first)."}),
                "count": ("INT", {
                    "default": 0, "min": 0, "max": 10_000_000,
                    "tooltip": "How many frames to load (0 = all from start). Each 480x832 frame needs ~4.8 MB "
                               "of memory as an IMAGE."}),
            },
        }

    def convert(self, frames, start=0, count=0):
        if not isinstance(frames, FrameStore) and not hasattr(frames, "iter_frames"):
            raise InputError("frames must come from the InfiniteTalk Sampler")
        total = len(frames)
        if start >= total:
            raise InputError(f"start {start} is past the end: the store has {total} frames (0..{total - 1})")
        n = total - start if count == 0 else min(count, total - start)
        out = torch.empty(n, frames.height, frames.width, 3, dtype=torch.float32)
        for i, frame in enumerate(frames.iter_frames(start, n)):
            out[i] = torch.from_numpy(frame).float().div_(255.0)
        return (out,)


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkSampler": InfiniteTalkSampler,
    "InfiniteTalkFramesToImages": InfiniteTalkFramesToImages,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "InfiniteTalkSampler": "InfiniteTalk Sampler",
    "InfiniteTalkFramesToImages": "InfiniteTalk Frames To Images",
}
