"""Our DiT as a model ComfyUI's model management can load, partially load, offload and unload.

ComfyUI keeps a list of loaded models (`comfy.model_management.current_loaded_models`) and makes room
for a model by unloading or partially unloading the others, measuring free VRAM, through the interface of
`comfy.model_patcher.ModelPatcher`. In the host, `make_model_patcher` returns a subclass of the host's own
ModelPatcher (host_model_patcher.py), so whatever a ComfyUI version asks of a model is answered by its own
class; outside the host (plain Python, the CLI, fast tests) `InfiniteTalkModelPatcher` offers the few methods
a caller uses. Both share `PlacedModel`: weights move by the engine's block placement, not layer by layer:

- the weights wait on the offload device until the sampler asks the host to load them
  (`host.load_model_for_sampling`), so the host first evicts what it can (the text encoder, CLIP vision);
- a partial load (ComfyUI's lowvram mode) keeps the core and the last blocks on the GPU and streams the
  first blocks with the engine's block swapper; the loader's `blocks_to_swap` stays the minimum streamed;
- `detach` (the host's unload, "Free model and node cache", another big model needing the card) moves
  everything back to the offload device.

Weights are never patched here: LoRAs are merged (or kept beside packed weights) by the loader, so the
host's weight-patch machinery has nothing to do; sizes are the stored bytes (fp8, GGUF, bf16 alike).
"""
from __future__ import annotations

import contextlib
import logging
import uuid

import torch

from ..wanvideo.model.memory import inference_bytes
from ..wanvideo.model.placement import WeightPlacement

log = logging.getLogger("wanvideo")

AUTO_OFFLOAD_BELOW_BYTES = 32 * 1024**3  # "auto": offload after sampling on cards with less VRAM than this


class PlacedModel:
    """What our patchers share: sizes and moves come from the engine's WeightPlacement, not from ComfyUI's
    per-module weight walk (which cannot stream our blocks). Mixed into the host's ModelPatcher in the host
    (host_model_patcher.py) and into the standalone InfiniteTalkModelPatcher below."""

    def _init_placement(self, model, load_device, offload_device, offload_after, placement) -> None:
        # Every patcher over one engine module (the host clones them) shares one placement: it is the module's.
        placement = placement or getattr(model, "wanvideo_placement", None) or WeightPlacement(model, offload_device)
        model.wanvideo_placement = placement
        self.__dict__.update(model=model, placement=placement, offload_after=offload_after,
                             load_device=torch.device(load_device), offload_device=torch.device(offload_device))
        self.load_calls = 0  # for tests and logs

    # ----- what the host reads ----------------------------------------------------------------------------
    def model_size(self) -> int:
        return self.placement.managed_bytes

    def loaded_size(self) -> int:
        return self.placement.loaded_bytes

    def current_loaded_device(self):
        return self.load_device if self.placement.loaded else self.offload_device

    def model_dtype(self):
        return getattr(self.model, "compute_dtype", None)

    def lowvram_patch_counter(self) -> int:
        return 0

    def memory_required(self, latent_shape, batch: int = 1) -> int:
        """Device memory one forward needs besides the loaded weights (activations, streamed blocks)."""
        dtype = self.model_dtype() or torch.bfloat16
        own_estimate = getattr(type(self.model), "inference_bytes", None)  # a DiT family with its own (LongCat)
        if own_estimate is not None:
            working = own_estimate(self.model, latent_shape, dtype, batch)
        else:
            working = inference_bytes(getattr(self.model, "config", {}), latent_shape, dtype, batch)
        return working + self.placement.swap_working_bytes

    # ----- what the host calls ----------------------------------------------------------------------------
    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False) -> int:
        """Load up to `extra_memory` more bytes onto `device_to` (the core first, then blocks); bytes loaded."""
        self._check_device(device_to)
        self.load_calls += 1
        return self.placement.load(extra_memory)

    def partially_unload(self, device_to, memory_to_free=0, force_patch_weights=False) -> int:
        """Stream blocks instead of keeping them on the GPU until `memory_to_free` bytes are freed."""
        return self.placement.unload_blocks(memory_to_free)

    def _offload_weights(self) -> None:
        freed = self.placement.unload()
        if freed:
            log.info("WanVideo InfiniteTalk: model offloaded to %s (%.2f GB freed)", self.offload_device, freed / 1e9)

    # ----- ours -------------------------------------------------------------------------------------------
    def should_offload_after(self, total_vram: int | None) -> bool:
        if self.offload_after == "yes":
            return True
        if self.offload_after == "no" or self.load_device.type == "cpu":
            return False
        return total_vram is None or total_vram < AUTO_OFFLOAD_BELOW_BYTES

    def _check_device(self, device_to) -> None:
        if device_to is not None and torch.device(device_to) != self.load_device:
            log.warning("WanVideo InfiniteTalk: asked to load onto %s; the model computes on %s", device_to,
                        self.load_device)

    def __call__(self, *args, **kwargs):
        """Run the engine module (for code that calls an INFINITETALK_MODEL directly); loads it first if needed."""
        if not self.placement.loaded:
            from . import host

            host.load_model_for_sampling(self)
        return self.model(*args, **kwargs)

    def __getattr__(self, name):
        # Read-through to the engine module (config, has_audio_adapter, compute_dtype, ...), for code that
        # inspects an INFINITETALK_MODEL; only reached for names the patcher does not have itself.
        if name.startswith("__") or "model" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["model"], name)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({type(self.model).__name__}, {self.model_size() / 1e9:.2f} GB, "
                f"{self.loaded_size() / 1e9:.2f} GB on {self.load_device})")


