"""InfiniteTalk Multi-GPU: the options of several-GPU sampling, for the samplers' optional `parallel` input. Thin:
the options are the engine's (wanvideo.model.parallel.settings.MultiGPUSettings)."""
from __future__ import annotations

from ..wanvideo.errors import InputError
from ..wanvideo.model.parallel.settings import MultiGPUSettings, make_executor, release_executors
from ..wanvideo.options import node_inputs, option_values
from . import host

VRAM_NOTE = ("ComfyUI's model management cannot see the memory these modes use on the other GPUs (the model copies, "
             "the blocks placed there, the worker processes): keep those cards for this node.")


class InfiniteTalkMultiGPU:
    CATEGORY = "InfiniteTalk"
    FUNCTION = "make"
    RETURN_TYPES = ("INFINITETALK_PARALLEL",)
    RETURN_NAMES = ("parallel",)
    OUTPUT_TOOLTIPS = ("Several-GPU settings for the `parallel` input of the InfiniteTalk Sampler or the Animate "
                       "Sampler.",)
    DESCRIPTION = ("Runs the sampler on several GPUs: guidance_split (each guidance pass on its own GPU), "
                   "layer_split (the model's blocks spread over the GPUs) or sequence_parallel (worker processes, "
                   "one per GPU, optionally sharding the weights with FSDP). " + VRAM_NOTE)

    @classmethod
    def INPUT_TYPES(cls):
        inputs = node_inputs(MultiGPUSettings)
        name, (kind, meta) = "parallel", inputs["parallel"]
        inputs[name] = (kind, {**meta, "tooltip": f"{meta['tooltip']} {VRAM_NOTE}"})
        return {"required": inputs}

    def make(self, **widgets):
        values = option_values(MultiGPUSettings, widgets)
        MultiGPUSettings(**values).validated()  # a wrong device list is reported here, before any sampling
        return (values,)


def parallel_executor(parallel, model):
    """(executor or None, whether the host loads the model on its GPU first) from a sampler's `parallel` input.

    guidance_split runs on the model as the host loads it (plus copies); layer_split and sequence_parallel must
    not have the host load the whole model onto one card."""
    if parallel is None:
        return None, True
    if not isinstance(parallel, dict):
        raise InputError("the sampler's parallel input must come from the InfiniteTalk Multi-GPU node")
    settings = MultiGPUSettings(**option_values(MultiGPUSettings, parallel)).validated()
    engine_model = getattr(model, "model", model)
    source = getattr(engine_model, "wanvideo_source", None)
    executor = make_executor(settings, source=source if settings.parallel == "sequence_parallel" else None)
    host.on_unload_all_models(release_executors)  # the host's Free button releases the workers and copies too
    return executor, settings.parallel == "guidance_split"


NODE_CLASS_MAPPINGS = {"InfiniteTalkMultiGPU": InfiniteTalkMultiGPU}
NODE_DISPLAY_NAME_MAPPINGS = {"InfiniteTalkMultiGPU": "InfiniteTalk Multi-GPU"}
