"""The LongCat-Video-Avatar model under a REAL ComfyUI's model management, as host_model_check.py does for the
InfiniteTalk DiT: the LongCat loader's patcher is the host's own ModelPatcher subclass, the host loads it whole
on the CPU and partially under a [budget] of a pretend card (blocks streamed), frees it, and forgets it.

    <host python> scripts/comfyui/host_longcat_check.py /path/to/ComfyUI [--pack /path/to/pack]

Exit status 0 when every step held.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host_model_check import Budget, check, open_host, results  # noqa: E402 - the script's own folder first

LATENT = (1, 16, 5, 4, 6)


def new_longcat_patcher(load_device, offload_device):
    """The patcher exactly as the LongCat loader makes it, over a LongCat DiT with blocks of ~100 MB (fp32)."""
    from wanvideo_infinitetalk_pack.nodes import longcat_nodes
    from wanvideo_infinitetalk_pack.wanvideo.model import build_model
    from wanvideo_infinitetalk_pack.wanvideo.model.longcat_config import tiny_longcat_config

    dit = build_model(tiny_longcat_config(hidden_size=1024, depth=4, num_heads=8))
    return longcat_nodes.make_model_patcher(dit, load_device, offload_device, offload_after="no")


def run_steps(mm, host) -> None:
    import comfy.model_patcher
    import torch

    ours = new_longcat_patcher(mm.get_torch_device(), mm.unet_offload_device())
    check(isinstance(ours, comfy.model_patcher.ModelPatcher),
          f"1. the LongCat loader's LONGCAT_MODEL is a {type(ours).__mro__[1:3]} (host ModelPatcher subclass)")
    need = ours.memory_required(LATENT)
    check(need >= ours.model.inference_bytes(LATENT, torch.float32), f"1. LongCat's own activation estimate: {need} B")
    host.load_model_for_sampling(ours, memory_required=need)
    host.load_model_for_sampling(ours, memory_required=need)
    listed = [m for m in mm.loaded_models() if m is ours]
    check(len(listed) == 1 and ours.loaded_size() == ours.model_size() > 0,
          f"1. loaded completely and listed once after two segments' loads: {ours!r}")
    mm.unload_all_models()
    check(ours.loaded_size() == 0 and ours not in mm.loaded_models(), "4. unload_all_models released ours (CPU)")

    gpu = torch.device("cuda", 0)
    budget = Budget(mm, gpu)
    mm.get_free_memory, real_free = budget.free, mm.get_free_memory
    mm.vram_state, real_state = mm.VRAMState.NORMAL_VRAM, mm.vram_state
    try:
        card = new_longcat_patcher(gpu, mm.unet_offload_device())
        need = card.memory_required(LATENT)
        reserve = max(mm.minimum_inference_memory(), need + mm.extra_reserved_memory())
        budget.total = int(reserve + card.model_size() * 0.5)
        host.load_model_for_sampling(card, memory_required=need, minimum_memory_required=need)
        check(0 < card.loaded_size() < card.model_size() and card.placement.streamed > 0,
              f"2. [budget] partially loaded: {card.loaded_size()}/{card.model_size()} B, "
              f"{card.placement.streamed} blocks streamed")
        mm.free_memory(1e30, gpu)
        check(card.loaded_size() == 0 and not mm.current_loaded_models, "4. [budget] freeing the card released ours")
    finally:
        mm.get_free_memory, mm.vram_state = real_free, real_state


def main(argv=None) -> int:
    mm, host = open_host(argv, __doc__)
    run_steps(mm, host)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
