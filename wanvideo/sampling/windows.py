"""Window bookkeeping of the long-video loop: which frames each window makes, keeps, and hears.

The reference (`generate_infinitetalk`) generates `frame_window` frames per
window. The first window starts at frame 0 and keeps everything; each later
window starts `frame_window − motion_frames` frames after the previous one,
re-generates the previous window's last `motion_frames` frames as its clean
motion context and drops them. A window is the last one once its end reaches
the wanted length. Audio: video frame f of a window starting at s hears the
embedding rows s + f − 2 … s + f + 2, clamped to the embedding; for the last
window, when its end reaches the embedding length, the embedding is first
extended by its last (end − length + 3) rows in reverse order, so windows near
the end reflect instead of clamp (shared/fixtures `streaming_example`).

Unlike the reference the output is exactly `total_frames` long: overshoot in
the last window is generated (as the reference does) and dropped, and a total
shorter than one window shrinks the single window to the smallest 4n+1 length
covering it instead of failing.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # output frame index (= audio row) of the window's first generated frame
    length: int  # frames generated (4n+1)
    drop: int  # leading frames dropped (the motion overlap): 0 for the first window
    keep: int  # frames kept after the drop (the last window may keep fewer than length - drop)
    motion_frames: int  # frames of motion context fed in (1 = the reference image for the first window)

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def first_kept(self) -> int:
        """Output frame index of the first kept frame."""
        return self.start + self.drop


def check_window(frame_window: int, motion_frames: int, vae_stride_t: int = 4) -> None:
    """Clear errors for windows the model cannot take."""
    if frame_window < 1 or (frame_window - 1) % vae_stride_t:
        lower = max(1, (frame_window - 1) // vae_stride_t * vae_stride_t + 1)
        raise InputError(
            f"frame_window {frame_window} is not of the form {vae_stride_t}n+1 (the video VAE packs "
            f"{vae_stride_t} frames per latent frame after the first); use {lower} or "
            f"{lower + vae_stride_t} (default 81)"
        )
    if motion_frames < 1:
        raise InputError(f"motion_frames must be at least 1, got {motion_frames} (default 9)")
    if motion_frames >= frame_window:
        raise InputError(
            f"motion_frames ({motion_frames}) must be smaller than frame_window ({frame_window}): each window "
            f"re-generates motion_frames frames of the previous one and needs new frames after them "
            f"(defaults: frame_window 81, motion_frames 9)"
        )


def covering_window(frames: int, vae_stride_t: int = 4) -> int:
    """Smallest 4n+1 length holding `frames` frames."""
    frames = max(1, int(frames))
    return 1 + vae_stride_t * ((frames - 1 + vae_stride_t - 1) // vae_stride_t)


def plan_windows(total_frames: int, frame_window: int, motion_frames: int, vae_stride_t: int = 4) -> list[Window]:
    """The windows that produce exactly `total_frames` frames, in order."""
    check_window(frame_window, motion_frames, vae_stride_t)
    total_frames = int(total_frames)
    if total_frames < 1:
        raise InputError("nothing to generate: the video would have 0 frames (is the audio empty?)")
    first_len = frame_window if total_frames >= frame_window else covering_window(total_frames, vae_stride_t)
    windows = [Window(0, 0, first_len, 0, min(first_len, total_frames), 1)]
    advance = frame_window - motion_frames
    while windows[-1].end < total_frames:
        prev = windows[-1]
        start = prev.start + advance
        keep = min(frame_window - motion_frames, total_frames - (start + motion_frames))
        windows.append(Window(prev.index + 1, start, frame_window, motion_frames, keep, motion_frames))
    return windows


def audio_rows(window: Window, embedding_length: int, audio_window: int = 5) -> torch.Tensor:
    """int64 [window.length, audio_window]: the embedding row feeding each frame of the window.

    Rows are indices into the original embedding; the reference's reflection at
    the end is applied when the window's end reaches `embedding_length`.
    """
    n = int(embedding_length)
    if n < 1:
        raise InputError("the audio embeddings are empty: the audio has no frames")
    half = audio_window // 2
    centre = torch.arange(window.start, window.end).unsqueeze(1) + torch.arange(-half, half + 1).unsqueeze(0)
    if window.end >= n:
        # extended = rows 0..n-1 then the last `miss` rows reversed (fewer if the embedding is shorter)
        miss = window.end - n + 3
        tail = torch.arange(n)[-miss:].flip(0)
        mapping = torch.cat([torch.arange(n), tail])
    else:
        mapping = torch.arange(n)
    return mapping[centre.clamp(0, mapping.numel() - 1)]


def gather_audio(speakers: list[torch.Tensor], window: Window, audio_window: int = 5) -> torch.Tensor:
    """[speakers, window.length, audio_window, layers, channels] for the model's `audio` argument."""
    rows = audio_rows(window, speakers[0].shape[0], audio_window)
    return torch.stack([emb[rows] for emb in speakers], dim=0)
