"""wanvideo.video: frames (+ audio) to one video file that plays in a browser.

`write_video(frames, path, fps, audio=None, sample_rate=None, **options) -> path` is the entry
point; `encode_video` takes the same arguments and returns a `VideoResult` with details.
"""
from .ffmpeg_locate import ENV_VAR as FFMPEG_ENV_VAR
from .ffmpeg_locate import find_ffmpeg
from .formats import DEFAULT_CRF, DEFAULT_FORMAT, FORMATS, VideoFormat, get_format
from .naming import output_folder, reserve_path, split_prefix
from .writer import LENGTH_POLICIES, WRITERS, EncodingInterrupted, VideoResult, encode_video, write_video

__all__ = [
    "DEFAULT_CRF", "DEFAULT_FORMAT", "FORMATS", "VideoFormat", "get_format",
    "FFMPEG_ENV_VAR", "find_ffmpeg",
    "output_folder", "reserve_path", "split_prefix",
    "LENGTH_POLICIES", "WRITERS", "EncodingInterrupted", "VideoResult", "encode_video", "write_video",
]
