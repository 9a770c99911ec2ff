"""LongCat-Video-Avatar 1.5 audio features: Whisper-large-v3 encoder layer groups at the video frame rate.

As the official `get_audio_embedding_whisper`: loudness to -23 LUFS, log-mel on 30 s slices (each padded to
3000 mel frames), the encoder on each slice with all 33 hidden states, the first 2*T frames (50 Hz) kept, five
features (mean of hidden states 0-7, 8-15, 16-23, 24-31, and hidden state 32) linearly interpolated
(align_corners) from 2*T to T frames. Memory stays bounded for long speech: each 30 s slice is reduced to its
five group features before the next one is encoded, so only [2T, 5, D] is kept, never all 33 hidden states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, ModelFileError

SAMPLE_RATE = 16000
SLICE_SAMPLES = 480_000  # 30 s: one Whisper input
ENCODER_RATE = 50  # Whisper encoder frames per second
LAYER_GROUPS = ((0, 8), (8, 16), (16, 24), (24, 32))


@dataclass
class WhisperAudioEncoder:
    """The Whisper encoder and its feature extractor (log-mel), as `load_whisper` returns them."""

    encoder: torch.nn.Module
    feature_extractor: object
    dtype: torch.dtype
    device: torch.device


def load_whisper(path, dtype=torch.float32, device="cpu") -> WhisperAudioEncoder:
    """A Hugging Face Whisper folder (config.json, preprocessor_config.json, weights) through transformers.

    Only the encoder is kept (the decoder is never used).
    """
    from transformers import WhisperFeatureExtractor, WhisperModel

    folder = Path(path)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelFileError(
            f"Whisper model folder not found or without config.json: {folder}. Pick the whisper-large-v3 folder "
            "of LongCat-Video-Avatar (config.json, preprocessor_config.json, model.safetensors)"
        )
    try:
        model = WhisperModel.from_pretrained(folder, torch_dtype=dtype)
        extractor = WhisperFeatureExtractor.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{folder} is not a loadable Whisper folder: {exc}") from None
    encoder = model.get_encoder().to(device).eval().requires_grad_(False)
    if encoder.config.encoder_layers != 32:
        raise ModelFileError(
            f"{folder}: LongCat-Video-Avatar 1.5 needs a 32-layer Whisper encoder (whisper-large-v3), this one has "
            f"{encoder.config.encoder_layers}"
        )
    return WhisperAudioEncoder(encoder, extractor, dtype, torch.device(device))


def _loudness_normalized(wave: np.ndarray, sample_rate: int, target=-23.0) -> np.ndarray:
    """pyloudnorm to -23 LUFS in float64, unchanged beyond +-100 LUFS (silence), as officially."""
    import pyloudnorm as pyln

    lufs = pyln.Meter(sample_rate).integrated_loudness(wave)
    if abs(lufs) > 100:
        return wave
    return pyln.normalize.loudness(wave, lufs, target)


def _slice_groups(model: WhisperAudioEncoder, mel: torch.Tensor) -> torch.Tensor:
    """[frames, 5, D] group features of one 3000-frame mel slice."""
    hidden = model.encoder(mel.to(model.device, model.dtype), output_hidden_states=True).hidden_states
    groups = [torch.stack(hidden[a:b], dim=0).mean(dim=0) for a, b in LAYER_GROUPS] + [hidden[32]]
    return torch.stack(groups, dim=2)[0].float().cpu()


@torch.no_grad()
def longcat_audio_features(model: WhisperAudioEncoder, waveform, sample_rate: int = SAMPLE_RATE,
                           fps: float = 25) -> torch.Tensor:
    """[T, 5, D] float32 features of a mono 16 kHz waveform, T = int(seconds * fps)."""
    if sample_rate != SAMPLE_RATE:
        raise InputError(f"LongCat audio features need 16 kHz audio (got {sample_rate} Hz): resample first")
    wave = np.asarray(waveform.cpu().numpy() if torch.is_tensor(waveform) else waveform)
    if wave.ndim != 1 or wave.size == 0:
        raise InputError(f"LongCat audio features need a non-empty mono waveform (got shape {wave.shape})")
    frames = int(len(wave) / sample_rate * fps)
    if frames < 1:
        raise InputError(f"audio of {len(wave)} samples is shorter than one video frame at {fps} fps")
    wave = _loudness_normalized(wave, sample_rate)
    keep = 2 * frames
    parts, kept = [], 0
    for start in range(0, len(wave), SLICE_SAMPLES):
        if kept >= keep:
            break
        mel = model.feature_extractor(wave[start:start + SLICE_SAMPLES], sampling_rate=sample_rate,
                                      return_tensors="pt").input_features
        groups = _slice_groups(model, mel)
        parts.append(groups[: keep - kept])
        kept += parts[-1].shape[0]
    features = torch.cat(parts, dim=0)  # [2T, 5, D]
    t2, n, d = features.shape
    flat = features.reshape(t2, n * d).T[None]  # [1, 5D, 2T]
    out = F.interpolate(flat, size=frames, mode="linear", align_corners=True)[0].T
    return out.reshape(frames, n, d)


def longcat_window_indices(num_emb_frames: int, segment_index: int, num_frames: int = 93,
                           num_cond_frames: int = 13, audio_stride: int = 1) -> torch.Tensor:
    """[num_frames, 5] int64 feature indices of a segment: centres start + stride*k, taps -2..+2, clamped."""
    start = segment_index * audio_stride * (num_frames - num_cond_frames)
    centres = torch.arange(start, start + audio_stride * num_frames, audio_stride)
    return (centres[:, None] + torch.arange(-2, 3)[None]).clamp(0, num_emb_frames - 1)


def longcat_audio_window(full_emb: torch.Tensor, segment_index: int, num_frames: int = 93,
                         num_cond_frames: int = 13, audio_stride: int = 1) -> torch.Tensor:
    """[1, num_frames, 5, 5, D]: the official per-segment audio windows of `full_emb` [T, 5, D]."""
    if segment_index < 0:
        raise InputError("segment_index must be >= 0")
    idx = longcat_window_indices(full_emb.shape[0], segment_index, num_frames, num_cond_frames, audio_stride)
    return full_emb[idx][None]


def longcat_padded_samples(n_samples: int, num_segments: int, sample_rate: int = SAMPLE_RATE, fps: float = 25,
                           num_frames: int = 93, num_cond_frames: int = 13) -> int:
    """Samples after the demo's zero padding to the length of `num_segments` segments."""
    duration = num_frames / fps + (num_segments - 1) * (num_frames - num_cond_frames) / fps
    added = math.ceil((duration - n_samples / sample_rate) * sample_rate)
    return n_samples + max(added, 0)


def longcat_segments_for(n_samples: int, sample_rate: int = SAMPLE_RATE, fps: float = 25, num_frames: int = 93,
                         num_cond_frames: int = 13) -> int:
    """The fewest segments whose frames cover the speech (the official demo takes the count as an argument)."""
    frames = int(n_samples / sample_rate * fps)
    step = num_frames - num_cond_frames
    return 1 + max(0, math.ceil((frames - num_frames) / step))
