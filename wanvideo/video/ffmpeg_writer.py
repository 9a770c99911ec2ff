"""The main writer: one ffmpeg process, raw RGB frames on its stdin, the audio on a second pipe.

Everything goes into one output file: no silent intermediate, no PNG, no second pass.
- Video: `-f rawvideo -pix_fmt rgb24` on stdin, written frame by frame with large writes.
- Audio: interleaved float32 on an inherited pipe (`pipe:N`), fed by a thread in step with
  the frames, so the audio ends exactly where the last written frame ends, whether the
  frame count is known ahead, found at the end of a stream, or cut short by an interrupt.
- Metadata: an ffmetadata text on a third pipe (a workflow can exceed a command line's limit).
Where inherited pipes are unavailable (Windows), the audio and metadata go through temp files
in the temp folder, removed afterwards.
"""
from __future__ import annotations

import collections
import logging
import os
import subprocess
import tempfile
import threading
from fractions import Fraction

import numpy as np

from ..errors import VideoWriteError
from .audio_track import AudioTrack
from .formats import VideoFormat
from .metadata import ffmetadata

log = logging.getLogger(__name__)

_F_SETPIPE_SZ = 1031  # Linux fcntl: grow a pipe's buffer (fewer wake-ups per 1 MB frame)
TIMEOUT_ENV = "WANVIDEO_FFMPEG_TIMEOUT"
DEFAULT_TIMEOUT = 120.0  # seconds without any sign of life while we wait for ffmpeg


