"""The soundtrack of a video: cleaned, at most two channels, cut or padded to the frames it goes with.

The length is decided frame by frame (`samples_for(frames)`), so the audio always ends exactly
where the video ends, even when the number of frames is only known at the end (a stream) or
encoding stops early (interrupt).
"""
from __future__ import annotations

import logging
import wave
from fractions import Fraction

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 1000  # below this there is no speech to hear, and encoders refuse or drop the track
MAX_SAMPLE_RATE = 768000


def _as_numpy(audio) -> np.ndarray:
    if type(audio).__module__.startswith("torch"):
        audio = audio.detach().cpu()
        # float16/bfloat16 have no numpy twin; integer PCM keeps its dtype for scaling below
        return audio.float().numpy() if audio.is_floating_point() else audio.numpy()
    return np.asarray(audio)


def _to_float32(arr: np.ndarray) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    raise InputError(f"audio must be float (-1..1) or 8/16/32-bit PCM samples, got {arr.dtype}")


def prepare_audio(audio, sample_rate) -> tuple[np.ndarray, int]:
    """float32 [channels (1 or 2), samples] and an int rate, or a clear InputError.

    Accepts [samples], [channels, samples], [1, channels, samples] (a ComfyUI AUDIO batch of
    one), and [samples, channels] for 1-8 channels (as soundfile returns it).
    """
    if sample_rate is None:
        raise InputError("audio was given without its sample_rate (e.g. 16000): pass both, or neither")
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise InputError(f"audio sample_rate must be a number of samples per second, got {sample_rate!r}") from None
    if not np.isfinite(rate) or rate <= 0:
        raise InputError(f"audio sample_rate must be positive, got {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InputError(f"audio sample_rate {sample_rate!r} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz "
                         "(speech is usually 16000, 44100 or 48000 Hz): check the node or file that gives the audio")
    if abs(rate - round(rate)) > 1e-6:
        log.info("audio sample rate %.3f Hz rounded to %d Hz", rate, round(rate))
    rate = int(round(rate))

    arr = _as_numpy(audio)
    if arr.ndim == 3:
        if arr.shape[0] != 1:
            log.warning("audio batch holds %d clips: only the first is used", arr.shape[0])
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 2:
        if arr.shape[0] > 8 and arr.shape[1] <= 8:
            arr = arr.T  # [samples, channels] -> [channels, samples]
    else:
        raise InputError(f"audio must be [samples] or [channels, samples], got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(
            f"the audio is empty ({arr.shape[1]} samples, {arr.shape[0]} channels): connect a clip with sound, "
            "or leave `audio` unconnected for a silent video"
        )
    data = _to_float32(arr)
    bad = ~np.isfinite(data)
    if bad.any():
        count = int(bad.sum())
        data = np.where(bad, np.float32(0.0), data)
        log.warning("audio had %d NaN/Inf samples (%.2f%%): they were replaced with silence", count, 100.0 * count / data.size)
    data = limit_peaks(data)
    if data.shape[0] > 2:
        log.info("audio has %d channels: downmixed to mono (the channel layout is unknown)", data.shape[0])
        data = data.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(data, dtype=np.float32), rate


FULL_SCALE_HEADROOM = 0.98  # peak after scaling: just under full scale, so AAC's own overshoot does not clip


def limit_peaks(data: np.ndarray) -> np.ndarray:
    """Audio whose samples go past full scale (±1) would be written clipped (harsh distortion): the whole track is
    scaled down so its peak is just under full scale, and the log says by how much. Quieter audio is unchanged."""
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak <= 1.0:
        return data
    gain = FULL_SCALE_HEADROOM / peak
    log.warning("the audio peaks at %.3g times full scale and would clip: normalised for the video's sound track "
                "(scaled by %.1f dB to a peak of %.2f)", peak, 20.0 * np.log10(gain), FULL_SCALE_HEADROOM)
    return (data * np.float32(gain)).astype(np.float32)


def fps_fraction(fps) -> Fraction:
    """Exact frame rate: 25 -> 25/1, 29.97 -> 2997/100, 23.976... -> 24000/1001."""
    value = float(fps)
    for base in (24, 30, 60, 120):
        if abs(value - base * 1000 / 1001) < 5e-4:
            return Fraction(base * 1000, 1001)
    return Fraction(value).limit_denominator(100000)


class AudioTrack:
    """Audio fitted to a frame count: padded with silence past its end, cut before it."""

    def __init__(self, data: np.ndarray, sample_rate: int, fps: Fraction):
        self.data = data  # float32 [channels, samples]
        self.sample_rate = int(sample_rate)
        self.fps = Fraction(fps)
        self.channels = data.shape[0]

    @property
    def seconds(self) -> float:
        return self.data.shape[1] / self.sample_rate

    def samples_for(self, frames: int) -> int:
        """Samples that last exactly as long as `frames` video frames (rounded to the nearest sample)."""
        return int(round(Fraction(frames) * self.sample_rate / self.fps))

    def frames_covering(self) -> int:
        """Fewest frames that cover the whole audio (used to trim the video to the audio)."""
        exact = Fraction(self.data.shape[1]) * self.fps / self.sample_rate
        return max(1, int(-(-exact.numerator // exact.denominator)))

    def chunk(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) as float32 [channels, end-start], silence past the audio's end."""
        end = max(end, start)
        have = self.data[:, start:min(end, self.data.shape[1])] if start < self.data.shape[1] else self.data[:, :0]
        if have.shape[1] == end - start:
            return have
        out = np.zeros((self.channels, end - start), dtype=np.float32)
        out[:, :have.shape[1]] = have
        return out

    def interleaved(self, start: int, end: int) -> bytes:
        """Samples [start, end) as interleaved little-endian float32 bytes (ffmpeg's f32le)."""
        return np.ascontiguousarray(self.chunk(start, end).T).astype("<f4", copy=False).tobytes()

    def write_wav(self, path: str, frames: int | None = None) -> str:
        """A 16-bit PCM WAV of the track (fitted to `frames` when given): what a failed mux leaves beside the video."""
        import io

        from ..outputs import write_bytes

        total = self.samples_for(frames) if frames is not None else self.data.shape[1]
        pcm = np.clip(self.chunk(0, total), -1.0, 1.0)
        pcm = np.round(pcm.T * 32767.0).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(self.channels)
            out.setsampwidth(2)
            out.setframerate(self.sample_rate)
            out.writeframes(pcm.tobytes())
        write_bytes(path, buffer.getvalue())  # atomic: never a 0-byte or half WAV
        return path
