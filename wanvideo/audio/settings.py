"""Speech -> embeddings settings (options: see wanvideo/options.py), shared by the audio nodes and the CLI."""
from __future__ import annotations

from dataclasses import dataclass

from ..options import option

SPEAKER_MODES = ("para", "add")
WAV2VEC_PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class AudioSettings:
    speaker_mode: str = option("para", choices=SPEAKER_MODES, help=(
        "With two speakers: para = they talk at the same time (the shorter is padded with silence); add = speaker "
        "1 talks first, then speaker 2. Ignored with one speaker."))
    normalize_loudness: bool = option(True, help=(
        "Bring each speaker to -23 LUFS first, as the reference does (silence is left as is)."))
    fps: float = option(25.0, min=1.0, max=120.0, step=0.01, help=(
        "Video frame rate the features are aligned to. InfiniteTalk was trained at 25."))
    frame_limit: int = option(0, min=0, max=1_000_000, help=(
        "Keep only the first N video frames (and the matching audio); 0 = the whole audio."))
    wav2vec_precision: str = option("fp32", choices=WAV2VEC_PRECISIONS, help=(
        "Compute precision of wav2vec2. fp32 reproduces the reference exactly and the model is small (~0.4 GB); "
        "fp16/bf16 halve its memory at a small cost in accuracy."))
