"""Speech -> LongCat-Video-Avatar 1.5 audio features for a whole run (one or two speakers), as the official demos
prepare them: mono 16 kHz, two speakers laid out 'para' (together) or 'add' (one after the other), every track
padded with silence to the length of the segments that cover it, then Whisper features per track.

Not reproduced: the demos' vocal separation (audio-separator, Kim_Vocal_2.onnx) before the features; give clean
speech (our InfiniteTalk path does not separate either).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from .embeddings import arrange_speakers
from .longcat_whisper import SAMPLE_RATE, longcat_audio_features, longcat_padded_samples, longcat_segments_for
from .preprocess import check_waveform, resample, to_mono


@dataclass
class LongCatAudio:
    """Whisper features per track on one timeline, plus the sound to put in the video."""

    speakers: list  # [T_padded, 5, D] per track (speaker 1, speaker 2)
    num_frames: int  # video frames the speech lasts (the output length)
    fps: float
    waveform: np.ndarray  # mono mix at 16 kHz, for the video's sound
    sample_rate: int = SAMPLE_RATE
    mode: str = "single"

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)


def _mono16k(waveform, sample_rate, name):
    mono = to_mono(waveform, name)
    check_waveform(mono, int(sample_rate), name)
    return resample(mono, int(sample_rate), SAMPLE_RATE)


def longcat_audio_embeds(whisper, audio_1, sample_rate_1: int, audio_2=None, sample_rate_2: int | None = None,
                         mode: str = "para", fps: float = 25.0, num_frames: int = 93,
                         num_cond_frames: int = 13) -> LongCatAudio:
    """Features of one speaker, or two ('para': at once, 'add': speaker 1 then speaker 2)."""
    wave_1 = _mono16k(audio_1, sample_rate_1, "speaker 1 audio")
    tracks, layout = [wave_1], "single"
    if audio_2 is not None:
        wave_2 = _mono16k(audio_2, sample_rate_2 or sample_rate_1, "speaker 2 audio")
        tracks, layout = list(arrange_speakers(wave_1, wave_2, mode)), mode
    samples = tracks[0].shape[0]
    frames = int(samples / SAMPLE_RATE * fps)
    if frames < 1:
        raise InputError("the speech is shorter than one video frame")
    segments = longcat_segments_for(samples, SAMPLE_RATE, fps, num_frames, num_cond_frames)
    padded = longcat_padded_samples(samples, segments, SAMPLE_RATE, fps, num_frames, num_cond_frames)
    feats = []
    for track in tracks:
        track = np.concatenate([track.astype(np.float64), np.zeros(padded - samples)])  # the demo's np.append
        feats.append(longcat_audio_features(whisper, track, SAMPLE_RATE, fps))
    mix = np.sum(tracks, axis=0).astype(np.float32)
    return LongCatAudio([f.float() for f in feats], frames, float(fps), mix, SAMPLE_RATE, layout)


def speaker_windows(audio: LongCatAudio, segment_index: int, num_frames: int, num_cond_frames: int) -> torch.Tensor:
    """[speakers, num_frames, 5, 5, D]: every track's windows for one segment."""
    from .longcat_whisper import longcat_audio_window

    return torch.cat([longcat_audio_window(emb, segment_index, num_frames, num_cond_frames)
                      for emb in audio.speakers], dim=0)
