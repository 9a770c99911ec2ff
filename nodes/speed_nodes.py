"""Speed nodes: InfiniteTalk Step Cache and InfiniteTalk Guidance Options (optional `cache` / `guidance` inputs of the
sampler), and InfiniteTalk Model Speed (torch.compile of the blocks, fp8 matmuls). Thin: the options are the
engine's (CacheOptions, GuidanceOptions, SpeedSettings: see wanvideo/options.py)."""
from __future__ import annotations

from ..wanvideo.model.settings import SpeedSettings
from ..wanvideo.options import node_input, node_inputs, option_values
from ..wanvideo.sampling.cache import CacheOptions
from ..wanvideo.sampling.guidance_settings import GuidanceOptions


class _OptionGroupNode:
    """A node whose widgets are one group of engine options, handed on as a dict to a sampler input."""

    CATEGORY = "InfiniteTalk"
    FUNCTION = "make"
    SETTINGS = None  # the engine's dataclass declaring the group
    DEFAULTS: dict = {}  # widgets whose default here differs from the engine's, and why (see the subclass)

    @classmethod
    def INPUT_TYPES(cls):
        inputs = node_inputs(cls.SETTINGS)
        inputs.update({name: node_input(cls.SETTINGS, name, default=value) for name, value in cls.DEFAULTS.items()})
        return {"required": inputs}

    def make(self, **widgets):
        return (option_values(self.SETTINGS, widgets),)


class InfiniteTalkStepCache(_OptionGroupNode):
    SETTINGS = CacheOptions
    DEFAULTS = {"cache_method": "teacache"}  # adding this node means a cache is wanted
    RETURN_TYPES = ("INFINITETALK_CACHE",)
    RETURN_NAMES = ("cache",)
    OUTPUT_TOOLTIPS = ("Step-cache settings for the `cache` input of the InfiniteTalk Sampler or the Animate Sampler.",)
    DESCRIPTION = ("Skips the transformer blocks of a model call whose input barely changed since the last computed "
                   "one (TeaCache as the reference implements it for InfiniteTalk, or MagCache), reusing its cached "
                   "residual: fewer model calls for a little fidelity. The log says per window how many were skipped.")


class InfiniteTalkGuidanceOptions(_OptionGroupNode):
    SETTINGS = GuidanceOptions
    RETURN_TYPES = ("INFINITETALK_GUIDANCE",)
    RETURN_NAMES = ("guidance",)
    OUTPUT_TOOLTIPS = ("Guidance options for the `guidance` input of the InfiniteTalk Sampler or the Animate Sampler.",)
    DESCRIPTION = ("How the guidance passes of a step run (one batched forward or one by one) and adaptive "
                   "projected guidance (APG) instead of plain CFG.")


class InfiniteTalkModelSpeed:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "apply"
    RETURN_TYPES = ("INFINITETALK_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same model, compiled and/or multiplying fp8 weights in fp8.",)
    DESCRIPTION = ("torch.compile of the transformer blocks (the first window compiles, later ones reuse it) and fp8 "
                   "matmuls for fp8 weights on GPUs of compute capability 8.9 or newer. Applies to the loaded model "
                   "in place until it is loaded again.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("INFINITETALK_MODEL", {"tooltip": "From InfiniteTalk Model Loader."}),
                             **node_inputs(SpeedSettings)}}

    def apply(self, model, **widgets):
        SpeedSettings(**option_values(SpeedSettings, widgets)).apply(model)
        return (model,)


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkStepCache": InfiniteTalkStepCache,
    "InfiniteTalkGuidanceOptions": InfiniteTalkGuidanceOptions,
    "InfiniteTalkModelSpeed": InfiniteTalkModelSpeed,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "InfiniteTalkStepCache": "InfiniteTalk Step Cache",
    "InfiniteTalkGuidanceOptions": "InfiniteTalk Guidance Options",
    "InfiniteTalkModelSpeed": "InfiniteTalk Model Speed",
}
