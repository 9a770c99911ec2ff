"""Clip bookkeeping of the WanAnimate loop (Wan2.2 `WanAnimate.generate`), as windows of the one window loop.

The driving video (real_len frames) is padded to `valid_length` by reflection (…, n−2, n−1, n−2, …: the
edge frame is not repeated). Clips of `clip_len` (4n+1) frames start at 0 and advance by clip_len − refert;
a clip is made while start + refert < padded length. Every clip after the first re-generates the previous
clip's last `refert` decoded frames as its given ("refert") frames and drops them from its output; the
concatenated output is cut back to real_len. Shared/fixtures `animate_clips.json` holds the official plans.

Each clip is a `windows.Window`: start, length = clip_len, drop = refert frames (0 for the first clip, which
is also the clip's `mask_reft_len`), keep = its frames that land inside the driving length.
"""
from __future__ import annotations

from ..errors import InputError
from .windows import Window

DEFAULT_CLIP_LEN = 77
REFERT_CHOICES = (1, 5)


def check_clip(clip_len: int, refert: int) -> None:
    if clip_len < 5 or (clip_len - 1) % 4:
        lower = max(5, (clip_len - 1) // 4 * 4 + 1)
        raise InputError(
            f"clip length {clip_len} is not of the form 4n+1 (at least 5): use {lower} or {lower + 4} (default 77)"
        )
    if refert not in REFERT_CHOICES:
        raise InputError(f"refert frames must be 1 or 5 (the values WanAnimate was trained with), got {refert}")
    if refert >= clip_len:
        raise InputError(f"refert frames ({refert}) must be fewer than the clip length ({clip_len})")


def valid_length(real_len: int, clip_len: int = DEFAULT_CLIP_LEN, refert: int = 1) -> int:
    """The official `get_valid_len`: real_len padded so that the clips tile it exactly."""
    step = clip_len - refert
    last = (real_len - refert) % step
    return real_len + (0 if last == 0 else step - last)


def padded_source_index(real_len: int, target_len: int) -> list[int]:
    """Driving frame behind each padded frame: 0, 1, …, n−1, n−2, …, 1, 0, 1, … (the official inputs_padding)."""
    if real_len < 2 and target_len > real_len:
        raise InputError("the driving video needs at least 2 frames")
    out: list[int] = []
    idx, step = 0, 1
    while len(out) < target_len:
        out.append(idx)
        idx += step
        if idx == 0 or idx == real_len - 1:
            step = -step
    return out


def plan_clips(real_len: int, clip_len: int = DEFAULT_CLIP_LEN, refert: int = 1) -> tuple[list[Window], int]:
    """(clips as Windows, padded length) for a driving video of `real_len` frames."""
    real_len, clip_len, refert = int(real_len), int(clip_len), int(refert)
    check_clip(clip_len, refert)
    if real_len <= refert:
        raise InputError(
            f"the driving video has {real_len} frame(s); WanAnimate needs more than the {refert} refert frame(s)"
        )
    target = valid_length(real_len, clip_len, refert)
    clips: list[Window] = []
    start = 0
    while start + refert < target:
        drop = 0 if start == 0 else refert
        first_out = start + drop
        keep = max(0, min(start + clip_len, real_len) - first_out)
        clips.append(Window(len(clips), start, clip_len, drop, keep, drop))
        start += clip_len - refert
    return clips, target
