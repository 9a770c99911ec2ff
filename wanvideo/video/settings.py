"""The video file's options (InfiniteTalk Video Combine): frame rate of an IMAGE batch, container/codec, quality
and how sound and frames are fitted; each field an option (see wanvideo/options.py)."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from .formats import DEFAULT_CRF, DEFAULT_FORMAT, FORMATS
from .writer import LENGTH_POLICIES


@dataclass
class VideoSettings:
    frame_rate: float = option(25.0, min=0.01, max=240.0, step=0.01, help=(
        "Frames per second of the video. InfiniteTalk makes 25. Ignored when `frames` "
        "(INFINITETALK_FRAMES) is connected: the sampler's own rate is used so lips stay in sync."))
    format: str = option(DEFAULT_FORMAT, choices=tuple(FORMATS), help=(
        "h264-mp4: H.264 + AAC, plays everywhere (default). h265-mp4: smaller files, H.265 + "
        "AAC (Safari/Edge, newer Chrome). vp9-webm: VP9 + Opus WebM."))
    crf: int = option(DEFAULT_CRF, min=0, max=63, step=1, help=(
        "Quality: lower is better and bigger. 19 is visually lossless for H.264; H.264/H.265 "
        "accept 0-51, VP9 0-63 (try 30 for VP9)."))
    length_policy: str = option(LENGTH_POLICIES[0], choices=LENGTH_POLICIES, help=(
        "fit_audio_to_video: keep every frame; the audio is padded with silence or cut to the "
        "video's exact length. trim_video_to_audio: drop the frames after the audio ends."))
