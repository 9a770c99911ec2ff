"""Waveform preparation as the reference does it: mono, 16 kHz, loudness -23 LUFS.

The reference reads audio with `librosa.load(path, sr=16000)` (average the
channels, then resample with soxr "HQ" and fix the length to
ceil(samples * ratio)) and applies `loudness_norm` (pyloudnorm BS.1770
integrated loudness, gain to -23 LUFS, left unchanged when |LUFS| > 100, which
is how silence comes through). We use soxr and pyloudnorm directly, the same
libraries librosa calls, without depending on librosa.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

TARGET_RATE = 16000
TARGET_LUFS = -23.0
LOUDNESS_BLOCK_SECONDS = 0.4  # pyloudnorm's gating block: shorter clips cannot be measured


def _to_numpy(waveform) -> np.ndarray:
    if hasattr(waveform, "detach"):  # torch tensor, without importing torch here
        waveform = waveform.detach().float().cpu().numpy()
    arr = np.asarray(waveform)
    if arr.dtype.kind in "iu":  # PCM integers
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
    elif arr.dtype.kind != "f":
        raise InputError(f"audio samples must be numbers, got dtype {arr.dtype}")
    return arr


def to_mono(waveform, name: str = "audio") -> np.ndarray:
    """`[samples]` or `[channels, samples]` (any channel count) -> mono float32 `[samples]` by the channel mean."""
    arr = _to_numpy(waveform)
    if arr.ndim == 3 and arr.shape[0] == 1:  # a ComfyUI AUDIO batch of one
        arr = arr[0]
    if arr.ndim == 1:
        mono = arr.astype(np.float32, copy=False)
    elif arr.ndim == 2:
        if 0 in arr.shape:
            raise InputError(f"{name} is empty: its waveform of shape {tuple(arr.shape)} has no channels or no "
                             "samples; connect a clip with sound")
        if arr.shape[1] <= 8 < arr.shape[0]:  # clearly [samples, channels] (soundfile's layout)
            log.info("%s: reading shape %s as [samples, channels]", name, arr.shape)
            arr = arr.T
        mono = arr.astype(np.float32, copy=False).mean(axis=0, dtype=np.float32) if arr.shape[0] > 1 else arr[0].astype(np.float32)
    else:
        raise InputError(f"{name}: expected a waveform [samples] or [channels, samples], got shape {tuple(arr.shape)}")
    return np.ascontiguousarray(mono, dtype=np.float32)


MIN_SAMPLE_RATE = 1000  # below this a clip is not speech, and resampling it to 16 kHz would explode its size
MAX_SAMPLE_RATE = 768000


def check_waveform(mono: np.ndarray, sample_rate: int, name: str = "audio") -> None:
    """Refuse empty audio and NaN/Inf samples with a message that says what to do."""
    if not isinstance(sample_rate, (int, np.integer)) and not float(sample_rate).is_integer():
        raise InputError(f"{name}: sample rate {sample_rate!r} is not a whole number of Hz")
    if sample_rate <= 0:
        raise InputError(f"{name}: sample rate {sample_rate!r} must be positive")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"{name}: sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz "
                         "(speech is recorded at 8000-48000 Hz): check the node or file that gives the audio")
    if mono.size == 0:
        raise InputError(f"{name} is empty (0 samples): connect a recording with speech (or silence) in it")
    bad = ~np.isfinite(mono)
    if bad.any():
        count = int(bad.sum())
        first = int(np.argmax(bad)) / float(sample_rate)
        raise InputError(
            f"{name} has {count} NaN/Inf samples (first at {first:.3f} s): the file is damaged or an "
            f"upstream node produced invalid values. Re-export or re-decode the audio; it is refused rather "
            f"than silently patched because the lip sync would follow the damaged part."
        )


def resample(mono: np.ndarray, sample_rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
    """soxr HQ resampling to `target_rate`, length ceil(n * ratio) as librosa.load gives it."""
    sample_rate = int(sample_rate)
    if sample_rate == target_rate:
        return mono.astype(np.float32, copy=False)
    import soxr

    out = soxr.resample(mono, sample_rate, target_rate, quality="HQ")
    n = int(math.ceil(mono.shape[0] * target_rate / sample_rate))
    if out.shape[0] > n:
        out = out[:n]
    elif out.shape[0] < n:
        out = np.pad(out, (0, n - out.shape[0]))
    return np.ascontiguousarray(out, dtype=np.float32)


def integrated_loudness(wave: np.ndarray, sample_rate: int = TARGET_RATE) -> float | None:
    """BS.1770 integrated loudness in LUFS (pyloudnorm); None for clips shorter than one 0.4 s gating block."""
    if wave.shape[0] < LOUDNESS_BLOCK_SECONDS * sample_rate:
        return None
    import pyloudnorm as pyln

    meter = pyln.Meter(sample_rate)
    if wave.ndim != 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log10(0) of silent blocks
            return float(meter.integrated_loudness(wave))
    return _gated_loudness(meter, wave)


def _gated_loudness(meter, wave: np.ndarray) -> float:
    """pyloudnorm's `integrated_loudness` of a mono clip with its per-block Python loops vectorised (the same
    K-weighting filters, 400 ms blocks, 75 % overlap, absolute and relative gates): hours of speech take seconds,
    not minutes. Block energies come from a running sum (float64) instead of a sum per block."""
    data = np.array(wave, copy=True)
    for stage in meter._filters.values():
        data[:] = stage.apply_filter(data)  # in place, in the clip's dtype, as pyloudnorm does
    rate, block = meter.rate, meter.block_size
    step = 1.0 - meter.overlap
    count = int(np.round(((data.shape[0] / rate - block) / (block * step)))) + 1
    j = np.arange(count)
    lower = (block * (j * step) * rate).astype(np.int64)
    upper = np.minimum((block * (j * step + 1) * rate).astype(np.int64), data.shape[0])
    energy = np.concatenate([[0.0], np.cumsum(np.square(data, dtype=np.float64))])
    z = (energy[upper] - energy[np.minimum(lower, upper)]) / (block * rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        loudness = -0.691 + 10.0 * np.log10(z)
        above = loudness >= -70.0
        relative = -0.691 + 10.0 * np.log10(np.mean(z[above])) - 10.0 if above.any() else np.nan
        gated = (loudness > relative) & (loudness > -70.0)
        mean = np.nan_to_num(np.mean(z[gated])) if gated.any() else 0.0
        return float(-0.691 + 10.0 * np.log10(mean))


def loudness_normalize(wave: np.ndarray, sample_rate: int = TARGET_RATE, target_lufs: float = TARGET_LUFS,
                       name: str = "audio") -> tuple[np.ndarray, float | None]:
    """(waveform at `target_lufs`, measured LUFS). Unchanged for silence (|LUFS| > 100) as in the reference.

    The gain is applied in float32, as the reference does under its pinned
    numpy (< 2); clipping is not prevented there either (peaks above 1.0 stay).
    Clips shorter than one gating block (0.4 s) cannot be measured: they are
    passed unchanged with a warning (the reference raises on them).
    """
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    lufs = integrated_loudness(wave, sample_rate)
    if lufs is None:
        log.warning("%s is shorter than %.1f s: loudness normalisation skipped", name, LOUDNESS_BLOCK_SECONDS)
        return wave, None
    if not math.isfinite(lufs) or abs(lufs) > 100:
        return wave, lufs
    gain = np.float32(10.0 ** ((target_lufs - lufs) / 20.0))
    return wave * gain, lufs


def prepare_waveform(waveform, sample_rate: int, normalize_loudness: bool = True,
                     name: str = "audio") -> tuple[np.ndarray, dict]:
    """Any waveform -> (16 kHz mono float32 waveform as the model sees it, info dict)."""
    mono = to_mono(waveform, name)
    check_waveform(mono, sample_rate, name)
    wave = resample(mono, int(sample_rate), TARGET_RATE)
    info = {"source_sample_rate": int(sample_rate), "source_seconds": mono.shape[0] / float(sample_rate),
            "loudness_lufs": None, "loudness_normalized": False}
    if normalize_loudness:
        wave, lufs = loudness_normalize(wave, TARGET_RATE, name=name)
        info["loudness_lufs"] = lufs
        info["loudness_normalized"] = lufs is not None and math.isfinite(lufs) and abs(lufs) <= 100
    return wave, info
