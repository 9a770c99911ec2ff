"""The preprocessing's options (see wanvideo/options.py): the official preprocess_data.py arguments, declared once
for the InfiniteTalk Animate Preprocess node and `python -m wanvideo animate-preprocess`."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError
from ..options import option

MODES = ("animate", "replace")


@dataclass
class PreprocessSettings:
    driving_fps: float = option(30.0, min=1.0, max=240.0, step=0.001, help=(
        "Frame rate of the driving video (connect the fps of the video loader); with preprocess_fps it "
        "decides which frames are used."))
    mode: str = option("animate", choices=MODES, help=(
        "animate: the character moves like the driver (pose drawn at the character's size, retargeted). "
        "replace: the character takes the driver's place in the clip (adds background and mask videos)."))
    resolution_width: int = option(1280, min=64, max=4096, step=16, help=(
        "With resolution_height, the pixel area of the outputs (official 1280x720); the aspect ratio is the "
        "character's (animate) or the clip's (replace), sides multiples of 16."))
    resolution_height: int = option(720, min=64, max=4096, step=16, help="See resolution_width (official 720).")
    preprocess_fps: float = option(30.0, min=-1.0, max=240.0, step=0.001, help=(
        "Frame rate the driving clip is resampled to (official 30, what the model was trained on); -1 keeps "
        "the clip's own rate."))
    retarget: bool = option(True, help=(
        "animate: rescale the driver's bones to the character's proportions (the official guide's "
        "--retarget_flag). Off: the driver's skeleton as it is, letterboxed."))
    mask_kernel: int = option(7, min=1, max=51, help="replace: dilation kernel of the person mask (official 7).")
    mask_iterations: int = option(3, min=0, max=20, help=(
        "replace: dilation passes (official 3); 0 = the SAM2 mask as it is, without dilation or grid."))
    mask_grid_w: int = option(1, min=1, max=64, help=(
        "replace: columns of the coarse grid laid over the mask's box (official 1 = the whole box)."))
    mask_grid_h: int = option(1, min=1, max=64, help="replace: rows of that grid (official 1).")

    def validated(self) -> "PreprocessSettings":
        s = PreprocessSettings(**asdict(self))
        if s.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {s.mode!r}")
        s.preprocess_fps, s.driving_fps = float(s.preprocess_fps), float(s.driving_fps)
        if not math.isfinite(s.driving_fps) or s.driving_fps <= 0:
            raise InputError(f"driving_fps must be positive, got {s.driving_fps}")
        if not math.isfinite(s.preprocess_fps) or (s.preprocess_fps <= 0 and s.preprocess_fps != -1):
            raise InputError(f"preprocess_fps must be positive or -1 (the clip's rate), got {s.preprocess_fps}")
        for name in ("resolution_width", "resolution_height", "mask_kernel", "mask_grid_w", "mask_grid_h"):
            if int(getattr(s, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(s, name)}")
        if int(s.mask_iterations) < 0:
            raise InputError(f"mask_iterations must be 0 or more, got {s.mask_iterations}")
        return s

    @property
    def area(self) -> tuple[int, int]:
        return (int(self.resolution_width), int(self.resolution_height))
