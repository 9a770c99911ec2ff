"""Read back what a finished video file really holds, before it is renamed into place.

What the writer reports (frame count, duration, sound) comes from here, not from what was
sent to the encoder: an encoder that exits 0 after writing junk, drops the audio stream or
stops early is caught before the file replaces anything.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..errors import VideoWriteError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileFacts:
    frames: int
    fps: float
    width: int
    height: int
    video_codec: str
    has_audio: bool
    audio_seconds: float

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def _count_packets(container, stream) -> int:
    return sum(1 for packet in container.demux(stream) if packet.size)


def read_facts(path: str) -> FileFacts:
    """Frames, rate, size and sound of a video file, from its container (packets counted, nothing decoded)."""
    import av

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise VideoWriteError(f"the encoder wrote no data to {path}")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoWriteError(f"{path} has no video stream")
            video = container.streams.video[0]
            rate = video.average_rate or video.guessed_rate or video.base_rate
            frames = int(video.frames or 0)
            if frames <= 0:  # WebM/Matroska headers carry no frame count: count the packets
                frames = _count_packets(container, video)
            has_audio = bool(container.streams.audio)
            audio_seconds = 0.0
            if has_audio:
                audio = container.streams.audio[0]
                if audio.duration is not None and audio.time_base is not None:
                    audio_seconds = float(audio.duration * audio.time_base)
                elif container.duration is not None:
                    audio_seconds = container.duration / 1_000_000
            return FileFacts(frames=frames, fps=float(rate) if rate else 0.0,
                             width=int(video.codec_context.width), height=int(video.codec_context.height),
                             video_codec=str(video.codec_context.name), has_audio=has_audio,
                             audio_seconds=audio_seconds)
    except VideoWriteError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoWriteError(f"{path} is not a readable video ({exc})") from None


def verify_video(path: str, frames: int, with_audio: bool) -> FileFacts:
    """The facts of `path`, or VideoWriteError when it does not hold `frames` frames (and a sound track if wanted)."""
    facts = read_facts(path)
    if facts.frames != frames:
        raise VideoWriteError(f"the encoder was given {frames} frames but the file holds {facts.frames}")
    if with_audio and not facts.has_audio:
        raise VideoWriteError("the encoder was given the audio but the file has no sound track")
    return facts
