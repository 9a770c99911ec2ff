"""Build a DiT with random weights from a config: the InfiniteTalk model or the WanAnimate one."""
from __future__ import annotations

import torch

from .animate_dit import WanAnimateModel
from .config import is_animate
from .dit import WanInfiniteTalkModel


def build_model(config: dict, dtype=torch.float32, device="cpu") -> WanInfiniteTalkModel:
    """A model with freshly initialised (random) weights built directly on `device` in `dtype`.

    `config` uses the reference constructor names (see wanvideo.model.config); `model_type` 'i2v' (default) gives
    the Wan2.1 I2V (+ InfiniteTalk) model, 'animate' the WanAnimate model, 'longcat_avatar' LongCat-Video-Avatar
    (official constructor names, see longcat_config). Use `load_model` / `load_longcat_model` for real checkpoints.
    """
    if isinstance(config, dict) and config.get("model_type") == "longcat_avatar":
        from .longcat_dit import LongCatAvatarModel

        return LongCatAvatarModel(config, dtype=dtype, device=device)
    if is_animate(config):
        return WanAnimateModel(config, dtype=dtype, device=device)
    return WanInfiniteTalkModel(config, dtype=dtype, device=device)
