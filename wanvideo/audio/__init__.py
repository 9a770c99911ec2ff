"""wanvideo.audio: speech -> wav2vec2 features at the video frame rate, as the InfiniteTalk reference computes them.

Public API:
    load_wav2vec(path, dtype=torch.float32, device="cpu") -> Wav2VecEncoder
    embed_audio(model, waveform, sample_rate, fps=25.0, normalize_loudness=True) -> [frames, layers, channels]
    build_audio_embeddings(model, audio_1, sample_rate_1, audio_2=None, ..., mode="para"|"add") -> AudioEmbeddings
    frame_windows(embedding, start, count, window=5) -> [count, window, layers, channels]
    tiny_wav2vec2(seed=0) -> a tiny random-weight Wav2VecEncoder
LongCat-Video-Avatar 1.5 (Whisper-large-v3 features):
    load_whisper(dir, dtype=, device=), longcat_audio_features(model, waveform, sample_rate=16000, fps=25) -> [T, 5, D],
    longcat_audio_window(full_emb, segment_index, ...) -> [1, 93, 5, 5, D], longcat_audio_embeds(...) -> LongCatAudio
"""
from .embeddings import arrange_speakers, build_audio_embeddings, embed_audio, frame_windows
from .encoder import SAMPLE_RATE, Wav2VecEncoder
from .features import embed_waveform16k, num_video_frames
from .loader import load_wav2vec
from .longcat_embeds import LongCatAudio, longcat_audio_embeds
from .longcat_whisper import load_whisper, longcat_audio_features, longcat_audio_window
from .preprocess import loudness_normalize, prepare_waveform
from .settings import AudioSettings
from .tiny import random_wav2vec2, tiny_wav2vec2
from .types import AudioEmbeddings

__all__ = [
    "AudioEmbeddings", "AudioSettings", "LongCatAudio", "load_whisper", "longcat_audio_embeds",
    "longcat_audio_features", "longcat_audio_window", "SAMPLE_RATE", "Wav2VecEncoder", "arrange_speakers", "build_audio_embeddings",
    "embed_audio", "embed_waveform16k", "frame_windows", "load_wav2vec", "loudness_normalize",
    "num_video_frames", "prepare_waveform", "random_wav2vec2", "tiny_wav2vec2",
]
