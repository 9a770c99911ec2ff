"""The audio embeddings the sampler consumes: one or two speakers, and per-frame windows."""
from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import torch

from ..errors import InputError, NonFiniteError
from .encoder import Wav2VecEncoder
from .features import DEFAULT_CHUNK_FRAMES, embed_waveform16k, num_video_frames
from .preprocess import TARGET_RATE, prepare_waveform
from .types import AudioEmbeddings

log = logging.getLogger(__name__)

SPEAKER_MODES = ("para", "add")


def as_encoder(model) -> Wav2VecEncoder:
    """Accept a Wav2VecEncoder or a bare transformers Wav2Vec2Model."""
    if isinstance(model, Wav2VecEncoder):
        return model
    if hasattr(model, "feature_extractor") and hasattr(model, "encoder") and hasattr(model, "config"):
        return Wav2VecEncoder(model)
    raise InputError(f"expected a wav2vec2 model (from load_wav2vec / the Wav2Vec loader node), got {type(model).__name__}")


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be a positive number of frames per second, got {fps!r}")
    return fps


def _check_length(wave: np.ndarray, fps: float, name: str) -> None:
    if num_video_frames(wave.shape[0], fps, TARGET_RATE) < 1:
        raise InputError(
            f"{name} lasts {wave.shape[0] / TARGET_RATE:.3f} s, shorter than one video frame at {fps:g} fps "
            f"({1.0 / fps:.3f} s): use a longer recording"
        )


