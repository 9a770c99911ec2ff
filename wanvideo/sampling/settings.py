"""The sampler's settings, progress report and the errors the loop raises on purpose."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError, WanVideoError
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
        return s


@dataclass(frozen=True)
class Progress:
    window: int  # 1-based window being sampled
    windows: int
    step: int  # steps finished in this window (0 = window starting)
    steps: int
    resumed: int = 0  # windows found finished on disk at the start


class GenerationInterrupted(WanVideoError):
    """The run was stopped on request; every finished window is kept in `store` and a rerun resumes."""

    def __init__(self, message: str, store=None):
        super().__init__(message)
        self.store = store
