"""write_video: frames (+ audio) in, one finished video file out.

Picks the first writer that can encode the format (ffmpeg program -> PyAV -> cv2 -> imageio),
streams the frames into it one by one, and makes sure that whatever happens (bad frame,
encoder crash, interrupt) the frames already encoded stay on disk, playable where possible,
with the audio beside them as a WAV if it could not be muxed in.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .. import outputs
from ..contracts import VideoWriter
from ..errors import InputError, Interrupted, NonFiniteError, OutputError, VideoWriteError
from . import ffmpeg_locate
from .audio_track import AudioTrack, fps_fraction, prepare_audio
from .fallback_writers import Cv2Writer, ImageioWriter, PyAVWriter
from .ffmpeg_writer import FfmpegWriter
from .formats import DEFAULT_CRF, VideoFormat, check_crf, get_format
from .frames import FramesToEncode
from .metadata import metadata_strings
from .naming import sibling_path
from .verify import read_facts, verify_video

log = logging.getLogger(__name__)

LENGTH_POLICIES = ("fit_audio_to_video", "trim_video_to_audio")
WRITERS = ("ffmpeg", "pyav", "cv2", "imageio")
FIX_HINT = ("To get an H.264 MP4 with sound that plays everywhere: install imageio-ffmpeg into ComfyUI's Python "
            "(`python -m pip install imageio-ffmpeg`) or set WANVIDEO_FFMPEG=/path/to/ffmpeg.")


class EncodingInterrupted(Interrupted):
    """Encoding was stopped by the interrupt check; `path` holds the playable video of the frames written."""

    def __init__(self, message: str, path: str | None, frames: int):
        super().__init__(message)
        self.path = path
        self.frames = frames


@dataclass
class VideoResult:
    path: str
    frames: int
    fps: float
    width: int
    height: int
    format: str
    writer: str
    browser_playable: bool
    has_audio: bool
    notes: list = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.frames / self.fps


# -- writer selection ---------------------------------------------------------------------------

_PREFLIGHT: dict = {}


def _preflight(ffmpeg: str, fmt: VideoFormat, audio_key, use_fd_pipes: bool, temp_dir: str) -> str | None:
    """Encode 3 tiny frames (+0.2 s of silence) with the real settings: None if that works, else ffmpeg's complaint."""
    key = (ffmpeg, fmt, audio_key, use_fd_pipes)
    if key in _PREFLIGHT:
        return _PREFLIGHT[key]
    os.makedirs(temp_dir, exist_ok=True)
    path = os.path.join(temp_dir, f"wanvideo_preflight_{uuid.uuid4().hex}.{fmt.extension}")
    fps = Fraction(25)
    track = None
    if audio_key is not None:
        rate, channels = audio_key
        track = AudioTrack(np.zeros((channels, max(1, rate // 5)), np.float32), rate, fps)
    writer = FfmpegWriter(ffmpeg, path, fmt, 16, 16, fps, crf=30, preset="ultrafast", audio=track,
                          metadata={"comment": "preflight"}, use_fd_pipes=use_fd_pipes, temp_dir=temp_dir,
                          expected_frames=3)
    error = None
    try:
        writer.open()
        frame = np.zeros((16, 16, 3), np.uint8)
        for _ in range(3):
            writer.write(frame)
        writer.finish()
        verify_video(path, 3, audio_key is not None)
    except VideoWriteError as exc:
        writer.abort()
        error = str(exc)
    finally:
        if os.path.exists(path):
            os.remove(path)
    if error is None:
        _PREFLIGHT[key] = None  # only successes are remembered: a failure may be passing (disk full, ...)
    else:
        log.debug("ffmpeg preflight failed for %s: %s", fmt.name, error)
    return error


def _pick_writer(choice: str, fmt: VideoFormat, track: AudioTrack | None, use_fd_pipes: bool, temp_dir: str,
                 excluded=frozenset()):
    """(writer name, ffmpeg path or None, audio muxable, reasons the better writers were skipped).

    `excluded`: (name, ffmpeg path or None) pairs that already failed on this video.
    """
    names = WRITERS if choice == "auto" else (choice,)
    skipped: list[str] = []
    audio_key = (track.sample_rate, track.channels) if track is not None else None
    for name in names:
        if name == "ffmpeg":
            video_only = None
            binaries = ffmpeg_locate.usable_ffmpegs()
            if not binaries:
                skipped.append("no ffmpeg program found (WANVIDEO_FFMPEG, imageio-ffmpeg, PATH)")
            for binary in binaries:
                if (name, binary) in excluded:
                    continue
                error = _preflight(binary, fmt, None, use_fd_pipes, temp_dir)
                if error is not None:
                    skipped.append(f"ffmpeg {binary} cannot encode {fmt.name}: {error}")
                    continue
                if audio_key is None:
                    return name, binary, False, skipped
                audio_error = _preflight(binary, fmt, audio_key, use_fd_pipes, temp_dir)
                if audio_error is None:
                    return name, binary, True, skipped
                skipped.append(f"ffmpeg {binary} cannot add {fmt.audio_encoder} audio: {audio_error}")
                video_only = video_only or binary
            if video_only is not None:
                return name, video_only, False, skipped
            continue
        if (name, None) in excluded:
            continue
        cls: type[PyAVWriter | Cv2Writer | ImageioWriter] = {"pyav": PyAVWriter, "cv2": Cv2Writer,
                                                               "imageio": ImageioWriter}[name]
        why_not = cls.available(fmt, with_audio=False)
        if why_not is not None:
            skipped.append(why_not)
            continue
        audio_ok = name == "pyav" and track is not None and PyAVWriter.available(fmt, with_audio=True) is None
        return name, None, audio_ok, skipped
    raise VideoWriteError(f"no writer can encode {fmt.name}: " + "; ".join(skipped) + ". " + FIX_HINT)


def _make_writer(name, binary, path, fmt, width, height, fps, crf, preset, track, metadata, threads,
                 use_fd_pipes, temp_dir, expected_frames) -> VideoWriter:
    if name == "ffmpeg":
        return FfmpegWriter(binary, path, fmt, width, height, fps, crf, preset, audio=track, metadata=metadata,
                            threads=threads, use_fd_pipes=use_fd_pipes, temp_dir=temp_dir,
                            expected_frames=expected_frames)
    if name == "pyav":
        return PyAVWriter(path, fmt, width, height, fps, crf, preset, audio=track, metadata=metadata)
    if name == "cv2":
        return Cv2Writer(path, fmt, width, height, fps)
    return ImageioWriter(path, fmt, width, height, fps, crf)


# -- checks ---------------------------------------------------------------------------------------

MIN_FPS = 0.01  # VideoSettings' lowest frame_rate; below it the audio track cannot be timed against the frames
MAX_FPS = 240.0  # beyond this no player keeps up and the AAC track cannot be timed against the frames


def _check_fps(fps) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"frame_rate must be a number of frames per second, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"frame_rate must be more than 0, got {fps!r}: InfiniteTalk makes 25 frames per second")
    if value < MIN_FPS:
        raise InputError(f"frame_rate {fps!r} is below the lowest {MIN_FPS:g} frames per second (one frame every "
                         f"{1 / MIN_FPS:g} s): InfiniteTalk makes 25 frames per second")
    if value > MAX_FPS:
        raise InputError(f"frame_rate {fps!r} is above the limit of {MAX_FPS:g} frames per second: "
                         "InfiniteTalk makes 25 frames per second")
    return fps_fraction(value)


# x265 (in the ffmpeg program and in PyAV's libraries alike) corrupts its heap on some frames smaller than its
# 64-pixel coding block: 40x24, 48x16, 48x24 and 48x32 abort (SIGABRT, glibc's heap checks) with the x265 of
# PyAV 18 and imageio-ffmpeg 0.8, others pass by luck, 64x8 is refused. In PyAV that kills the calling process,
# a whole ComfyUI. So frames under one coding block are refused before any encoder starts.
X265_MIN_SIDE = 64


def _check_frame_size(fmt: VideoFormat, width: int, height: int) -> None:
    if fmt.video_encoder == "libx265" and min(width, height) < X265_MIN_SIDE:
        raise InputError(
            f"{fmt.name} cannot encode {width}x{height} frames: H.265 (x265) needs at least {X265_MIN_SIDE} pixels on "
            "each side (smaller frames make x265 crash the whole process, ComfyUI included). Use h264-mp4 or "
            f"vp9-webm for frames this small, or make them at least {X265_MIN_SIDE}x{X265_MIN_SIDE}")


def _check_output(path: str) -> str:
    """Make sure `path` can be written (its folder exists and takes files); returns the temporary to write to."""
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise InputError(f"the output {path} is a folder: give a file name such as {os.path.join(path, 'video.mp4')}")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {folder}: {exc.strerror or exc}; pick a writable output folder") from exc
    outputs.remove_stale_temps(path)
    temp = outputs.temp_path(path)
    try:
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as exc:
        raise InputError(
            f"cannot write to the folder {folder}: {exc.strerror or exc}; pick a writable output folder or fix its permissions"
        ) from exc
    return temp


_DISK_WORDS = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")


def _disk_fault(exc: BaseException, folder: str) -> OutputError | None:
    """An OutputError when a writer failed because of the disk, not the encoder (then no other writer can help)."""
    text = str(exc)
    for words in _DISK_WORDS:
        if words in text:
            return OutputError(f"cannot write the video into {folder}: {words.lower()}. Free some space or choose "
                               "another output folder (any earlier file of the same name was left as it was)")
    return None


class _TryNextWriter(Exception):
    """The chosen writer failed on a source that can be read again: try the next writer."""


# -- the entry points -------------------------------------------------------------------------------

def write_video(frames, path, fps, audio=None, sample_rate=None, **options) -> str:
    """Encode `frames` (and `audio`) into one video file at `path`; returns the path.

    See `encode_video` for the options; it returns the same file with details about it.
    """
    return encode_video(frames, path, fps, audio, sample_rate, **options).path


def encode_video(frames, path, fps, audio=None, sample_rate=None, *, format=None, crf=DEFAULT_CRF,
                 preset="medium", length_policy="fit_audio_to_video", metadata=None, writer="auto",
                 progress=None, interrupt=None, frame_count=None, temp_dir=None, threads=None,
                 use_fd_pipes=None) -> VideoResult:
    """Encode frames (and audio) into `path`.

    frames: [N,H,W,3] tensor/array (uint8, or float 0..1; float 0..255 and -1..1 are detected and converted
        with a warning), a frame store (`iter_frames()`), or any iterable of H×W×3 frames (streamed, never all
        in memory). NaN/Inf frames are refused.
    audio: float array [samples] or [channels, samples] at `sample_rate`; fitted to the video.
    format: "h264-mp4" (default; ".webm" paths default to "vp9-webm"), "h265-mp4", "vp9-webm".
    length_policy: "fit_audio_to_video" (every frame kept, audio padded with silence or cut to
        the video's exact duration) or "trim_video_to_audio" (frames past the audio's end dropped).
    metadata: {key: object or str} stored in the file (e.g. {"workflow": ..., "prompt": ...}).
    writer: "auto" (ffmpeg program, then PyAV, cv2, imageio) or one of those names.
    progress: called as progress(frames_done, total_or_None) after each frame.
    interrupt: called before each frame; a true result stops encoding, keeps the playable file of
        the frames so far and raises EncodingInterrupted. An exception it raises is re-raised the
        same way, after the file is finished.
    frame_count: the number of frames of a plain iterator, if known (for progress only).

    The file is written under a temporary name in the same folder and renamed onto `path` only when it
    is complete and read back (frame count, sound track): an earlier file at `path` survives any failure.
    """
    fps_exact = _check_fps(fps)
    fmt = get_format(format, str(path))
    crf = check_crf(fmt, crf)
    if length_policy not in LENGTH_POLICIES:
        raise InputError(f"length_policy must be one of {', '.join(LENGTH_POLICIES)}, got {length_policy!r}")
    if writer != "auto" and writer not in WRITERS:
        raise InputError(f"writer must be 'auto' or one of {', '.join(WRITERS)}, got {writer!r}")
    path = os.path.abspath(os.fspath(path))  # never a leading '-' that a tool could read as an option
    path = outputs.final_path(path)  # a symbolic link keeps pointing at the new video
    if not path.lower().endswith("." + fmt.extension):
        log.warning("%s is written as %s (a .%s file) whatever its name says", path, fmt.name, fmt.extension)
    source = FramesToEncode(frames, frame_count=frame_count)
    _check_frame_size(fmt, source.width, source.height)
    track = None
    if audio is not None:
        data, rate = prepare_audio(audio, sample_rate)
        track = AudioTrack(data, rate, fps_exact)
    limit = None
    if length_policy == "trim_video_to_audio":
        if track is None:
            log.info("length_policy trim_video_to_audio without audio: every frame is kept")
        else:
            limit = track.frames_covering()
    total = source.count if limit is None else (min(source.count, limit) if source.count is not None else limit)
    meta = metadata_strings(metadata)
    temp_dir = temp_dir or tempfile.gettempdir()
    use_fd_pipes = (os.name == "posix") if use_fd_pipes is None else bool(use_fd_pipes)

    temp = _check_output(path)
    excluded: set = set()
    earlier_failures: list[str] = []
    try:
        while True:
            name, binary, audio_ok, skipped = _pick_writer(writer, fmt, track, use_fd_pipes, temp_dir, excluded)
            out = _make_writer(name, binary, temp, fmt, source.width, source.height, fps_exact, crf, preset,
                               track if audio_ok else None, meta, threads, use_fd_pipes, temp_dir, total)
            notes = _announce(name, out, fmt, skipped + earlier_failures, track, audio_ok, source)
            job = _Job(out, path, temp, source, limit, total, track, audio_ok, fmt, fps_exact, notes,
                       retry=writer == "auto" and source.reiterable)
            try:
                return job.run(progress, interrupt)
            except _TryNextWriter as failure:
                excluded.add((name, binary))
                earlier_failures.append(str(failure))
                log.warning("%s; trying the next writer", failure)
                temp = _check_output(path)
    finally:
        outputs.discard(temp)


def _announce(name, out, fmt, skipped, track, audio_ok, source) -> list[str]:
    notes = []
    if source.width % 2 or source.height % 2:
        notes.append(f"frames are {source.width}×{source.height}: padded to {source.width + source.width % 2}×"
                     f"{source.height + source.height % 2} (H.264/H.265/VP9 in yuv420p need even sizes)")
    if name != "ffmpeg":
        why = "; ".join(skipped) if skipped else "requested"
        notes.append(f"video written with {name} instead of the ffmpeg program ({why})")
    elif skipped:
        notes.append(f"video written with the ffmpeg program {out.ffmpeg} ({'; '.join(skipped)})")
    for note in notes:
        log.info(note)
    return notes


def _fallback_warning(out, fmt, track, audio_ok) -> str | None:
    if out.name == "ffmpeg" or (out.name == "pyav" and (audio_ok or track is None)):
        return None
    parts = [f"{fmt.name} video written with the {out.name} fallback writer"]
    if not out.browser_playable:
        parts.append(f"(codec {getattr(out, 'fourcc', '?')}): this file may not play in browsers or ComfyUI's preview")
    if track is not None and not audio_ok:
        parts.append("and it has no sound")
    return " ".join(parts) + ". " + FIX_HINT


@dataclass
class _Job:
    """One attempt to encode the whole source with one writer into the temporary file."""

    out: VideoWriter
    path: str
    temp: str
    source: FramesToEncode
    limit: int | None
    total: int | None
    track: AudioTrack | None
    audio_ok: bool
    fmt: VideoFormat
    fps: Fraction
    notes: list
    retry: bool

    def run(self, progress, interrupt) -> VideoResult:
        out = self.out
        try:
            out.open()
        except VideoWriteError as exc:
            out.abort()
            self._writer_failed(exc)
        stopped_by_interrupt = False
        try:
            for frame in self.source.frames(self.limit):
                if interrupt is not None and interrupt():
                    stopped_by_interrupt = True
                    break
                out.write(frame)
                if progress is not None:
                    progress(out.frames_written, self.total)
        except VideoWriteError as exc:
            out.abort()
            self._writer_failed(exc)
        except BaseException as exc:
            kept = self._keep_partial()
            where = (f"the {out.frames_written} frames encoded before it were kept in {kept}"
                     if kept else "no frame had been encoded, so no file was kept")
            log.warning("video encoding stopped by %s: %s", type(exc).__name__, where)
            if isinstance(exc, (InputError, NonFiniteError)):
                raise type(exc)(f"{exc} ({where})") from exc
            raise
        if stopped_by_interrupt:
            kept = self._keep_partial()
            message = (f"encoding interrupted after {out.frames_written} frames; the video so far is in {kept}"
                       if kept else "encoding interrupted before the first frame; no file was kept")
            log.info(message)
            raise EncodingInterrupted(message, kept, out.frames_written)
        try:
            out.finish()
            facts = verify_video(self.temp, out.frames_written, self.audio_ok)
        except VideoWriteError as exc:
            out.abort()
            self._writer_failed(exc)
        outputs.commit(self.temp, self.path)
        return self._result(facts)

    def _writer_failed(self, exc: VideoWriteError):
        """The writer (not the input) failed: try the next writer when the frames can be read again, else explain."""
        outputs.discard(self.temp)
        if self.temp in str(exc):  # name what the user knows, not our temporary
            exc = VideoWriteError(str(exc).replace(self.temp, f"the new {os.path.basename(self.path)}"))
        folder = os.path.dirname(self.path)
        disk = _disk_fault(exc, folder)
        if disk is not None:
            raise OutputError(f"{disk}. {self._kept_text()}") from exc
        if self.retry:
            raise _TryNextWriter(f"the {self.out.name} writer failed: {exc}") from exc
        raise VideoWriteError(f"{exc}. {self._kept_text()}") from exc

    def _result(self, facts) -> VideoResult:
        out, track, fmt = self.out, self.track, self.fmt
        warning = _fallback_warning(out, fmt, track, self.audio_ok)
        if warning:
            log.warning(warning)
            self.notes.append(warning)
        if track is not None and not self.audio_ok:
            wav = _save_wav(track, self.path, out.frames_written)
            kept_audio = f"the audio {wav}" if wav else "no audio file (it could not be written either)"
            raise VideoWriteError(
                f"the audio could not be muxed into the video with the {out.name} writer. Kept: the silent video "
                f"{self.path} and {kept_audio}. {FIX_HINT}"
            )
        log.info("saved %s: %d frames, %.2f s, %s via %s%s", self.path, facts.frames, facts.duration,
                 fmt.name, out.name, " with sound" if facts.has_audio else "")
        return VideoResult(path=self.path, frames=facts.frames, fps=float(self.fps), width=facts.width,
                           height=facts.height, format=fmt.name, writer=out.name,
                           browser_playable=bool(out.browser_playable), has_audio=facts.has_audio, notes=self.notes)

    def _keep_partial(self) -> str | None:
        """Finish the frames written so far into a playable file; its path, or None (nothing worth keeping)."""
        out = self.out
        if out.frames_written == 0:
            out.abort()
            outputs.discard(self.temp)
            return None
        try:
            out.finish()
            read_facts(self.temp)
        except VideoWriteError as exc:
            log.warning("could not finish the partial video cleanly: %s", exc)
            out.abort()
            outputs.discard(self.temp)
            return None
        # never over an earlier finished video of the same name: beside it
        dest = self.path if not outputs.has_content(self.path) else sibling_path(self.path, "partial." + self.fmt.extension)
        try:
            outputs.commit(self.temp, dest)
        except OutputError as exc:
            log.warning("%s", exc)
            return None
        return dest

    def _kept_text(self) -> str:
        kept = []
        if outputs.has_content(self.path):
            kept.append(f"the earlier {os.path.basename(self.path)} was left as it was")
        if self.track is not None:
            wav = _save_wav(self.track, self.path, None)  # the whole clip: the video is unfinished
            if wav:
                kept.append(f"Kept the audio: {wav}")
        return ". ".join(kept) if kept else "No file was kept"


def _save_wav(track: AudioTrack, path: str, frames: int | None) -> str | None:
    """The audio as a WAV beside `path` (atomically); None if even that cannot be written (said in the log)."""
    wav = sibling_path(path, "wav")
    try:
        return track.write_wav(wav, frames)
    except (OSError, OutputError) as exc:
        log.warning("could not save the audio beside the video either: %s", exc)
        return None
