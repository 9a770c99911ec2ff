"""The sampler's settings, progress report and the errors the loop raises on purpose."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError, WanVideoError
from .apg import APG_MOMENTUM, APG_NORM_THRESHOLD
from .cache import MAGCACHE_K, CacheSettings
from .guidance import BATCH_MODES
from .schedules import normalize_scheduler
from .sizes import ASPECT_BUCKETS
from .windows import check_window


@dataclass
class SamplerSettings:
    frame_window: int = 81  # frames per window (4n+1)
    motion_frames: int = 9  # frames of the previous window fed back as motion context
    steps: int = 40
    shift: float = 7.0  # reference: 7 for 480p, 11 for 720p
    cfg: float = 5.0  # text guidance scale
    audio_cfg: float = 4.0  # audio guidance scale
    scheduler: str = "euler"  # euler (reference) | unipc | dpm++
    seed: int = 0
    color_correction: float = 0.0  # 0..1, pull each window's colours toward the reference image
    max_frames: int = 0  # 0 = as long as the audio
    width: int = 0  # 0 with height 0 = the reference's aspect bucket for the image
    height: int = 0
    size_bucket: str = "480p"  # bucket set for the automatic size: 480p or 720p
    fps: float = 25.0  # frame rate when there are no audio embeddings (they carry their own)
    # speed (issue 13): how the guidance passes run, step caching, adaptive projected guidance
    guidance_batching: str = "auto"  # auto | batched | sequential (same numbers within float tolerance)
    cache_method: str = "none"  # none | teacache | magcache
    cache_threshold: float = -1.0  # < 0: the method's default (TeaCache 0.2, MagCache 0.12); 0: never skip
    cache_start_step: int = -1  # first step that may be skipped (< 0: TeaCache 5, MagCache 20 % of the steps)
    cache_end_step: int = -1  # last step that may be skipped (< 0: the last)
    cache_magcache_k: int = MAGCACHE_K  # MagCache: most calls skipped in a row
    apg: bool = False  # adaptive projected guidance instead of plain CFG (reference: off)
    apg_momentum: float = APG_MOMENTUM
    apg_norm_threshold: float = APG_NORM_THRESHOLD

    def cache_settings(self) -> CacheSettings:
        return CacheSettings(self.cache_method, self.cache_threshold, self.cache_start_step, self.cache_end_step,
                             self.cache_magcache_k)

    def validated(self) -> "SamplerSettings":
        s = SamplerSettings(**asdict(self))
        s.frame_window, s.motion_frames, s.steps = int(s.frame_window), int(s.motion_frames), int(s.steps)
        check_window(s.frame_window, s.motion_frames)
        if s.steps < 1:
            raise InputError(f"steps must be at least 1, got {s.steps}")
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
        if s.size_bucket not in ASPECT_BUCKETS:
            raise InputError(f"size bucket must be one of {sorted(ASPECT_BUCKETS)}, got {s.size_bucket!r}")
        s.seed = int(s.seed)
        s.guidance_batching = str(s.guidance_batching).strip().lower()
        if s.guidance_batching not in BATCH_MODES:
            raise InputError(f"guidance batching must be one of {', '.join(BATCH_MODES)}, got {s.guidance_batching!r}")
        cache = s.cache_settings().validated()
        s.cache_method, s.cache_threshold, s.cache_magcache_k = cache.method, cache.threshold, cache.magcache_k
        s.cache_start_step, s.cache_end_step = cache.start_step, cache.end_step
        s.apg = bool(s.apg)
        s.apg_momentum, s.apg_norm_threshold = float(s.apg_momentum), float(s.apg_norm_threshold)
        if not (math.isfinite(s.apg_momentum) and math.isfinite(s.apg_norm_threshold)) or s.apg_norm_threshold < 0:
            raise InputError(f"APG momentum must be a number and its norm threshold 0 or more, got "
                             f"{s.apg_momentum} and {s.apg_norm_threshold}")
        return s


# Settings a resumed run may change (same numbers within float tolerance: e.g. sequential passes after an out of
# memory), and settings added later that only enter a run's key when not at their default (old runs still resume).
RESUME_NEUTRAL = ("guidance_batching",)
KEY_WHEN_SET = ("cache_method", "cache_threshold", "cache_start_step", "cache_end_step", "cache_magcache_k", "apg",
                "apg_momentum", "apg_norm_threshold")


def key_settings(s: SamplerSettings) -> dict:
    """The settings that decide a run's frames (for the run key)."""
    defaults = SamplerSettings()
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

    @property
    def text(self) -> str:
        """"window k/n" / "clip k/n": the progress line the nodes and the command line show."""
        return f"{self.unit} {self.window}/{self.windows}"


class GenerationInterrupted(WanVideoError):
    """The run was stopped on request; every finished window is kept in `store` and a rerun resumes."""

    def __init__(self, message: str, store=None):
        super().__init__(message)
        self.store = store
