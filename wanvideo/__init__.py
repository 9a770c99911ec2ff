"""WanVideo InfiniteTalk engine: plain PyTorch and libraries, never imports ComfyUI.

Subpackages: `audio` (wav2vec2 features), `model` (Wan2.1 I2V DiT + InfiniteTalk
adapter), `sampling` (schedules, guidance, the long-video window loop), `video`
(frame store, encoders, audio mux).
"""
from .errors import InputError, WanVideoError

__version__ = "0.1.0"
__all__ = ["WanVideoError", "InputError", "__version__"]
