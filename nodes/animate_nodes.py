"""WanAnimate node: InfiniteTalkAnimateSampler (character animation / replacement from a driving clip, any length,
clip by clip, to the same disk frame store as the InfiniteTalk sampler). Its id is pack-unique: it does not collide
with ComfyUI core's WanAnimateToVideo or the wrapper's WanVideoAnimateEmbeds."""
from __future__ import annotations

from ..wanvideo.errors import InputError
from ..wanvideo.options import node_inputs, settings_from_inputs
from ..wanvideo.sampling.animate import AnimateSettings, generate_animate
from . import host
from .host_adapters import HostWanVAE, clip_vision_encoder, clip_vision_features, conditioning_to_context
from .host_run import run_on_host
from .multi_gpu_nodes import parallel_executor
from .sampler_nodes import FRAMES_FOLDERS, speed_settings, store_root

# The node's widgets, in their saved-workflow order (names, defaults, ranges: the engine's AnimateSettings).
SAMPLER_INPUTS = ("width", "height", "clip_len", "refert_frames", "steps", "shift", "cfg", "scheduler", "seed", "fps",
                  "max_frames")


class InfiniteTalkAnimateSampler:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "sample"
    RETURN_TYPES = ("INFINITETALK_FRAMES", "INT", "FLOAT")
    RETURN_NAMES = ("frames", "frame_count", "fps")
    OUTPUT_TOOLTIPS = (
        "The video's frames, on disk (clip by clip): connect to InfiniteTalk Video Combine with the driving "
        "video's audio, or to InfiniteTalk Frames To Images.",
        "Number of frames: exactly the driving video's (or max_frames).",
        "Frame rate of the frames: the fps input (the driving video's rate).",
    )
    DESCRIPTION = ("WanAnimate (Wan2.2-Animate-14B): brings the character image to life with the motion of a driving "
                   "clip (pose video + face crops), or puts the character into the clip in place of its person "
                   "(connect the background video and the person mask). Any length, clip by clip; finished clips go "
                   "to disk at once, memory stays flat, and a rerun with the same inputs resumes after a crash or "
                   "Cancel.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("INFINITETALK_MODEL", {
                    "tooltip": "Wan2.2-Animate-14B from the InfiniteTalk Model Loader (InfiniteTalk file: none)."}),
                "vae": ("VAE", {"tooltip": "The Wan 2.1 VAE (Load VAE: wan_2.1_vae.safetensors)."}),
                "image": ("IMAGE", {
                    "tooltip": "The character. Letterboxed into the output size (black bars), as the official code."}),
                "clip_vision_output": ("CLIP_VISION_OUTPUT", {
                    "tooltip": "CLIP Vision Encode of the character image with clip_vision_h (crop 'none'). It "
                               "encodes the image as uploaded; the official code encodes it letterboxed to the "
                               "output size: connect the CLIP vision model to clip_vision (optional input) for that."}),
                "pose_video": ("IMAGE", {
                    "tooltip": "The driving clip's rendered skeleton frames (official preprocessing, "
                               "ComfyUI-WanAnimatePreprocess or DWPose); resized to the output size. Its length "
                               "is the output's length."}),
                "face_video": ("IMAGE", {
                    "tooltip": "The driving person's face crops, one per frame (square, 512x512 for the released "
                               "model); other sizes are resized to the model's face size."}),
                **node_inputs(AnimateSettings, *SAMPLER_INPUTS),
            },
            "optional": {
                "background_video": ("IMAGE", {
                    "tooltip": "Replacement: the driving clip with its person removed (from the preprocessing). "
                               "Connect with character_mask; leave both empty for animation."}),
                "character_mask": ("MASK", {
                    "tooltip": "Replacement: per frame, where the driving person is (white = person)."}),
                "positive": ("CONDITIONING", {
                    "tooltip": "Prompt (umt5-xxl CLIP Text Encode). Official: '视频中的人在做动作'."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt, used when cfg > 1."}),
                "frames_folder": (list(FRAMES_FOLDERS), {
                    "default": "temp",
                    "tooltip": "Where finished clips are kept: temp (emptied on restart) or output/"
                               "infinitetalk_frames (survives a crash or restart, so long runs can resume)."}),
                "clip_vision": ("CLIP_VISION", {
                    "tooltip": "Optional: the CLIP vision model (Load CLIP Vision, clip_vision_h). Connected, the CLIP "
                               "features are encoded from the character image as the model sees it (letterboxed to "
                               "the output size), as the official code and the command line do; "
                               "clip_vision_output is then not used."}),
                "cache": ("INFINITETALK_CACHE", {
                    "tooltip": "Step cache (TeaCache / MagCache) from InfiniteTalk Step Cache: fewer model calls. "
                               "Calibrated for Wan2.1 I2V 14B, on whose blocks WanAnimate is built (the official "
                               "code has no cache). Not connected: off."}),
                "guidance": ("INFINITETALK_GUIDANCE", {
                    "tooltip": "From InfiniteTalk Guidance Options: with cfg > 1, the two guidance passes batched or "
                               "one by one, APG. Not connected: passes batched when memory allows, plain CFG."}),
                "parallel": ("INFINITETALK_PARALLEL", {
                    "tooltip": "Several GPUs, from InfiniteTalk Multi-GPU (guidance split, layer split or "
                               "sequence-parallel workers). Not connected: one GPU."}),
            },
        }

    def sample(self, model, vae, image, clip_vision_output, pose_video, face_video, background_video=None,
               character_mask=None, positive=None, negative=None, frames_folder="temp", clip_vision=None, cache=None,
               guidance=None, parallel=None, **widgets):
        if image is None or len(image) == 0:
            raise InputError("connect the character image")
        executor, host_loads = parallel_executor(parallel, model)
        settings = settings_from_inputs(AnimateSettings, {**widgets, **speed_settings(cache, guidance)},
                                        "Animate sampler")
        def run(dit, prepare_model, progress):
            return generate_animate(
                dit, HostWanVAE(vae), image, clip_vision_features(clip_vision_output), pose_video, face_video,
                background=background_video, mask=character_mask,
                context=conditioning_to_context(positive, "positive"),
                context_null=conditioning_to_context(negative, "negative"),
                settings=settings, store_root=store_root(frames_folder), on_progress=progress.on_progress,
                should_stop=host.interrupt_requested, prepare_model=prepare_model if host_loads else None,
                parallel=executor,
                clip_encoder=clip_vision_encoder(clip_vision), on_window_done=progress.on_window_done,
            )

        store = run_on_host(model, run, unit="clip")
        return (store, len(store), float(store.fps))


NODE_CLASS_MAPPINGS = {"InfiniteTalkAnimateSampler": InfiniteTalkAnimateSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"InfiniteTalkAnimateSampler": "InfiniteTalk Animate Sampler (WanAnimate)"}