class InfiniteTalkModelPatcher(PlacedModel):
    """The INFINITETALK_MODEL outside ComfyUI (plain Python, the CLI's tests): the few ModelPatcher methods a
    caller uses, by hand. In the host, make_model_patcher returns the host's own ModelPatcher subclass."""

    def __init__(self, model, load_device, offload_device, offload_after: str = "auto", placement=None):
        self._init_placement(model, load_device, offload_device, offload_after, placement)
        self.parent = None
        self.size = self.placement.managed_bytes
        self.model_options = {"transformer_options": {}}
        self.patches, self.backup, self.object_patches = {}, {}, {}
        self.patches_uuid = uuid.uuid4()
        self.weight_inplace_update = False

    def is_dynamic(self) -> bool:
        return False

    def loaded_ram_size(self) -> int:
        return 0

    def model_patches_to(self, device) -> None:
        return None

    def model_patches_models(self) -> list:
        return []

    def get_nested_additional_models(self) -> list:
        return []

    def get_additional_models(self) -> list:
        return []

    def is_clone(self, other) -> bool:
        return getattr(other, "model", None) is self.model

    def clone_has_same_weights(self, clone) -> bool:
        return self.is_clone(clone)

    def clone(self) -> "InfiniteTalkModelPatcher":
        twin = InfiniteTalkModelPatcher(self.model, self.load_device, self.offload_device, self.offload_after,
                                        placement=self.placement)
        twin.parent = self
        return twin

    def detach(self, unpatch_all=True):
        """The host's unload: with `unpatch_all`, every weight back to the offload device."""
        if unpatch_all:
            self._offload_weights()
        return self.model

    def patch_model(self, device_to=None, lowvram_model_memory=0, load_weights=True, force_patch_weights=False):
        if load_weights and device_to is not None:
            self.partially_load(device_to, lowvram_model_memory or float("inf"))
        return self.model

    def unpatch_model(self, device_to=None, unpatch_weights=True):
        if unpatch_weights:
            self.placement.unload()

    def cleanup(self) -> None:
        return None


def engine_model(model):
    """The engine's module behind an INFINITETALK_MODEL (a patcher, or a bare module from older graphs/tests)."""
    return model.model if isinstance(model, PlacedModel) else model


@contextlib.contextmanager
def hosted_sampling(model):
    """(engine module, per-window prepare function) for a sampler; offloads afterwards when the model says so.

    Before each window's denoising the host is asked to load the model with room for that window's
    activations (and the streamed blocks), as ComfyUI's own samplers do: the host evicts other models, or
    loads ours partially, first. A bare engine module (no patcher) runs as it is.
    """
    from . import host

    if not isinstance(model, PlacedModel):
        yield model, None
        return

    def prepare(latent_shape) -> None:
        host.raise_if_interrupted()
        # Room for one forward's activations (the guidance passes run one after another, batch 1) and the
        # streamed blocks; the host adds its own inference reserve on top, as for its samplers.
        need = model.memory_required(latent_shape, batch=1)
        host.load_model_for_sampling(model, memory_required=need, minimum_memory_required=need)

    try:
        yield model.model, prepare
    finally:
        if model.should_offload_after(host.total_vram(model.load_device)):
            host.unload_model(model)
