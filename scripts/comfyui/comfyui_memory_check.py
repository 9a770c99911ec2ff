"""Check our model patcher against a real ComfyUI's model management, on the CPU. Run by hand, not in CI.

    python scripts/comfyui/comfyui_memory_check.py /path/to/ComfyUI

Needs a Python with torch and this pack's requirements, plus what `comfy.model_patcher` imports
(`einops`; the rest of ComfyUI's requirements are not needed). ComfyUI runs as with `--cpu`, where its
`load_models_gpu` never evicts (the CPU is never short of room), so the eviction step calls its
`free_memory` directly with a VRAM budget put in place of `get_free_memory`. Steps, each printed:

1. a host model (a real `comfy.model_patcher.ModelPatcher`) and ours are loaded through `load_models_gpu`
   (ours through the pack's `host.load_model_for_sampling`, as the sampler does per window): both listed;
2. a second window's load keeps one entry for ours (ComfyUI's clone check drops and re-adds it);
3. with a budget that holds only one of them, `free_memory` makes room: who goes, and that ours, when it
   goes, is offloaded (`loaded_size()` 0);
4. `unload_all_models()` ("Free model and node cache"): nothing of ours stays loaded;
5. the pack's `host.unload_model` (offload after sampling) removes ours from the host's list;
6. dropping our patcher (the node cache letting go) lets ComfyUI forget the model without a leak warning.

Exit status 0 when every step held.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load_pack():
    spec = importlib.util.spec_from_file_location("wanvideo_infinitetalk_pack", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["wanvideo_infinitetalk_pack"] = module
    spec.loader.exec_module(module)
    return module


def _check(ok: bool, what: str) -> bool:
    print(("ok    " if ok else "FAIL  ") + what)  # noqa: T201 - a by-hand check reports to its user
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comfyui", help="a ComfyUI checkout (v0.3.64 was checked)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.comfyui).resolve()))
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.model_management as mm
    import comfy.model_patcher
    import torch

    logging.basicConfig(level=logging.INFO, format="  %(name)s: %(message)s")
    _load_pack()
    from wanvideo_infinitetalk_pack.nodes import host
    from wanvideo_infinitetalk_pack.nodes.model_patcher import InfiniteTalkModelPatcher
    from wanvideo_infinitetalk_pack.wanvideo.model import build_model, tiny_config

    results = []
    device, offload = mm.get_torch_device(), mm.unet_offload_device()
    ours = InfiniteTalkModelPatcher(build_model(tiny_config()), device, offload, offload_after="no")
    other = comfy.model_patcher.ModelPatcher(torch.nn.Linear(256, 256), load_device=device, offload_device=offload)

    mm.load_models_gpu([other])
    host.load_model_for_sampling(ours, memory_required=ours.memory_required((1, 16, 5, 4, 6)))
    results.append(_check(ours in mm.loaded_models() and other in mm.loaded_models(), "1. both models registered"))
    results.append(_check(ours.loaded_size() == ours.model_size() > 0, f"1. ours loaded: {ours!r}"))

    host.load_model_for_sampling(ours, memory_required=ours.memory_required((1, 16, 5, 4, 6)))
    entries = [m for m in mm.loaded_models() if m is ours]
    results.append(_check(len(entries) == 1 and ours.loaded_size() == ours.model_size(),
                          f"2. reloaded for the next window: {len(entries)} entry, load calls {ours.load_calls}"))

    # A card that holds both exactly; ask for room that one of them (or part of ours) must give.
    budget = ours.model_size() + other.model_size()
    required = min(ours.model_size(), other.model_size()) // 2
    real_free = mm.get_free_memory

    def free_in_budget(dev=None, torch_free_too=False):
        free = budget - sum(m.loaded_size() for m in mm.loaded_models())
        return (free, 0) if torch_free_too else free

    mm.get_free_memory = free_in_budget
    try:
        mm.free_memory(required, device)
        free_after = mm.get_free_memory(device)
    finally:
        mm.get_free_memory = real_free
    state = f"ours {ours.loaded_size()}/{ours.model_size()} B ({ours.placement.streamed} blocks streamed), " \
            f"other {other.loaded_size()}/{other.model_size()} B{' (listed)' if other in mm.loaded_models() else ''}"
    results.append(_check(free_after > required, f"3. free_memory made room ({free_after} B free >= {required}): {state}"))
    if ours not in mm.loaded_models():
        results.append(_check(ours.loaded_size() == 0, "3. ours, unloaded, holds nothing on the device"))

    host.load_model_for_sampling(ours)
    mm.unload_all_models()
    results.append(_check(ours not in mm.loaded_models() and ours.loaded_size() == 0,
                          "4. unload_all_models released ours"))

    host.load_model_for_sampling(ours)
    host.unload_model(ours)
    results.append(_check(ours not in mm.loaded_models() and ours.loaded_size() == 0,
                          "5. host.unload_model (offload after sampling) released ours"))

    host.load_model_for_sampling(ours)
    count = len(mm.current_loaded_models)
    del ours, entries
    gc.collect()
    mm.cleanup_models_gc()
    mm.cleanup_models()
    results.append(_check(len(mm.current_loaded_models) == count - 1,
                          f"6. patcher dropped: ComfyUI forgot the model ({count} -> {len(mm.current_loaded_models)})"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
