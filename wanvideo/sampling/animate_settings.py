"""WanAnimate sampler settings: each field an option (see wanvideo/options.py), so the Animate sampler node and
`python -m wanvideo animate` are built from these declarations.

Defaults are the official `generate.py`'s for Wan2.2-Animate-14B: clip length 77, 1 refert frame, 20 steps,
shift 5, guidance 1 (one model pass per step), UniPC, 30 fps. The speed options (how the guidance passes run, APG,
step caching) are the InfiniteTalk sampler's, inherited from GuidanceOptions and CacheOptions; the official code
has none of them, so all are off (passes batched when memory allows) by default.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError
from ..option_checks import animate_rules, check_settings, register_rules
from ..options import option
from .animate_clips import DEFAULT_CLIP_LEN, REFERT_CHOICES, check_clip
from .cache import CacheOptions
from .guidance_settings import GuidanceOptions
from .schedules import SCHEDULERS, normalize_scheduler
from .settings import VAE_PRECISIONS


@dataclass
class AnimateSettings(GuidanceOptions, CacheOptions):
    """The WanAnimate sampler's options (InfiniteTalk Animate Sampler node, `python -m wanvideo animate`)."""

    clip_len: int = option(DEFAULT_CLIP_LEN, min=5, max=1001, step=4, help=(
        "Frames per clip, of the form 4n+1 (77 = the official length)."))
    refert_frames: int = option(1, min=min(REFERT_CHOICES), max=max(REFERT_CHOICES), step=4, choices=REFERT_CHOICES,
                                help=("Frames of the previous clip carried into the next: 1 or 5 (what the model was "
                                      "trained with). 5 joins clips more smoothly."))
    steps: int = option(20, min=1, max=200, help=(
        "Denoising steps per clip: 20 (official); 4-8 with a lightx2v LoRA and cfg 1."))
    shift: float = option(5.0, min=0.01, max=100.0, step=0.1, help="Timestep shift of the schedule (official 5).")
    cfg: float = option(1.0, min=1.0, max=30.0, step=0.1, help=(
        "Guidance scale. 1 (official default) = one model pass per step. Above 1 adds a pass "
        "with the negative prompt and no face: stronger expressions, twice the time."))
    scheduler: str = option("unipc", choices=SCHEDULERS, help=(
        "unipc (official command line), dpm++ (official class default), euler."))
    # 42 on the node and the command line, as the InfiniteTalk sampler's (one seed default across the pack).
    seed: int = option(42, min=0, max=0xFFFFFFFFFFFFFFFF, help=(
        "Noise seed. The first clip uses it directly, later clips seeds derived from it."))
    width: int = option(0, min=0, max=4096, step=16, help=(
        "Output width (multiple of 16). 0 with height 0: the pose video's size."))
    height: int = option(0, min=0, max=4096, step=16, help=(
        "Output height (multiple of 16). 0 with width 0: the pose video's size."))
    fps: float = option(30.0, min=1.0, max=240.0, step=0.001, help=(
        "The driving video's frame rate (the official preprocessing resamples to 30). The "
        "output keeps it, so the driving video's sound stays in sync."))
    max_frames: int = option(0, min=0, max=10_000_000, help=(
        "0 = the whole driving video. Otherwise at most this many frames (a preview)."))
    # "host" by default: the Animate sampler has always run its VAE as loaded; "fp32" is the official precision.
    vae_precision: str = option("host", choices=VAE_PRECISIONS, help=(
        "Precision of the VAE's encodes and decodes of each clip. host: the VAE as loaded (bf16 in ComfyUI on most "
        "GPUs). fp32: as the official code, whose VAE runs in float32 (a float32 copy of the Wan 2.1 VAE: +~0.25 GB "
        "of VRAM, ~1.5-2x the VAE's time); the refert frames' rounding no longer feeds forward from clip to clip."))

    def validated(self) -> "AnimateSettings":
        check_settings(self)  # the registry's ranges, steps and choices, and the rules between options
        s = AnimateSettings(**asdict(self))
        s.clip_len, s.refert_frames, s.steps = int(s.clip_len), int(s.refert_frames), int(s.steps)
        check_clip(s.clip_len, s.refert_frames)
        if s.steps < 1:
            raise InputError(f"steps must be at least 1, got {s.steps}")
        for name in ("shift", "cfg", "fps"):
            value = float(getattr(s, name))
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{name} must be a positive number, got {getattr(s, name)}")
            setattr(s, name, value)
        s.scheduler = normalize_scheduler(s.scheduler)
        s.seed, s.width, s.height, s.max_frames = int(s.seed), int(s.width), int(s.height), int(s.max_frames)
        if s.width < 0 or s.height < 0 or s.max_frames < 0:
            raise InputError("width, height and max_frames must be 0 (automatic) or positive")
        if s.vae_precision not in VAE_PRECISIONS:
            raise InputError(f"vae_precision must be one of {', '.join(VAE_PRECISIONS)}, got {s.vae_precision!r}")
        s.normalize_guidance_options()
        s.normalize_cache_options()
        return s


register_rules(AnimateSettings, animate_rules)
