"""A tiny random-weight LongCat-Video-Avatar 1.5 set (DiT, Whisper encoder, video VAE, text stand-ins).

For tests and the command line's embedded demo: the real interfaces and layouts (16 latent channels, 8x/4x VAE
compression, a 32-layer Whisper encoder giving 5 feature groups, 128 mel bins) at a size that runs in seconds on
a CPU. Weights are random but deterministic in `seed`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audio.longcat_whisper import WhisperAudioEncoder
from ..model.longcat_config import tiny_longcat_config
from ..model.longcat_dit import LongCatAvatarModel

TINY_WHISPER = dict(d_model=16, encoder_layers=32, encoder_attention_heads=2, encoder_ffn_dim=32, num_mel_bins=128,
                    max_source_positions=1500, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32,
                    vocab_size=64, max_target_positions=16, pad_token_id=0, bos_token_id=1,
                    eos_token_id=2, decoder_start_token_id=1)


@dataclass
class TinyLongCatSet:
    dit: LongCatAvatarModel
    vae: object  # DiffusersWanVAE
    whisper: WhisperAudioEncoder
    context: torch.Tensor  # [1, 1, 7, caption] "prompt" embeddings
    context_null: torch.Tensor  # [1, 1, 11, caption] "negative prompt" embeddings


def tiny_whisper(seed: int = 0, device="cpu") -> WhisperAudioEncoder:
    from transformers import WhisperConfig, WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = WhisperEncoder(WhisperConfig(**TINY_WHISPER)).eval().requires_grad_(False).to(device)
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30,
                                        n_fft=400)
    return WhisperAudioEncoder(encoder, extractor, torch.float32, torch.device(device))


def tiny_longcat_models(seed: int = 0, dtype=torch.float32, device="cpu") -> TinyLongCatSet:
    from .models import tiny_vae

    config = tiny_longcat_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dit = LongCatAvatarModel(config, dtype=dtype, device=device).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 1)
    caption = config["caption_channels"]
    return TinyLongCatSet(
        dit=dit,
        vae=tiny_vae(seed + 2, dtype=dtype, device=device),
        whisper=tiny_whisper(seed + 3, device=device),
        context=torch.randn(1, 1, 7, caption, generator=gen),
        context_null=torch.randn(1, 1, 11, caption, generator=gen),
    )


def write_tiny_longcat_files(models_dir, seed: int = 0) -> dict:
    """The tiny DiT as an official-layout folder (config.json + safetensors) in diffusion_models/ and the tiny
    Whisper as a Hugging Face folder in audio_encoders/, for a host's loaders; returns the names to pick."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file
    from transformers import WhisperConfig, WhisperModel

    models = Path(models_dir)
    tiny = tiny_longcat_models(seed=seed)
    dit_dir = models / "diffusion_models" / "longcat_tiny" / "base_model"
    dit_dir.mkdir(parents=True, exist_ok=True)
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in tiny.dit.config.items() if k != "model_type"}
    (dit_dir / "config.json").write_text(json.dumps({"_class_name": "LongCatVideoAvatarTransformer3DModel", **config}))
    save_file({k: v.contiguous() for k, v in tiny.dit.state_dict().items()},
              str(dit_dir / "diffusion_pytorch_model.safetensors"))
    whisper_dir = models / "audio_encoders" / "whisper_tiny_longcat"
    full = WhisperModel(WhisperConfig(**TINY_WHISPER))
    full.encoder.load_state_dict(tiny.whisper.encoder.state_dict())
    full.save_pretrained(whisper_dir)
    tiny.whisper.feature_extractor.save_pretrained(whisper_dir)
    return {"longcat_model": "longcat_tiny/base_model", "whisper": "whisper_tiny_longcat"}
