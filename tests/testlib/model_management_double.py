"""A stand-in for ComfyUI's `comfy.model_management` that models its VRAM accounting. TEST-ONLY.

Written from ComfyUI v0.3.64's behaviour (comfy/model_management.py), simplified to what decides who
stays on the GPU:

- a list of loaded models, newest first (`current_loaded_models`), each entry remembering its patcher;
- free VRAM = the card's budget minus what every listed model reports as `loaded_size()`;
- `load_models_gpu(models, memory_required, minimum_memory_required)`: makes room for the models' not yet
  loaded bytes plus the inference memory by unloading other models (`free_memory`: the ones with the least
  offloaded memory first, `partially_unload` when that frees enough, else `detach`), then loads each model
  completely if it fits, else partially with what is left after the minimum inference memory (lowvram);
- `unload_all_models()` ("Free model and node cache"): `free_memory` of everything.

`HostModel` plays one of the host's own models (the umt5 text encoder, CLIP vision) with the
ModelPatcher methods the accounting uses. `events` records unloads and loads in order.
Install with `install(monkeypatch, budget)`: it puts `comfy` and `comfy.model_management` in sys.modules.
"""
from __future__ import annotations

import sys
import types

import torch

GB = 1024**3


class HostModel:
    """A host-side model (e.g. the text encoder): `size` bytes, loaded in one piece."""

    def __init__(self, name: str, size: int, mm: "FakeModelManagement"):
        self.name = name
        self.size = int(size)
        self.model = torch.nn.Identity()  # what ComfyUI's LoadedModel watches
        self.load_device = mm.device
        self.offload_device = torch.device("cpu")
        self.parent = None
        self.loaded = 0
        self._mm = mm

    def model_size(self):
        return self.size

    def loaded_size(self):
        return self.loaded

    def current_loaded_device(self):
        return self.load_device if self.loaded else self.offload_device

    def model_patches_to(self, device):
        return None

    def model_patches_models(self):
        return []

    def model_dtype(self):
        return torch.float16

    def is_clone(self, other):
        return getattr(other, "model", None) is self.model

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
        before = self.loaded
        self.loaded = self.size  # one piece: text encoders are small next to the budget here
        self._mm.events.append(("load", self.name))
        return self.loaded - before

    def partially_unload(self, device_to, memory_to_free=0):
        return 0  # cannot be split: the host detaches it instead

    def detach(self, unpatch_all=True):
        if unpatch_all:
            self.loaded = 0
            self._mm.events.append(("unload", self.name))
        return self.model


class _Entry:
    """ComfyUI's LoadedModel, reduced to the accounting."""

    def __init__(self, model, device):
        self.model = model
        self.device = device

    def model_memory(self):
        return self.model.model_size()

    def model_offloaded_memory(self):
        return self.model.model_size() - self.model.loaded_size()

    def model_load(self, budget):
        self.model.model_patches_to(self.device)
        self.model.partially_load(self.device, budget)

    def model_unload(self, memory_to_free=None):
        if memory_to_free is not None and memory_to_free < self.model.loaded_size():
            if self.model.partially_unload(self.model.offload_device, memory_to_free) >= memory_to_free:
                return False
        self.model.detach(True)
        return True


class FakeModelManagement(types.ModuleType):
    def __init__(self, total_vram: int, device="cpu", inference_memory: int = 0, reserved: int = 0):
        super().__init__("comfy.model_management")
        self.total_vram = int(total_vram)
        self.device = torch.device(device)
        self.inference_memory = int(inference_memory)
        self.reserved = int(reserved)
        self.current_loaded_models: list[_Entry] = []
        self.events: list[tuple] = []
        self.load_requests: list[dict] = []
        self.empty_cache_calls = 0

    # devices and memory
    def get_torch_device(self):
        return self.device

    def unet_offload_device(self):
        return torch.device("cpu")

    def get_total_memory(self, dev=None, torch_total_too=False):
        return self.total_vram

    def get_free_memory(self, dev=None, torch_free_too=False):
        used = sum(e.model.loaded_size() for e in self.current_loaded_models)
        return self.total_vram - used

    def minimum_inference_memory(self):
        return self.inference_memory + self.reserved

    def soft_empty_cache(self, force=False):
        self.empty_cache_calls += 1

    # interrupts (never pressed here)
    def processing_interrupted(self):
        return False

    def throw_exception_if_processing_interrupted(self):
        return None

    # the accounting
    def loaded_models(self):
        return [e.model for e in self.current_loaded_models]

    def free_memory(self, memory_required, device, keep_loaded=()):
        candidates = [(-e.model_offloaded_memory(), i) for i, e in enumerate(self.current_loaded_models)
                      if e.device == device and not any(e.model is k.model for k in keep_loaded)]
        unloaded = []
        for _, i in sorted(candidates):
            free = self.get_free_memory(device)
            if free > memory_required:
                break
            if self.current_loaded_models[i].model_unload(memory_required - free):
                unloaded.append(i)
        removed = [self.current_loaded_models.pop(i) for i in sorted(unloaded, reverse=True)]
        if removed:
            self.soft_empty_cache()
        return removed

    def load_models_gpu(self, models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        self.load_requests.append(dict(models=list(models), memory_required=memory_required,
                                       minimum_memory_required=minimum_memory_required))
        inference = self.minimum_inference_memory()
        extra = max(inference, memory_required + self.reserved)
        minimum = extra if minimum_memory_required is None else max(inference, minimum_memory_required + self.reserved)
        entries = [next((e for e in self.current_loaded_models if e.model is m), None) or _Entry(m, m.load_device)
                   for m in models]
        need = sum(e.model_offloaded_memory() for e in entries)
        self.free_memory(need * 1.1 + extra, self.device, keep_loaded=entries)
        for entry in entries:
            # What the weights may take beyond what they hold (ComfyUI's lowvram budget); the model's loaded bytes
            # are already out of the free memory.
            room = self.get_free_memory(self.device) - minimum
            budget = float("inf") if room >= entry.model_offloaded_memory() else max(0.1, room)
            entry.model_load(budget)
            if entry in self.current_loaded_models:
                self.current_loaded_models.remove(entry)
            self.current_loaded_models.insert(0, entry)
            self.events.append(("registered", type(entry.model).__name__))

    def load_model_gpu(self, model):
        return self.load_models_gpu([model])

    def unload_all_models(self):
        self.free_memory(1e30, self.device)


def install(monkeypatch, total_vram: int, **kw) -> FakeModelManagement:
    """Make `import comfy.model_management` give a FakeModelManagement with `total_vram` bytes."""
    mm = FakeModelManagement(total_vram, **kw)
    comfy = types.ModuleType("comfy")
    comfy.model_management = mm
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    return mm
