"""wanvideo.model: the Wan2.1 I2V DiT with the InfiniteTalk audio adapter.

- `build_model(config, dtype, device)`: a model with random weights from a config dict.
- `load_model(path_or_paths, dtype=..., device=...)`: a model from real checkpoint files.
- `preset(name)` / `tiny_config()`: the real 14B sizes and the fixtures' tiny sizes.
"""
from .config import PRESETS, config_from_reference, normalize_config, preset, tiny_config
from .dit import WanInfiniteTalkModel, build_model

__all__ = [
    "PRESETS",
    "WanInfiniteTalkModel",
    "build_model",
    "config_from_reference",
    "normalize_config",
    "preset",
    "tiny_config",
]
