"""Which patcher a loader returns: the host's own ModelPatcher subclass inside ComfyUI, the standalone one elsewhere.

Its own module because it is the one place that knows both: `host_model_patcher` builds on `model_patcher`'s
`PlacedModel`, and this picks between them, so neither of the two imports the other back.
"""
from __future__ import annotations

from .model_patcher import InfiniteTalkModelPatcher


def make_model_patcher(model, load_device, offload_device, offload_after: str = "auto"):
    """The INFINITETALK_MODEL for an engine module: in ComfyUI a subclass of the host's own ModelPatcher (so it
    answers whatever the host's model management asks of a model, in every version), else the standalone one."""
    try:
        from .host_model_patcher import HostModelPatcher
    except ImportError:  # no ComfyUI (or one without comfy.model_patcher)
        return InfiniteTalkModelPatcher(model, load_device, offload_device, offload_after)
    return HostModelPatcher(model, load_device, offload_device, offload_after=offload_after)
