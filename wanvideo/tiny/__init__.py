"""wanvideo.tiny: tiny random-weight models for tests, benchmarks and the command line's demo.

- `tiny_models(seed)` / `tiny_animate_models(seed)`: a complete model set in memory (`models.py`).
- `write_tiny_models(models_dir)`: the same models written as real model files (`files.py`).
"""
from .models import (
    TINY_VAE_CONFIG,
    TRAIN_TIMESTEPS,
    TinyAnimateSet,
    TinyModelSet,
    smooth_time_embedding,
    tiny_animate_models,
    tiny_models,
    tiny_vae,
)

__all__ = [
    "TINY_VAE_CONFIG",
    "TRAIN_TIMESTEPS",
    "TinyAnimateSet",
    "TinyModelSet",
    "smooth_time_embedding",
    "tiny_animate_models",
    "tiny_models",
    "tiny_vae",
]
