"""Our model under a REAL ComfyUI's model management: load, partial load under a VRAM budget, offload.

    <host python> scripts/comfyui/host_model_check.py /path/to/ComfyUI [--pack /path/to/pack]

Run with the Python of that ComfyUI (scripts/comfyui/host_env.py builds one); tests/host runs it for each host.
ComfyUI's own `comfy.model_management` and `comfy.model_patcher` are imported from the host's folder, as
`main.py --cpu` sets them up, and the pack is loaded from `--pack` (default: this checkout) as ComfyUI loads a
custom node folder. Nothing of the host is replaced except, for the steps marked [budget], the free-memory
reading of a graphics card this machine does not have: there the patcher's load device is `cuda:0`, the
host's VRAM state is NORMAL_VRAM (a GPU without --highvram), and `get_free_memory` answers from a budget, so
the host's own lowvram arithmetic decides how much of ours to load, unload or evict (weights really move
between the module's devices; on a CPU machine both are the CPU). Steps, each printed "ok" or "FAIL":

1. the loader's patcher is a subclass of the host's ModelPatcher; `load_models_gpu` loads it completely on the
   CPU (in 0.33 a hand-written patcher failed here: `is_dynamic`) and lists it once, also for the next window;
   the host's clone() of it is one of ours over the same weights;
2. [budget] a card holding the core and about half the blocks: the host loads ours partially (blocks streamed)
   and the model still computes the same output as fully loaded;
3. [budget] less free memory: `free_memory` frees room by streaming more of ours (partially_unload), then by
   evicting (a second model) when that is not enough;
4. `unload_all_models()` ("Free model and node cache") and the pack's offload after sampling leave nothing of
   ours on the device;
5. dropping our patcher (the node cache letting go) lets ComfyUI forget the model.

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
LATENT = (1, 16, 5, 4, 6)
results: list[bool] = []


def check(ok: bool, what: str) -> bool:
    print(("ok    " if ok else "FAIL  ") + what, flush=True)  # noqa: T201 - a check script reports to its user
    results.append(bool(ok))
    return ok


def load_pack(pack: Path):
    spec = importlib.util.spec_from_file_location("wanvideo_infinitetalk_pack", pack / "__init__.py",
                                                  submodule_search_locations=[str(pack)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["wanvideo_infinitetalk_pack"] = module
    spec.loader.exec_module(module)
    return module


def new_patcher(load_device, offload_device, model=None):
    """The patcher exactly as the pack's model loader makes it."""
    from wanvideo_infinitetalk_pack.nodes import model_nodes
    from wanvideo_infinitetalk_pack.wanvideo.model import build_model, tiny_config

    # Blocks of 64 MB (fp32): 0.3.64 never grants a partial load less than 128 MB, so the tiny config fits whole.
    model = model or build_model(tiny_config(dim=1024, ffn_dim=4096, num_heads=8, num_layers=4))
    make = getattr(model_nodes, "make_model_patcher", None)
    if make is None:  # the pack before the host's ModelPatcher was used: what its loader returned
        return model_nodes.InfiniteTalkModelPatcher(model, load_device, offload_device, offload_after="no")
    return make(model, load_device, offload_device, offload_after="no")


def forward(model):
    """One denoising forward of the plain I2V path (no audio) on fixed random inputs."""
    import torch

    gen = torch.Generator().manual_seed(0)
    cfg = model.config
    b, c, f, h, w = LATENT
    with torch.no_grad():
        return model(torch.randn(b, c, f, h, w, generator=gen), torch.tensor([500.0]),
                     torch.randn(b, 8, cfg["text_dim"], generator=gen),
                     torch.randn(b, 257, cfg["clip_dim"], generator=gen),
                     torch.randn(b, 20, f, h, w, generator=gen))


def step_full_load(mm, host):
    import comfy.model_patcher

    ours = new_patcher(mm.get_torch_device(), mm.unet_offload_device())
    check(isinstance(ours, comfy.model_patcher.ModelPatcher),
          f"1. the loader's INFINITETALK_MODEL is a {type(ours).__mro__[1:3]} (host ModelPatcher subclass)")
    try:
        host.load_model_for_sampling(ours, memory_required=ours.memory_required(LATENT))
    except Exception as exc:  # noqa: BLE001 - the check reports what the host raised
        check(False, f"1. load_models_gpu failed: {type(exc).__name__}: {exc}")
        raise
    host.load_model_for_sampling(ours, memory_required=ours.memory_required(LATENT))
    entries = [m for m in mm.loaded_models() if m is ours]
    check(len(entries) == 1 and ours.loaded_size() == ours.model_size() > 0,
          f"1. loaded completely and listed once after two windows' loads: {ours!r}")
    # The host's clone() (what its model nodes do to a model): same class, same weights and placement; loading
    # the clone replaces the original in the host's list (its is_clone check), nothing loads twice.
    twin = ours.clone()
    host.load_model_for_sampling(twin)
    listed = [m for m in mm.loaded_models() if m.model is ours.model]
    check(type(twin) is type(ours) and twin.placement is ours.placement and twin.is_clone(ours) and listed == [twin],
          f"1. the host's clone is one of ours over the same weights and takes the original's place ({len(listed)} listed)")
    mm.unload_all_models()


