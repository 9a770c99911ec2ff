"""Our DiT as a subclass of the host's own `comfy.model_patcher.ModelPatcher` (imported only inside ComfyUI).

ComfyUI's model management asks more of a model with every release (0.12 added `is_dynamic`, RAM and pin
accounting, ...); a subclass answers all of it as the host's own models do. We override only how weights
move: the host walks modules and casts weights layer by layer (its lowvram mode needs its own `comfy.ops`
layers), while our engine streams whole blocks (`WeightPlacement`, the block swapper). So:

- `load` / `partially_load`: the core, then blocks from the last, into the budget the host grants; the
  blocks that do not fit are streamed (a partial load is ComfyUI's lowvram mode);
- `partially_unload`: stream more blocks until the host's `memory_to_free` is freed;
- `unpatch_model(unpatch_weights=True)` (the host's `detach`, "Free model and node cache"): every weight back
  to the offload device; object patches, callbacks and injections stay the host's.

`is_dynamic()` stays the base class's False: with dynamic VRAM (comfy-aimdo, 0.33 on GPUs) the host manages
ours as a classic model, evicting dynamic models to make room for it (docs/comfyui-versions.md).
"""
from __future__ import annotations

import comfy.model_patcher

from .model_patcher import PlacedModel


class HostModelPatcher(PlacedModel, comfy.model_patcher.ModelPatcher):
    """INFINITETALK_MODEL in ComfyUI: the host's ModelPatcher over the engine's DiT, with block placement."""

    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False,
                 offload_after: str = "auto", placement=None, **host_kwargs):
        # (model, load_device, offload_device, size, weight_inplace_update) is how the host's clone() calls us
        self._init_placement(model, load_device, offload_device, offload_after, placement)
        comfy.model_patcher.ModelPatcher.__init__(self, model, self.load_device, self.offload_device,
                                                  size=self.placement.managed_bytes,
                                                  weight_inplace_update=weight_inplace_update, **host_kwargs)

    def clone(self, *args, **kwargs):
        twin = super().clone(*args, **kwargs)
        twin.offload_after = self.offload_after
        return twin

    def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
        """The host's load with a weight budget (`lowvram_model_memory` bytes in all; 0 or full_load: all)."""
        self._check_device(device_to)
        self.load_calls += 1
        budget = float("inf") if full_load or not lowvram_model_memory else lowvram_model_memory
        self.placement.load(budget - self.placement.loaded_bytes)
        self._mirror_host_counters()

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False) -> int:
        self.patch_model(load_weights=False)  # object patches and injections, as the host's partially_load
        loaded = super().partially_load(device_to, extra_memory, force_patch_weights)
        self._mirror_host_counters()
        return loaded

    def partially_unload(self, device_to, memory_to_free=0, force_patch_weights=False) -> int:
        freed = super().partially_unload(device_to, memory_to_free, force_patch_weights)
        self._mirror_host_counters()
        return freed

    def unpatch_model(self, device_to=None, unpatch_weights=True):
        if unpatch_weights:
            self._offload_weights()
            self._mirror_host_counters()
        # The host's own bookkeeping (object patches, injections) without its per-module weight walk.
        comfy.model_patcher.ModelPatcher.unpatch_model(self, device_to=None, unpatch_weights=False)

    def _mirror_host_counters(self) -> None:
        # Host code that reads the module's counters directly sees what the placement holds.
        self.model.model_loaded_weight_memory = self.placement.loaded_bytes
        self.model.model_lowvram = self.placement.loaded and self.placement.streamed > 0
        self.model.device = self.current_loaded_device()
