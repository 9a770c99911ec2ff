"""Writers used when no ffmpeg binary can encode the format.

- PyAV (the `av` wheel bundles FFmpeg's libraries): same codecs, audio muxed, plays in browsers.
- cv2 VideoWriter: no audio; in an MP4 usually MPEG-4 part 2 (`mp4v`), which browsers do not play.
- imageio: no audio; its own ffmpeg plugin, or PyAV under imageio.
All take H×W×3 uint8 frames through the same open/write/finish/abort calls as FfmpegWriter.
"""
from __future__ import annotations

import logging
import os
from fractions import Fraction

import numpy as np

from ..errors import VideoWriteError
from .audio_track import AudioTrack
from .formats import VideoFormat

log = logging.getLogger(__name__)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class PyAVWriter:
    name = "pyav"
    browser_playable = True
    muxes_audio = True

    def __init__(self, path: str, fmt: VideoFormat, width: int, height: int, fps: Fraction, crf: int,
                 preset: str = "medium", audio: AudioTrack | None = None, metadata: dict[str, str] | None = None):
        self.path, self.fmt = path, fmt
        self.width, self.height = width + width % 2, height + height % 2
        self.fps, self.crf, self.preset = fps, crf, preset
        self.audio = audio
        self.metadata = metadata or {}
        self.frames_written = 0
        self._samples_written = 0
        self._container = None

    @staticmethod
    def available(fmt: VideoFormat, with_audio: bool) -> str | None:
        """None when usable, else why not."""
        try:
            import av
        except ImportError:
            return "PyAV (the `av` package) is not installed"
        missing = [c for c in (fmt.video_encoder, fmt.audio_encoder if with_audio else None)
                   if c and c not in av.codecs_available]
        return f"PyAV lacks the {', '.join(missing)} encoder" if missing else None

    def open(self) -> None:
        import av
        from av.video.reformatter import ColorRange, Colorspace

        options = {"movflags": "+faststart" + ("+use_metadata_tags" if self.metadata else "")} if self.fmt.is_mp4 else {}
        try:
            self._container = av.open(self.path, "w", format=self.fmt.container, options=options)
            for key, value in self.metadata.items():
                self._container.metadata[key] = value
            vs = self._container.add_stream(self.fmt.video_encoder, rate=self.fps)
            vs.width, vs.height = self.width, self.height
            vs.pix_fmt = "yuv420p"
            opts = {"crf": str(self.crf)}
            if self.fmt.video_encoder in ("libx264", "libx265"):
                opts["preset"] = self.preset
            if self.fmt.video_encoder == "libx265":
                opts["tag"] = "hvc1"
                opts["x265-params"] = "log-level=error"
            if self.fmt.video_encoder == "libvpx-vp9":
                opts.update({"b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"})
            vs.options = opts
            if self.fmt.video_encoder == "libx265":
                vs.codec_tag = "hvc1"
            cc = vs.codec_context
            cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = 1, 1, 1, 1  # BT.709, limited range
            self._vstream = vs
            self._colorspace, self._range = Colorspace.ITU709, ColorRange.MPEG
            self._astream = None
            if self.audio is not None:
                layout = "mono" if self.audio.channels == 1 else "stereo"
                self._astream = self._container.add_stream(
                    self.fmt.audio_encoder, rate=self.fmt.audio_rate(self.audio.sample_rate), layout=layout)
                self._astream.bit_rate = int(self.fmt.audio_bitrate.rstrip("k")) * 1000
                self._layout = layout
        except Exception as exc:  # noqa: BLE001 - any libav failure becomes one clear error
            self._close_quietly()
            raise VideoWriteError(f"PyAV could not start a {self.fmt.name} file: {exc}") from exc

    def write(self, frame: np.ndarray) -> None:
        import av

        vf = av.VideoFrame.from_ndarray(_pad_even(frame), format="rgb24")
        vf = vf.reformat(format="yuv420p", dst_colorspace=self._colorspace, dst_color_range=self._range)
        vf.pts = self.frames_written
        vf.time_base = 1 / self.fps
        try:
            for packet in self._vstream.encode(vf):
                self._container.mux(packet)
            self.frames_written += 1
            self._write_audio(self.frames_written)
        except Exception as exc:  # noqa: BLE001 - PyAV raises many types; each becomes a VideoWriteError naming the frame
            raise VideoWriteError(f"PyAV failed on frame {self.frames_written + 1}: {exc}") from exc

    def _write_audio(self, frames: int) -> None:
        if self._astream is None:
            return
        import av

        target = self.audio.samples_for(frames)
        if target <= self._samples_written:
            return
        chunk = np.ascontiguousarray(self.audio.chunk(self._samples_written, target))
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._layout)  # [channels, samples]
        af.sample_rate = self.audio.sample_rate
        af.pts = self._samples_written
        af.time_base = Fraction(1, self.audio.sample_rate)
        for packet in self._astream.encode(af):
            self._container.mux(packet)
        self._samples_written = target

    def finish(self) -> None:
        try:
            for packet in self._vstream.encode(None):
                self._container.mux(packet)
            if self._astream is not None:
                for packet in self._astream.encode(None):
                    self._container.mux(packet)
            self._container.close()
        except Exception as exc:  # noqa: BLE001 - any PyAV failure becomes a VideoWriteError naming the file
            raise VideoWriteError(f"PyAV could not finish {self.path}: {exc}") from exc

    def abort(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing after a failure: the first error is the one reported
                pass


class Cv2Writer:
    name = "cv2"
    muxes_audio = False

    def __init__(self, path: str, fmt: VideoFormat, width: int, height: int, fps: Fraction):
        self.path, self.fmt = path, fmt
        self.width, self.height = width + width % 2, height + height % 2
        self.fps = fps
        self.frames_written = 0
        self.fourcc = None
        self._writer = None

    @property
    def browser_playable(self) -> bool:
        return self.fourcc in ("avc1", "VP90", "VP80")

    @staticmethod
    def available(fmt: VideoFormat, with_audio: bool) -> str | None:
        try:
            import cv2  # noqa: F401 - only checks that OpenCV imports
        except ImportError:
            return "OpenCV (cv2) is not installed"
        return None

    def open(self) -> None:
        import cv2

        for code in self.fmt.cv2_fourccs:
            writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*code), float(self.fps), (self.width, self.height))
            if writer.isOpened():
                self._writer, self.fourcc = writer, code
                return
            writer.release()
        raise VideoWriteError(f"OpenCV could not open a video writer for {self.path} (tried {', '.join(self.fmt.cv2_fourccs)})")

    def write(self, frame: np.ndarray) -> None:
        import cv2

        self._writer.write(cv2.cvtColor(_pad_even(frame), cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def finish(self) -> None:
        self._writer.release()
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            raise VideoWriteError(f"OpenCV wrote nothing to {self.path}")

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()


class ImageioWriter:
    name = "imageio"
    muxes_audio = False

    def __init__(self, path: str, fmt: VideoFormat, width: int, height: int, fps: Fraction, crf: int):
        self.path, self.fmt = path, fmt
        self.fps, self.crf = fps, crf
        self.frames_written = 0
        self.browser_playable = True  # libx264/libvpx-vp9 yuv420p through imageio's ffmpeg or PyAV
        self._writer = None
        self._v3 = False

    @staticmethod
    def available(fmt: VideoFormat, with_audio: bool) -> str | None:
        try:
            import imageio  # noqa: F401 - only checks that imageio imports
        except ImportError:
            return "imageio is not installed"
        return None

    def open(self) -> None:
        import imageio

        errors = []
        try:
            self._writer = imageio.v2.get_writer(
                self.path, format="FFMPEG", mode="I", fps=float(self.fps), codec=self.fmt.video_encoder,
                pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
                output_params=["-crf", str(self.crf)] + (["-b:v", "0"] if self.fmt.video_encoder == "libvpx-vp9" else []),
            )
            return
        except Exception as exc:  # noqa: BLE001 - no ffmpeg for imageio either: try its PyAV plugin
            errors.append(f"ffmpeg plugin: {exc}")
        try:
            import imageio.v3 as iio

            self._writer = iio.imopen(self.path, "w", plugin="pyav")
            self._writer.init_video_stream(self.fmt.video_encoder, fps=float(self.fps))
            self._v3 = True
            return
        except Exception as exc:  # noqa: BLE001 - collected: the error lists every plugin's failure
            errors.append(f"pyav plugin: {exc}")
        raise VideoWriteError(f"imageio could not write {self.path}: " + "; ".join(errors))

    def write(self, frame: np.ndarray) -> None:
        frame = _pad_even(frame)
        if self._v3:
            self._writer.write_frame(frame)
        else:
            self._writer.append_data(frame)
        self.frames_written += 1

    def finish(self) -> None:
        self._writer.close()
        if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
            raise VideoWriteError(f"imageio wrote nothing to {self.path}")

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - closing after a failure: the first error is the one reported
                pass
