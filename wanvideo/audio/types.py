"""The audio embeddings that flow from the audio nodes to the sampler (the pack type INFINITETALK_AUDIO_EMBEDS)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class AudioEmbeddings:
    """wav2vec2 features at the video frame rate, one tensor per speaker.

    speakers: per speaker `[frames, layers, channels]` float32 (wav2vec2 hidden
        layers 1..L stacked, features interpolated to `fps` before the
        transformer, as the reference does). All speakers have the same frames.
    fps: the video frame rate the rows are aligned to.
    waveform: the processed mono waveform actually embedded (after downmix,
        resampling, loudness; for two speakers the mix), `[samples]` float32,
        for muxing into the final video.
    sample_rate: rate of `waveform`.
    mode: "single", or for two speakers "para" (simultaneous) / "add" (one after the other).
    """

    speakers: list[torch.Tensor]
    fps: float
    waveform: torch.Tensor
    sample_rate: int
    mode: str = "single"
    extra: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.speakers[0].shape[0])

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)
