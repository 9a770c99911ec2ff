"""The output formats Video Combine writes, and the codec settings behind each name.

Format names are stored in users' workflows (the node's `format` widget): never rename one.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class VideoFormat:
    name: str
    extension: str  # without the dot
    container: str  # ffmpeg muxer name
    mime: str
    video_encoder: str  # ffmpeg / PyAV encoder name
    audio_encoder: str
    audio_bitrate: str
    crf_max: int
    cv2_fourccs: tuple  # cv2 fallback codes, best first (only the first that opens is used)

    @property
    def is_mp4(self) -> bool:
        return self.container == "mp4"

    def audio_rate(self, input_rate: int) -> int:
        """Output sample rate: 48 kHz (what every browser decodes) unless the input is already 44.1/48 kHz AAC-friendly."""
        if self.audio_encoder == "aac" and input_rate in (44100, 48000):
            return input_rate
        return 48000


FORMATS = {
    "h264-mp4": VideoFormat(
        name="h264-mp4", extension="mp4", container="mp4", mime="video/mp4",
        video_encoder="libx264", audio_encoder="aac", audio_bitrate="192k", crf_max=51,
        cv2_fourccs=("avc1", "mp4v"),
    ),
    "h265-mp4": VideoFormat(
        name="h265-mp4", extension="mp4", container="mp4", mime="video/mp4",
        video_encoder="libx265", audio_encoder="aac", audio_bitrate="192k", crf_max=51,
        cv2_fourccs=("hvc1", "avc1", "mp4v"),
    ),
    "vp9-webm": VideoFormat(
        name="vp9-webm", extension="webm", container="webm", mime="video/webm",
        video_encoder="libvpx-vp9", audio_encoder="libopus", audio_bitrate="128k", crf_max=63,
        cv2_fourccs=("VP90", "VP80"),
    ),
}

DEFAULT_FORMAT = "h264-mp4"
DEFAULT_CRF = 19


def get_format(name: str | None, path: str | None = None) -> VideoFormat:
    """The format called `name`; without a name, the one matching `path`'s extension (.webm -> vp9, else h264)."""
    if name is None:
        if path is not None and str(path).lower().endswith(".webm"):
            return FORMATS["vp9-webm"]
        return FORMATS[DEFAULT_FORMAT]
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown video format {name!r}: use one of {', '.join(FORMATS)}") from None


def check_crf(fmt: VideoFormat, crf) -> int:
    try:
        value = int(crf)
    except (TypeError, ValueError):
        raise InputError(f"crf must be a whole number, got {crf!r}") from None
    if value != crf or not 0 <= value <= fmt.crf_max:
        raise InputError(
            f"crf {crf} is out of range for {fmt.name}: use 0..{fmt.crf_max} "
            "(lower = better quality and bigger file; 19 is visually lossless for H.264)"
        )
    return value