class Budget:
    """Free memory of the pretend card: `total` minus what the host's loaded models say they hold."""

    def __init__(self, mm, device):
        self.mm, self.device, self.total = mm, device, 0

    def free(self, dev=None, torch_free_too=False):
        used = sum(m.model.loaded_size() for m in self.mm.current_loaded_models
                   if m.model is not None and m.device == self.device)
        free = max(0, self.total - used)
        return (free, free) if torch_free_too else free


def step_budget(mm, host):
    import torch

    gpu = torch.device("cuda", 0)
    budget = Budget(mm, gpu)
    mm.get_free_memory, real_free = budget.free, mm.get_free_memory
    mm.vram_state, real_state = mm.VRAMState.NORMAL_VRAM, mm.vram_state
    try:
        ours = new_patcher(gpu, mm.unet_offload_device())
        reference = forward(ours.model)
        need = ours.memory_required(LATENT)
        # The host reserves minimum_inference_memory() besides the weights; give it that plus half our model.
        reserve = max(mm.minimum_inference_memory(), need + mm.extra_reserved_memory())
        budget.total = int(reserve + ours.model_size() * 0.5)
        host.load_model_for_sampling(ours, memory_required=need, minimum_memory_required=need)
        streamed = ours.placement.streamed
        check(0 < ours.loaded_size() < ours.model_size() and streamed > 0,
              f"2. [budget] partially loaded: {ours.loaded_size()}/{ours.model_size()} B, {streamed} blocks streamed")
        out = forward(ours.model)
        check(torch.equal(out[0], reference[0]), "2. [budget] the partially loaded model computes the same output")

        # A second model on the card (a second DiT: the host's own models would really move to cuda:0).
        other = new_patcher(gpu, mm.unet_offload_device())
        budget.total += other.model_size()
        mm.load_models_gpu([other])
        check(other in mm.loaded_models() and ours in mm.loaded_models(), "3. [budget] a second model loaded beside ours")
        before = ours.loaded_size()
        mm.free_memory(budget.free() + ours.placement.block_sizes[-1], gpu)
        check(ours in mm.loaded_models() and 0 < ours.loaded_size() < before,
              f"3. [budget] free_memory streamed more of ours: {before} -> {ours.loaded_size()} B loaded")
        mm.free_memory(budget.total, gpu)
        check(other not in mm.loaded_models() and ours.loaded_size() == 0 == other.loaded_size(),
              f"3. [budget] free_memory of the whole card evicted both (ours: {ours.loaded_size()} B loaded)")
        host.load_model_for_sampling(ours, memory_required=need, minimum_memory_required=need)
        check(ours.loaded_size() > 0 and torch.equal(forward(ours.model)[0], reference[0]),
              "3. [budget] reloaded for the next window, same output")
        mm.free_memory(1e30, gpu)  # what unload_all_models() does on a GPU machine
        check(ours.loaded_size() == 0 and not mm.current_loaded_models,
              "4. unload_all_models (Free model and node cache) released ours")
    finally:
        mm.get_free_memory, mm.vram_state = real_free, real_state


def step_offload_and_forget(mm, host):
    ours = new_patcher(mm.get_torch_device(), mm.unet_offload_device())
    host.load_model_for_sampling(ours)
    mm.unload_all_models()
    check(ours.loaded_size() == 0 and ours not in mm.loaded_models(), "4. unload_all_models released ours (CPU)")
    host.load_model_for_sampling(ours)
    host.unload_model(ours)
    check(ours not in mm.loaded_models() and ours.loaded_size() == 0,
          "4. the pack's offload after sampling (host.unload_model) released ours")
    host.load_model_for_sampling(ours)
    count = len(mm.current_loaded_models)
    del ours
    gc.collect()
    mm.cleanup_models_gc()
    mm.cleanup_models()
    check(len(mm.current_loaded_models) == count - 1,
          f"5. patcher dropped: ComfyUI forgot the model ({count} -> {len(mm.current_loaded_models)})")


def open_host(argv, description: str):
    """(the host's model_management, the pack's host adapter) of the ComfyUI folder named on the command line,
    started as `main.py --cpu` would, with the pack loaded as ComfyUI loads a custom node folder."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("comfyui", type=Path, help="a ComfyUI folder (the one holding main.py)")
    parser.add_argument("--pack", type=Path, default=REPO, help="the pack's folder (default: this checkout)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.comfyui.resolve()))
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.model_management as mm

    logging.basicConfig(level=logging.INFO, format="  %(name)s: %(message)s")
    load_pack(args.pack.resolve())
    from wanvideo_infinitetalk_pack.nodes import host

    print(f"ComfyUI at {args.comfyui}; pack at {args.pack}", flush=True)  # noqa: T201
    return mm, host


def main(argv=None) -> int:
    mm, host = open_host(argv, __doc__)
    step_full_load(mm, host)
    step_budget(mm, host)
    step_offload_and_forget(mm, host)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