def stall_timeout() -> float:
    """Seconds an ffmpeg may show no progress while we wait on it (WANVIDEO_FFMPEG_TIMEOUT, default 120)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", TIMEOUT_ENV, text, DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def _cpu_ticks(pid: int) -> int | None:
    """CPU time a process has used (Linux /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


class _Watchdog(threading.Thread):
    """Kills an ffmpeg that shows no sign of life for `timeout` seconds while we wait on it.

    Signs of life: bytes it accepted from us, growth of its output file, CPU time it used. Waiting
    for frames from the sampler does not count: the clock runs only inside `busy()` sections.
    """

    def __init__(self, proc, output: str, timeout: float):
        super().__init__(name="wanvideo-ffmpeg-watchdog", daemon=True)
        self._proc, self._output, self.timeout = proc, output, timeout
        self._busy = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self.bytes_in = 0
        self.fired = False

    def busy(self):
        watchdog = self

        class _Busy:
            def __enter__(self):
                with watchdog._lock:
                    watchdog._busy += 1

            def __exit__(self, *exc):
                with watchdog._lock:
                    watchdog._busy -= 1

        return _Busy()

    def _signs(self):
        try:
            size = os.path.getsize(self._output)
        except OSError:
            size = -1
        return self.bytes_in, size, _cpu_ticks(self._proc.pid)

    def run(self) -> None:
        import time

        tick = min(1.0, self.timeout / 4)
        last_signs, last_change = None, time.monotonic()
        while not self._stop_event.wait(tick):
            if self._proc.poll() is not None:
                return
            signs = self._signs()
            now = time.monotonic()
            if signs != last_signs or not self._busy:
                last_signs, last_change = signs, now
                continue
            if now - last_change > self.timeout:
                self.fired = True
                log.warning("ffmpeg showed no progress for %.0f s: stopping it", self.timeout)
                try:
                    self._proc.kill()
                except OSError:
                    pass
                return

    def stop(self) -> None:
        self._stop_event.set()


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _grow_pipe(fd: int, size: int = 1 << 20) -> None:
    try:
        import fcntl

        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                size = min(size, int(f.read()))
        except OSError:
            pass
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except (ImportError, OSError, ValueError):
        pass  # not Linux, or not allowed: the default buffer works, only with more wake-ups


def fps_text(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


class _AudioFeeder(threading.Thread):
    """Writes the audio into ffmpeg's audio pipe, never ahead of the frames already written."""

    def __init__(self, fd: int, track: AudioTrack):
        super().__init__(name="wanvideo-audio-feed", daemon=True)
        self._fd = fd
        self._track = track
        self._cond = threading.Condition()
        self._frames = 0
        self._final = None
        self.error: BaseException | None = None
        self.samples_written = 0

    def advance(self, frames: int) -> None:
        with self._cond:
            self._frames = frames
            self._cond.notify()

    def finish(self, frames: int) -> None:
        with self._cond:
            self._final = frames
            self._cond.notify()

    def run(self) -> None:
        track = self._track
        try:
            while True:
                with self._cond:
                    while self._final is None and track.samples_for(self._frames) <= self.samples_written:
                        self._cond.wait()
                    done = self._final is not None
                    target = track.samples_for(self._final if done else self._frames)
                if target > self.samples_written:
                    _write_all(self._fd, track.interleaved(self.samples_written, target))
                    self.samples_written = target
                if done:
                    return
        except BaseException as exc:  # noqa: BLE001 - ffmpeg went away, or a bug: the main thread reports it
            self.error = exc
        finally:
            os.close(self._fd)


class _BytesFeeder(threading.Thread):
    def __init__(self, fd: int, data: bytes):
        super().__init__(name="wanvideo-meta-feed", daemon=True)
        self._fd, self._data = fd, data

    def run(self) -> None:
        try:
            _write_all(self._fd, self._data)
        except OSError:
            pass
        finally:
            os.close(self._fd)


class _StderrTail(threading.Thread):
    """Drains ffmpeg's stderr (a full pipe would stall it) and keeps the last lines for error messages."""

    def __init__(self, stream):
        super().__init__(name="wanvideo-ffmpeg-stderr", daemon=True)
        self._stream = stream
        self.lines: collections.deque = collections.deque(maxlen=40)

    def run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.lines.append(line)
        self._stream.close()

    def text(self) -> str:
        return "\n".join(self.lines)


class FfmpegWriter:
    """Encode frames (and audio) with one ffmpeg process. Use: open(), write(frame)..., finish() or abort()."""

    name = "ffmpeg"
    browser_playable = True
    muxes_audio = True

    def __init__(self, ffmpeg: str, path: str, fmt: VideoFormat, width: int, height: int, fps: Fraction,
                 crf: int, preset: str = "medium", audio: AudioTrack | None = None,
                 metadata: dict[str, str] | None = None, threads: int | None = None,
                 use_fd_pipes: bool | None = None, temp_dir: str | None = None,
                 expected_frames: int | None = None):
        self.ffmpeg = ffmpeg
        self.path = path
        self.fmt = fmt
        self.width, self.height = width, height
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.audio = audio
        self.metadata = metadata or {}
        self.threads = threads
        self.use_fd_pipes = (os.name == "posix") if use_fd_pipes is None else use_fd_pipes
        self.temp_dir = temp_dir or tempfile.gettempdir()
        self.expected_frames = expected_frames
        self.frames_written = 0
        self._proc = None
        self._stdin_fd = None
        self._feeders: list[threading.Thread] = []
        self._audio_feeder: _AudioFeeder | None = None
        self._stderr: _StderrTail | None = None
        self._temp_files: list[str] = []
        self._watchdog: _Watchdog | None = None

    # -- command line -----------------------------------------------------------------
    def _video_filters(self) -> str:
        filters = []
        if self.width % 2 or self.height % 2:
            # yuv420p needs even sizes; one black row/column is added rather than a pixel cut.
            filters.append("pad=ceil(iw/2)*2:ceil(ih/2)*2")
        # BT.709 conversion and matching tags: what browsers assume for HD, so colours do not shift. The frames'
        # own colour properties decide the stream's tags (the -color_* output options alone leave primaries and
        # transfer "unknown" with this ffmpeg), so setparams stamps all four on every frame.
        filters.append("scale=out_color_matrix=bt709:out_range=tv")
        filters.append("setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709")
        return ",".join(filters)

    def _codec_args(self) -> list[str]:
        fmt = self.fmt
        args = ["-c:v", fmt.video_encoder]
        if fmt.video_encoder == "libx264":
            args += ["-preset", self.preset, "-crf", str(self.crf)]
        elif fmt.video_encoder == "libx265":
            args += ["-preset", self.preset, "-crf", str(self.crf), "-tag:v", "hvc1", "-x265-params", "log-level=error"]
        elif fmt.video_encoder == "libvpx-vp9":
            # -b:v 0 makes crf a constant-quality target; row-mt/cpu-used keep VP9 from being very slow.
            args += ["-crf", str(self.crf), "-b:v", "0", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"]
        args += ["-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
                 "-color_trc", "bt709", "-color_range", "tv"]
        if self.threads:
            args += ["-threads", str(int(self.threads))]
        if self.audio is not None:
            args += ["-c:a", fmt.audio_encoder, "-b:a", fmt.audio_bitrate, "-ar", str(fmt.audio_rate(self.audio.sample_rate))]
        if fmt.is_mp4:
            flags = "+faststart" + ("+use_metadata_tags" if self.metadata else "")
            args += ["-movflags", flags]
        return args

    def _build(self, audio_src: str | None, meta_src: str | None) -> list[str]:
        args = [self.ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
                "-probesize", "32", "-analyzeduration", "0",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
                "-framerate", fps_text(self.fps), "-i", "pipe:0"]
        index = 1
        maps = ["-map", "0:v:0"]
        if audio_src is not None:
            args += ["-probesize", "32", "-analyzeduration", "0", "-f", "f32le",
                     "-ar", str(self.audio.sample_rate), "-ac", str(self.audio.channels), "-i", audio_src]
            maps += ["-map", f"{index}:a:0"]
            index += 1
        if meta_src is not None:
            args += ["-f", "ffmetadata", "-i", meta_src]
            maps += ["-map_metadata", str(index)]
            index += 1
        args += maps
        args += ["-vf", self._video_filters()]
        args += self._codec_args()
        if audio_src is not None and not self.use_fd_pipes:
            # Temp-file audio was written for the expected length; -shortest only matters if encoding stops early.
            args += ["-shortest"]
        args += ["-f", self.fmt.container, self.path]
        return args

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        pass_fds = []
        audio_src = meta_src = None
        audio_w = meta_w = None
        meta_bytes = ffmetadata(self.metadata) if self.metadata else None
        try:
            if self.audio is not None:
                if self.use_fd_pipes:
                    r, audio_w = os.pipe()
                    pass_fds.append(r)
                    audio_src = f"pipe:{r}"
                else:
                    audio_src = self._temp_audio_file()
            if meta_bytes is not None:
                if self.use_fd_pipes:
                    r, meta_w = os.pipe()
                    pass_fds.append(r)
                    meta_src = f"pipe:{r}"
                else:
                    meta_src = self._temp_file(".ffmeta", meta_bytes)
            cmd = self._build(audio_src, meta_src)
            log.debug("ffmpeg command: %s", " ".join(cmd[:-1] + ["<out>"]))
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                bufsize=0, pass_fds=tuple(pass_fds),
            )
        except OSError as exc:
            for fd in pass_fds + [fd for fd in (audio_w, meta_w) if fd is not None]:
                os.close(fd)
            self._remove_temp_files()
            raise VideoWriteError(f"could not start ffmpeg ({self.ffmpeg}): {exc}") from exc
        for fd in pass_fds:
            os.close(fd)  # the child holds them now; ours would keep the pipes from ever reporting EOF/EPIPE
        self._stdin_fd = self._proc.stdin.fileno()
        _grow_pipe(self._stdin_fd)
        self._watchdog = _Watchdog(self._proc, self.path, stall_timeout())
        self._watchdog.start()
        self._stderr = _StderrTail(self._proc.stderr)
        self._stderr.start()
        if audio_w is not None:
            self._audio_feeder = _AudioFeeder(audio_w, self.audio)
            self._audio_feeder.start()
        if meta_w is not None:
            feeder = _BytesFeeder(meta_w, meta_bytes)
            feeder.start()
            self._feeders.append(feeder)

    def _temp_file(self, suffix: str, data: bytes) -> str:
        os.makedirs(self.temp_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="wanvideo_", suffix=suffix, dir=self.temp_dir)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._temp_files.append(path)
        return path

    def _temp_audio_file(self) -> str:
        total = self.audio.samples_for(self.expected_frames) if self.expected_frames else self.audio.data.shape[1]
        return self._temp_file(".f32le", self.audio.interleaved(0, total))

    def _remove_temp_files(self) -> None:
        for path in self._temp_files:
            try:
                os.remove(path)
            except OSError:
                pass
        self._temp_files = []

    def write(self, frame: np.ndarray) -> None:
        try:
            with self._watchdog.busy():
                _write_all(self._stdin_fd, frame)
        except OSError as exc:  # BrokenPipe: ffmpeg stopped (or the watchdog stopped it); say why
            with self._watchdog.busy():
                self._proc.wait()
            self._join_threads()
            feeder_error = self._audio_feeder.error if self._audio_feeder is not None else None
            if feeder_error is not None and not isinstance(feeder_error, OSError):
                raise feeder_error from exc  # the audio thread's own failure is the real cause
            raise VideoWriteError(self._failure_text(f"ffmpeg stopped while receiving frame {self.frames_written + 1}")) from exc
        self._watchdog.bytes_in += frame.nbytes
        self.frames_written += 1
        if self._audio_feeder is not None:
            self._audio_feeder.advance(self.frames_written)

    def finish(self) -> None:
        """Close the inputs and wait for the finished file; raise VideoWriteError if ffmpeg failed."""
        if self._audio_feeder is not None:
            self._audio_feeder.finish(self.frames_written)
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        with self._watchdog.busy():
            code = self._proc.wait()
        self._join_threads()
        if code != 0:
            raise VideoWriteError(self._failure_text(f"ffmpeg failed (exit code {code})"))
        error = self._audio_feeder.error if self._audio_feeder is not None else None
        if isinstance(error, OSError):
            raise VideoWriteError(self._failure_text(f"ffmpeg did not take all the audio ({error})"))
        if error is not None:
            raise error  # a bug in the feeder: surfaced as the run's error, with its traceback

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._audio_feeder is not None:
            self._audio_feeder.finish(self.frames_written)
        self._join_threads()

    def _join_threads(self) -> None:
        if self._audio_feeder is not None:
            self._audio_feeder.finish(self.frames_written)  # wake it if it waits for frames that never come
        for thread in ([self._audio_feeder] if self._audio_feeder else []) + self._feeders + ([self._stderr] if self._stderr else []):
            thread.join(timeout=30)
        if self._watchdog is not None:
            self._watchdog.stop()
        self._remove_temp_files()

    def _failure_text(self, what: str) -> str:
        if self._watchdog is not None and self._watchdog.fired:
            what = (f"ffmpeg ({self.ffmpeg}) showed no progress for {self._watchdog.timeout:g} s and was stopped "
                    f"({what}); set {TIMEOUT_ENV} to wait longer, or WANVIDEO_FFMPEG to another ffmpeg")
        tail = self._stderr.text() if self._stderr is not None else ""
        return f"{what}: {tail}" if tail else what
