"""Side by side on one GPU: a Wan2.1 I2V 14B forward of the wrapper most people use (kijai/ComfyUI-WanVideoWrapper)
against ours, same shapes (480x832x81: 21x60x104 latents, 32760 tokens), same dtype (bf16), same attention (sdpa),
random weights. Then one whole window of ours (benchmarks/window_speed.py) for seconds per window.

The wrapper and ComfyUI (which it imports) are fetched at run time into --workdir (outside this repository; nothing
of theirs is kept or committed). On a machine without network, pass existing checkouts with --wrapper/--comfyui.

    python scripts/wrapper_side_by_side.py --steps 40
Prints RESULT wrapper_forward_seconds=, ours_forward_seconds=, forward_ratio= (ours / wrapper; goal <= 0.8 for the
window), and the window benchmark's RESULT lines.

What it compares: the transformer trunk's forward (patch embedding, 40 blocks, head) per guidance pass. The wrapper's
InfiniteTalk audio path is attached by its sampler node and is not part of this call; ours runs without audio here
too, so both sides do the same work.
"""
from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRAPPER_URL = "https://github.com/kijai/ComfyUI-WanVideoWrapper.git"
COMFYUI_URL = "https://github.com/comfyanonymous/ComfyUI.git"


def fetch(url: str, dest: Path, ref: str) -> Path:
    if not dest.exists():
        subprocess.run(["git", "clone", "--filter=blob:none", url, str(dest)], check=True)
    if ref:
        subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", ref], check=True)
    return dest


def latent_inputs(torch, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 21, 60, 104, generator=gen).to(device, torch.bfloat16)
    y = torch.randn(20, 21, 60, 104, generator=gen).to(device, torch.bfloat16)
    context = torch.randn(60, 4096, generator=gen).to(device, torch.bfloat16)
    clip = torch.randn(1, 257, 1280, generator=gen).to(device, torch.bfloat16)
    return x, y, context, clip


def timed(torch, fn, repeat: int) -> float:
    fn()  # warm-up
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def wrapper_forward_seconds(torch, wrapper: Path, comfyui: Path, repeat: int) -> float:
    sys.path[:0] = [str(comfyui), str(wrapper.parent)]
    os.chdir(comfyui)
    import importlib

    module = importlib.import_module(f"{wrapper.name}.wanvideo.modules.model")
    wanted = dict(model_type="i2v", patch_size=(1, 2, 2), text_len=512, in_dim=36, dim=5120, ffn_dim=13824,
                  freq_dim=256, text_dim=4096, out_dim=16, num_heads=40, num_layers=40, qk_norm=True,
                  cross_attn_norm=True, eps=1e-6, attention_mode="sdpa", main_device=torch.device("cuda"),
                  offload_device=torch.device("cpu"))
    accepted = inspect.signature(module.WanModel.__init__).parameters
    with torch.device("meta"):
        model = module.WanModel(**{k: v for k, v in wanted.items() if k in accepted})
    model = model.to_empty(device="cuda").to(torch.bfloat16).eval().requires_grad_(False)
    for p in model.parameters():
        p.normal_(0, 0.02)
    x, y, context, clip = latent_inputs(torch, "cuda")
    call = dict(x=[x], t=torch.tensor([500.0], device="cuda"), context=[context], seq_len=21 * 30 * 52,
                clip_fea=clip, y=[y])
    params = inspect.signature(model.forward).parameters
    call = {k: v for k, v in call.items() if k in params}
    with torch.no_grad():
        return timed(torch, lambda: model(**call), repeat)


def ours_forward_seconds(torch, repeat: int) -> float:
    sys.path.insert(0, str(REPO))
    from wanvideo.model import build_model, preset

    config = preset("wan2.1-i2v-14b")
    model = build_model(config, dtype=torch.bfloat16, device="cuda")
    x, y, context, clip = latent_inputs(torch, "cuda")
    with torch.no_grad():
        return timed(torch, lambda: model(x[None], torch.tensor([500.0]), context[None], clip, y[None]), repeat)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/wanvideo_side_by_side", help="where the checkouts go")
    parser.add_argument("--wrapper", help="an existing ComfyUI-WanVideoWrapper checkout (else fetched)")
    parser.add_argument("--wrapper-ref", default="", help="commit or tag of the wrapper to check out")
    parser.add_argument("--comfyui", help="an existing ComfyUI checkout (else fetched)")
    parser.add_argument("--comfyui-ref", default="", help="commit or tag of ComfyUI to check out")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="steps of the window benchmark run afterwards")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("error: the side-by-side needs a CUDA GPU (it compares GPU seconds); nothing was measured",
              file=sys.stderr)
        return 2
    work = Path(args.workdir)
    if REPO in work.resolve().parents or work.resolve() == REPO:
        print("error: --workdir must be outside this repository", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    comfyui = Path(args.comfyui) if args.comfyui else fetch(COMFYUI_URL, work / "ComfyUI", args.comfyui_ref)
    wrapper = Path(args.wrapper) if args.wrapper else fetch(WRAPPER_URL, work / "ComfyUI-WanVideoWrapper",
                                                            args.wrapper_ref)
    ours = ours_forward_seconds(torch, args.repeat)
    torch.cuda.empty_cache()
    theirs = wrapper_forward_seconds(torch, wrapper, comfyui, args.repeat)
    print(f"RESULT wrapper_forward_seconds={theirs:.3f}")
    print(f"RESULT ours_forward_seconds={ours:.3f}")
    print(f"RESULT forward_ratio={ours / theirs:.3f}")
    sys.stdout.flush()
    return subprocess.call([sys.executable, str(REPO / "benchmarks" / "window_speed.py"), "--device", "cuda",
                            "--steps", str(args.steps)])


if __name__ == "__main__":
    raise SystemExit(main())
