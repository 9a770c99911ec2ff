"""wanvideo.model: the Wan2.1 I2V DiT with the InfiniteTalk audio adapter.

- `build_model(config, dtype, device)`: a model with random weights from a config dict.
- `load_model(path_or_paths, dtype=..., device=...)`: a model from real checkpoint files.
- `apply_lora(model, path, strength)`: merge a LoRA.
- `preset(name)` / `tiny_config()`: the real 14B sizes and the fixtures' tiny sizes.
"""
from .build import build_model
from .config import PRESETS, config_from_reference, normalize_config, preset, tiny_config
from .dit import WanInfiniteTalkModel
from .loading import load_model
from .lora import apply_lora, apply_loras
from .settings import LoaderSettings

__all__ = [
    "LoaderSettings",
    "PRESETS",
    "WanInfiniteTalkModel",
    "apply_lora",
    "apply_loras",
    "load_model",
    "build_model",
    "config_from_reference",
    "normalize_config",
    "preset",
    "tiny_config",
]
