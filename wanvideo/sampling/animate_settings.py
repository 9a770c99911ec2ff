"""WanAnimate sampler settings: names, defaults and ranges defined once (nodes and the CLI are built from them).

Defaults are the official `generate.py`'s for Wan2.2-Animate-14B: clip length 77, 1 refert frame, 20 steps,
shift 5, guidance 1 (one model pass per step), UniPC, 30 fps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError
from .animate_clips import DEFAULT_CLIP_LEN, check_clip
from .schedules import normalize_scheduler


@dataclass
class AnimateSettings:
    clip_len: int = DEFAULT_CLIP_LEN  # frames per clip (4n+1)
    refert_frames: int = 1  # frames of the previous clip carried into the next: 1 or 5
    steps: int = 20
    shift: float = 5.0
    cfg: float = 1.0  # >1: a second pass with the negative prompt and no face (expression control)
    scheduler: str = "unipc"  # unipc (official CLI) | dpm++ | euler
    seed: int = 0
    width: int = 0  # 0 with height 0 = the pose video's size (multiples of 16)
    height: int = 0
    fps: float = 30.0  # the driving video's frame rate (the output keeps it)
    max_frames: int = 0  # 0 = the whole driving video

    def validated(self) -> "AnimateSettings":
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
        return s
