"""The sampler's settings (each field an option: see wanvideo/options.py), progress report and the errors the
loop raises on purpose."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import GenerationInterrupted, InputError  # noqa: F401 - GenerationInterrupted: importable here as before
from ..option_checks import check_settings, register_rules, sampler_rules
from ..options import option
from .cache import CacheOptions
from .edit_mask import EditMaskOptions
from .guidance_settings import GuidanceOptions
from .schedules import DEFAULT_SHIFT, SCHEDULERS, normalize_scheduler
from .sizes import ASPECT_BUCKETS
from .windows import check_window

# Motion frames' VAE round trip: "fp32" as the reference (its VAE always runs in float32), or "host": the
# precision the VAE was loaded in (ComfyUI's VAE runs in bf16 on most GPUs: faster, less VRAM, rounding that
# feeds forward from window to window).
VAE_PRECISIONS = ("fp32", "host")


@dataclass
class SamplerSettings(GuidanceOptions, CacheOptions, EditMaskOptions):
    """The InfiniteTalk sampler's options; the speed options (how the guidance passes run, APG, step
    caching) are inherited from GuidanceOptions and CacheOptions, where they are declared."""

    frame_window: int = option(81, min=5, max=1001, step=4, help=(
        "Frames generated per window, of the form 4n+1 (81 = 3.24 s at 25 fps, what the model was trained on; "
        "the reference's value)."))
    motion_frames: int = option(9, min=1, max=1000, step=1, help=(
        "Frames of the previous window fed back as motion context (kept clean) so windows join smoothly; they are "
        "not repeated in the output. Must be below frame_window (reference: 9)."))
    steps: int = option(40, min=1, max=200, help=(
        "Denoising steps per window (40 in the reference; 4-8 with a step-distillation LoRA)."))
    shift: float = option(0.0, min=0.0, max=100.0, step=0.1, help=(
        "Timestep shift of the flow-matching schedule. 0 = the reference's value for the size bucket: 7 for 480p, "
        "11 for 720p."))
    cfg: float = option(5.0, min=0.0, max=30.0, step=0.1, help=(
        "Text guidance scale (reference 5). 1 = no text guidance (two model passes per step instead of three)."))
    audio_cfg: float = option(4.0, min=0.0, max=30.0, step=0.1, help=(
        "Audio guidance scale: how strongly the lips follow the speech (reference 4; 3-5 usual)."))
    audio_scale: float = option(1.0, min=-10.0, max=10.0, step=0.01, help=(
        "Audio strength: multiplies the audio cross-attention's output in every block. 1 = the reference; below 1 "
        "calmer mouth and head motion, above 1 stronger (1.5-2 exaggerates); 0 = the speech has no influence. "
        "Unlike audio_cfg it costs no extra model pass."))
    scheduler: str = option("euler", choices=SCHEDULERS, help=(
        "euler: the reference's flow-matching Euler schedule. unipc / dpm++: diffusers' multistep solvers on the "
        "same schedule (fewer steps for similar quality)."))
    seed: int = option(42, min=0, max=0xFFFFFFFFFFFFFFFF, help=(
        "Noise seed (reference default 42). The first window uses it directly, later windows seeds derived from it."))
    color_correction: float = option(1.0, min=0.0, max=1.0, step=0.05, help=(
        "Pull each window's colours (Lab mean/contrast) toward the reference image: counters colour drift in long "
        "videos. 1 = full (the reference's default), 0 = off."))
    max_frames: int = option(0, min=0, max=10_000_000, help=(
        "0 = as long as the audio. Otherwise at most this many frames (e.g. to preview the start). Without audio "
        "embeddings: the number of frames to make."))
    width: int = option(0, min=0, max=4096, step=16, help=(
        "Output width, a multiple of 16. 0 with height 0: the reference's size bucket closest to the image's aspect "
        "(see size_bucket); the image is scaled to cover and centre-cropped."))
    height: int = option(0, min=0, max=4096, step=16, help="Output height, a multiple of 16 (0 = automatic, see width).")
    size_bucket: str = option("480p", choices=tuple(ASPECT_BUCKETS), help=(
        "Size family for the automatic size (and the automatic shift): 480p (e.g. 448x896, 640x640) for the 480p "
        "model, 720p (e.g. 704x1280, 960x960) for the 720p model."))
    fps: float = option(25.0, min=1.0, max=120.0, step=0.01, help=(
        "Video frame rate. InfiniteTalk was trained at 25 (audio embeddings carry their own rate)."))
    vae_precision: str = option("fp32", choices=VAE_PRECISIONS, help=(
        "Precision of the VAE round trip of each window's motion frames (decode, then encode into the next "
        "window). fp32: as the reference, whose VAE always runs in float32 (a float32 copy of the Wan 2.1 VAE: "
        "+~0.25 GB of VRAM, ~1.5-2x the VAE's time, a small part of a window). host: the VAE as loaded (bf16 in "
        "ComfyUI on most GPUs): its rounding feeds forward from window to window."))

    def validated(self) -> "SamplerSettings":
        check_settings(self)  # the registry's ranges, steps and choices, and the rules between options
        s = SamplerSettings(**asdict(self))
        s.frame_window, s.motion_frames, s.steps = int(s.frame_window), int(s.motion_frames), int(s.steps)
        check_window(s.frame_window, s.motion_frames)
        if s.steps < 1:
            raise InputError(f"steps must be at least 1, got {s.steps}")
        if s.size_bucket not in ASPECT_BUCKETS:
            raise InputError(f"size bucket must be one of {sorted(ASPECT_BUCKETS)}, got {s.size_bucket!r}")
        if s.shift is None or s.shift == 0:
            s.shift = DEFAULT_SHIFT[s.size_bucket]  # the reference: shift follows the size bucket unless set
        s.audio_scale = float(s.audio_scale)
        if not math.isfinite(s.audio_scale):
            raise InputError(f"audio_scale must be a finite number, got {self.audio_scale}")
        for name in ("shift", "cfg", "audio_cfg", "fps"):
            value = float(getattr(s, name))
            if not math.isfinite(value) or value < 0 or (name in ("shift", "fps") and value == 0):
                raise InputError(f"{name} must be a positive number, got {getattr(s, name)}")
            setattr(s, name, value)
        s.scheduler = normalize_scheduler(s.scheduler)
        s.color_correction = float(s.color_correction)
        if not 0.0 <= s.color_correction <= 1.0:
            raise InputError(f"colour correction strength must be between 0 and 1, got {s.color_correction}")
        s.max_frames = int(s.max_frames)
        if s.max_frames < 0:
            raise InputError(f"max_frames must be 0 (whole audio) or more, got {s.max_frames}")
        if s.vae_precision not in VAE_PRECISIONS:
            raise InputError(f"vae_precision must be one of {', '.join(VAE_PRECISIONS)}, got {s.vae_precision!r}")
        s.seed = int(s.seed)
        s.normalize_guidance_options()
        s.normalize_cache_options()
        s.normalize_edit_options()
        return s


register_rules(SamplerSettings, sampler_rules)


# Settings a resumed run may change (same numbers within float tolerance: e.g. sequential passes after an out of
# memory), and settings added later that only enter a run's key when not at their default (old runs still resume).
RESUME_NEUTRAL = ("guidance_batching",)
KEY_WHEN_SET = ("audio_scale", "face_only", "face_margin", "mask_feather", "cache_method", "cache_threshold",
                "cache_start_step", "cache_end_step", "cache_magcache_k", "apg", "apg_momentum", "apg_norm_threshold")


def key_settings(s) -> dict:
    """The settings that decide a run's frames (for the run key), of SamplerSettings or AnimateSettings."""
    defaults = type(s)()
    values = {k: v for k, v in vars(s).items() if k not in RESUME_NEUTRAL}
    if s.cache_method == "none":
        for k in ("cache_threshold", "cache_start_step", "cache_end_step", "cache_magcache_k"):
            values.pop(k)
    if not s.apg:
        values.pop("apg_momentum")
        values.pop("apg_norm_threshold")
    return {k: v for k, v in values.items() if k not in KEY_WHEN_SET or v != getattr(defaults, k)}


@dataclass(frozen=True)
class Progress:
    window: int  # 1-based window being sampled
    windows: int
    step: int  # steps finished in this window (0 = window starting)
    steps: int
    resumed: int = 0  # windows found finished on disk at the start
    unit: str = "window"  # what a window is called in progress text: "window" (InfiniteTalk), "clip" (WanAnimate)
    stage: str = "denoise"  # "denoise", or the VAE's "encode" / "decode" of this window
    chunk: int = 0  # VAE calls finished in this encode/decode (see vae_progress.py)
    chunks: int = 0

    @property
    def text(self) -> str:
        """"window k/n" / "clip k/n": the progress line the nodes and the command line show."""
        return f"{self.unit} {self.window}/{self.windows}"