def embed_audio(model, waveform, sample_rate: int, fps: float = 25.0, normalize_loudness: bool = True,
                chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> torch.Tensor:
    """`[frames, layers, channels]` float32 wav2vec2 embedding of `waveform` (`[samples]` or `[channels, samples]`, any rate).

    Channels are averaged, the audio resampled to 16 kHz (soxr), loudness
    normalised to -23 LUFS (unless `normalize_loudness` is False or it is
    silence), and frames = int(seconds * fps), as in the reference.
    """
    enc = as_encoder(model)
    fps = _check_fps(fps)
    wave, _ = prepare_waveform(waveform, sample_rate, normalize_loudness, name="audio")
    _check_length(wave, fps, "audio")
    with enc.computing():
        return embed_waveform16k(enc, wave, fps=fps, chunk_frames=chunk_frames)


def _pad_to(wave: np.ndarray, n: int) -> np.ndarray:
    return wave if wave.shape[0] >= n else np.concatenate([wave, np.zeros(n - wave.shape[0], np.float32)])


def arrange_speakers(wave_1: np.ndarray, wave_2: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The two speakers' tracks on one timeline, as the reference's audio_prepare_multi lays them out.

    para: simultaneous; the shorter track is padded with silence at the end
        (the reference needs equal lengths; padding is how its later versions
        align them).
    add: one after the other: speaker 1, then speaker 2; each is silent while the other talks.
    """
    if mode == "para":
        n = max(wave_1.shape[0], wave_2.shape[0])
        return _pad_to(wave_1, n), _pad_to(wave_2, n)
    if mode == "add":
        z1 = np.zeros(wave_1.shape[0], np.float32)
        z2 = np.zeros(wave_2.shape[0], np.float32)
        return np.concatenate([wave_1, z2]), np.concatenate([z1, wave_2])
    raise InputError(f"speaker mode {mode!r} is unknown: use 'para' (both at once) or 'add' (one after the other)")


LIMIT_CONTEXT_S = 2.0  # speech after the last frame still embedded: the transformer's context for those frames


def _speech_the_frames_need(tracks: list, frame_limit: int, total_frames: int, fps: float) -> list:
    """With a frame limit, only the speech those frames need is embedded (plus LIMIT_CONTEXT_S of context): a
    preview of 9 frames from hours of speech takes a second, not the hours' embedding. The loudness was measured
    on the whole recording already, so the level is the full run's; the features of the kept frames are close to
    the full run's (wav2vec2 sees LIMIT_CONTEXT_S past them instead of the whole recording)."""
    if not frame_limit or frame_limit >= total_frames:
        return tracks
    keep_frames = min(total_frames, frame_limit + int(math.ceil(LIMIT_CONTEXT_S * fps)))
    keep = int(math.ceil(keep_frames * TARGET_RATE / fps))
    if keep >= tracks[0].shape[0]:
        return tracks
    log.info("frame limit %d: embedding the first %.1f s of %.1f s of speech", frame_limit, keep / TARGET_RATE,
             tracks[0].shape[0] / TARGET_RATE)
    return [track[:keep] for track in tracks]


def build_audio_embeddings(model, audio_1, sample_rate_1: int, audio_2=None, sample_rate_2: int | None = None,
                           mode: str = "para", fps: float = 25.0, normalize_loudness: bool = True,
                           frame_limit: int = 0, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                           callback: Callable[[int, int], None] | None = None) -> AudioEmbeddings:
    """Full `AudioEmbeddings` for one speaker (`audio_2` None) or two (`mode` "para" / "add").

    Each speaker's recording is prepared on its own (mono, 16 kHz, loudness),
    then laid out on a common timeline and embedded over the whole timeline
    (so speaker 2's rows in "add" mode are embeddings of silence while
    speaker 1 talks, exactly as in the reference). `waveform` is the mix of
    what was embedded, for muxing. `frame_limit` > 0 keeps the first frames
    (and the matching audio), embedding only the speech they need (see
    `_speech_the_frames_need`). `callback(done, total)` reports progress and may raise to stop.
    """
    enc = as_encoder(model)
    fps = _check_fps(fps)
    frame_limit = int(frame_limit or 0)
    if frame_limit < 0:
        raise InputError(f"frame limit must be 0 (whole audio) or a positive number of frames, got {frame_limit}")
    wave_1, info_1 = prepare_waveform(audio_1, sample_rate_1, normalize_loudness, name="audio_1")
    _check_length(wave_1, fps, "audio_1")
    infos = [info_1]
    if audio_2 is None:
        tracks, used_mode = [wave_1], "single"
        mix = wave_1
    else:
        if mode not in SPEAKER_MODES:
            raise InputError(f"speaker mode {mode!r} is unknown: use 'para' (both at once) or 'add' (one after the other)")
        wave_2, info_2 = prepare_waveform(audio_2, sample_rate_2 if sample_rate_2 is not None else sample_rate_1,
                                          normalize_loudness, name="audio_2")
        _check_length(wave_2, fps, "audio_2")
        infos.append(info_2)
        tracks = list(arrange_speakers(wave_1, wave_2, mode))
        used_mode = mode
        mix = tracks[0] + tracks[1]

    total_frames = num_video_frames(tracks[0].shape[0], fps, TARGET_RATE)
    mix_seconds = tracks[0].shape[0] / float(TARGET_RATE)
    tracks = _speech_the_frames_need(tracks, frame_limit, total_frames, fps)
    def progress(stage, d, t, track_index):
        if callback is None:
            return
        # conv chunks and transformer layers each count for half of a track
        frac = (d / max(t, 1)) * 0.5 + (0.5 if stage == "layers" else 0.0)
        callback(int(round((track_index + frac) * 100)), 100 * len(tracks))

    speakers = []
    with enc.computing():
        for idx, track in enumerate(tracks):
            emb = embed_waveform16k(enc, track, fps=fps, chunk_frames=chunk_frames,
                                    callback=lambda s, d, t, idx=idx: progress(s, d, t, idx))
            if not bool(torch.isfinite(emb).all()):
                raise NonFiniteError(
                    f"wav2vec2 turned speaker {idx + 1}'s speech into NaN/infinite features: the wav2vec2 file is "
                    f"damaged or converted wrongly (download it again), or {enc.dtype} overflowed (use fp32)")
            speakers.append(emb)
    if frame_limit and frame_limit < total_frames:
        speakers = [s[:frame_limit].clone() for s in speakers]
        keep = int(math.ceil(frame_limit * TARGET_RATE / fps))
        mix = mix[:keep]
    elif frame_limit > total_frames:
        log.info("frame limit %d is beyond the audio's %d frames: using all of it", frame_limit, total_frames)
    extra = {
        "frames_full": total_frames,
        "frame_limit": frame_limit,
        "seconds": mix_seconds,
        "seconds_embedded": tracks[0].shape[0] / float(TARGET_RATE),
        "loudness_lufs": [i["loudness_lufs"] for i in infos],
        "source_sample_rates": [i["source_sample_rate"] for i in infos],
        "normalize_loudness": bool(normalize_loudness),
        "wav2vec": enc.source,
    }
    return AudioEmbeddings(speakers=speakers, fps=fps, waveform=torch.from_numpy(np.ascontiguousarray(mix, np.float32)),
                           sample_rate=TARGET_RATE, mode=used_mode, extra=extra)


def frame_windows(embedding: torch.Tensor, start: int, count: int, window: int = 5) -> torch.Tensor:
    """Rows feeding video frames start..start+count-1: `[count, window, layers, channels]`.

    Frame f uses embedding rows clamp(f - window//2 ... f + window//2, 0, len-1),
    the window the reference's loop cuts for the model.
    """
    if embedding.ndim < 1 or embedding.shape[0] < 1:
        raise InputError("frame_windows: the embedding has no rows")
    if count < 0 or window < 1:
        raise InputError(f"frame_windows: count must be >= 0 and window >= 1 (got {count}, {window})")
    half = window // 2
    frames = torch.arange(int(start), int(start) + int(count)).unsqueeze(1)
    offsets = (torch.arange(window) - half).unsqueeze(0)
    idx = (frames + offsets).clamp(0, embedding.shape[0] - 1).to(embedding.device)
    return embedding[idx]
