"""Audio nodes: the wav2vec2 loader and the audio embeddings (thin layers over wanvideo.audio)."""
from __future__ import annotations

import logging

import torch

from ..wanvideo.app.model_files import FOLDERS
from ..wanvideo.audio import build_audio_embeddings, load_wav2vec
from ..wanvideo.audio.settings import WAV2VEC_PRECISIONS, AudioSettings
from ..wanvideo.errors import InputError
from ..wanvideo.options import node_input, node_inputs
from ..wanvideo.validation import check_options
from . import host

log = logging.getLogger(__name__)

# wav2vec2 files live in models/wav2vec2 or models/audio_encoders: both are listed (wanvideo/app/model_files.py).
MODEL_FOLDERS = FOLDERS["wav2vec"]
for _folder in MODEL_FOLDERS:
    host.register_model_folder(_folder)

PRECISIONS = WAV2VEC_PRECISIONS


class InfiniteTalkWav2VecLoader:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "load"
    RETURN_TYPES = ("INFINITETALK_WAV2VEC",)
    RETURN_NAMES = ("wav2vec",)
    OUTPUT_TOOLTIPS = ("The speech encoder: connect to InfiniteTalk Audio Embeds.",)
    DESCRIPTION = ("Loads the wav2vec2 speech encoder (e.g. TencentGameMate/chinese-wav2vec2-base) "
                   "that turns speech into InfiniteTalk's audio features.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (host.model_choices(*MODEL_FOLDERS, keep=lambda f: not f.endswith(".json")), {
                    "tooltip": "A Hugging Face folder (config.json + model.safetensors) or a single .safetensors file "
                               "from models/wav2vec2 or models/audio_encoders, e.g. chinese-wav2vec2-base or its fp16 repack."}),
                "precision": node_input(AudioSettings, "wav2vec_precision"),
                "device": (["main", "offload"], {
                    "default": "main",
                    "tooltip": "main: keep the model on the GPU. offload: keep it in RAM and move it to the GPU only "
                               "while computing embeddings (frees its VRAM for the video model)."}),
            }
        }

    def load(self, model, precision="fp32", device="main"):
        path = host.resolve_model(model, *MODEL_FOLDERS)
        main = host.torch_device("main")
        if device == "offload":
            enc = load_wav2vec(path, dtype=precision, device=host.torch_device("offload"), compute_device=main)
        else:
            enc = load_wav2vec(path, dtype=precision, device=main)
        return (enc,)


def _audio_input(audio, name: str):
    """(waveform [channels, samples], sample_rate) from a ComfyUI AUDIO dict."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise InputError(f"{name} is not an AUDIO value (expected {{'waveform': [1, C, T], 'sample_rate': int}})")
    wave = audio["waveform"]
    if not isinstance(wave, torch.Tensor):
        wave = torch.as_tensor(wave)
    if wave.ndim == 3:
        if wave.shape[0] > 1:
            log.warning("%s holds a batch of %d clips: using the first", name, wave.shape[0])
        wave = wave[0]
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise InputError(f"{name}: waveform shape {tuple(audio['waveform'].shape)} is not [batch, channels, samples]")
    return wave, int(audio["sample_rate"])


class InfiniteTalkAudioEmbeds:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "embed"
    RETURN_TYPES = ("INFINITETALK_AUDIO_EMBEDS", "AUDIO", "INT")
    RETURN_NAMES = ("audio_embeds", "audio", "num_frames")
    OUTPUT_TOOLTIPS = (
        "wav2vec2 features per speaker at the video frame rate, for the InfiniteTalk sampler.",
        "The processed audio that was embedded (mono, 16 kHz, loudness-normalised; both speakers mixed): "
        "connect it to Video Combine so the sound matches the lips.",
        "Number of video frames the audio covers (int(seconds x fps), after the frame limit).",
    )
    DESCRIPTION = "Turns one or two speakers' speech into InfiniteTalk audio embeddings, as the reference does."

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "wav2vec": ("INFINITETALK_WAV2VEC", {"tooltip": "The wav2vec2 model from the Wav2Vec loader."}),
                "audio_1": ("AUDIO", {"tooltip": "Speech of the (first) speaker: any length, channel count or sample rate."}),
                **node_inputs(AudioSettings, "speaker_mode", "normalize_loudness", "fps", "frame_limit"),
            },
            "optional": {
                "audio_2": ("AUDIO", {"tooltip": "Optional speech of a second speaker (two-person video)."}),
            },
        }

    def embed(self, wav2vec, audio_1, speaker_mode="para", normalize_loudness=True, fps=25.0, frame_limit=0,
              audio_2=None):
        check_options(AudioSettings, dict(speaker_mode=speaker_mode, normalize_loudness=normalize_loudness, fps=fps,
                                          frame_limit=frame_limit))  # the registry's ranges, before any work
        wave_1, rate_1 = _audio_input(audio_1, "audio_1")
        wave_2, rate_2 = _audio_input(audio_2, "audio_2") if audio_2 is not None else (None, None)
        bar = host.progress_bar(100)

        def progress(done, total):
            host.raise_if_interrupted()
            bar.update_absolute(done, total)

        embeds = build_audio_embeddings(
            wav2vec, wave_1, rate_1, wave_2, rate_2, mode=speaker_mode, fps=fps,
            normalize_loudness=normalize_loudness, frame_limit=frame_limit, callback=progress,
        )
        audio = {"waveform": embeds.waveform.reshape(1, 1, -1).clone(), "sample_rate": embeds.sample_rate}
        host.send_progress_text(
            f"{embeds.num_frames} frames ({embeds.num_frames / embeds.fps:.2f} s), {embeds.num_speakers} speaker(s)")
        return (embeds, audio, embeds.num_frames)


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkWav2VecLoader": InfiniteTalkWav2VecLoader,
    "InfiniteTalkAudioEmbeds": InfiniteTalkAudioEmbeds,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "InfiniteTalkWav2VecLoader": "InfiniteTalk Wav2Vec Loader",
    "InfiniteTalkAudioEmbeds": "InfiniteTalk Audio Embeds",
}
