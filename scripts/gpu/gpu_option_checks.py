"""The speed options that only a GPU can check: SageAttention / FlashAttention, fp8 matmuls (torch._scaled_mm) and
torch.compile of the blocks. Each against the plain path in the same run: same output (relative difference), and the
forward time ratio. Run by scripts/gpu/gpu_checks.sh on a lent GPU; on a CPU each check says why it cannot run.

Model: 4 blocks of the real 14B width (5120, ffn 13824, 40 heads) with random bf16 weights, InfiniteTalk audio on,
480x832x81 (latent 21x60x104, 32,760 tokens): the per-block work of the real model, a tenth of its weights.

    python scripts/gpu/gpu_option_checks.py attention|fp8|compile [--repeats 3]
    python scripts/gpu/gpu_option_checks.py compile --cpu-dry-run     # the same code on the CPU, tiny config (no figures)

RESULT lines: <backend>_available, <backend>_rel_diff, <backend>_forward_ratio (vs sdpa) for sage and flash;
fp8_scaled_mm_layers, fp8_matmul_rel_diff (vs the dequantise-per-layer path), fp8_matmul_forward_ratio (scaled_mm /
dequantise), fp8_vs_bf16_forward_ratio; compile_seconds (first call), compile_rel_diff, compiled_forward_ratio,
compile_recompiles (after a second timestep and a second window of the same size: 0 expected).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from dit_forward import inputs  # noqa: E402

from wanvideo.errors import WanVideoError  # noqa: E402
from wanvideo.model import build_model, preset, tiny_config  # noqa: E402
from wanvideo.model.attention import backend_available  # noqa: E402
from wanvideo.model.layers import Linear  # noqa: E402
from wanvideo.model.quant.fp8 import fp8_matmul_unavailable_reason, quantize_fp8  # noqa: E402

LATENT = (21, 60, 104)
RUN = {"device": "cuda", "config": dict(preset("wan2.1-i2v-14b"), num_layers=4), "latent": LATENT,
       "compile_backend": "inductor"}
CPU_DRY_RUN = {"device": "cpu", "config": dict(tiny_config(), dim=64), "latent": (3, 8, 8), "compile_backend": "eager"}


def sync() -> None:
    if RUN["device"] == "cuda":
        torch.cuda.synchronize()


def model_and_inputs():
    cfg, device = RUN["config"], RUN["device"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg, dtype=torch.bfloat16, device=device)
    args = inputs(cfg, *RUN["latent"], device=device, dtype=torch.bfloat16, text_tokens=60 if device == "cuda" else 5)
    args.pop("ref_target_masks")
    return model, args


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, out


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / a.float().norm().clamp_min(1e-12)).item()


def check_attention(repeats: int) -> None:
    model, args = model_and_inputs()
    base_s, base = timed(lambda: model(**args), repeats)
    print(f"sdpa forward {base_s:.3f} s")
    for name in ("sage", "flash"):
        available = backend_available(name)
        print(f"RESULT {name}_available={int(available)}")
        if not available:
            print(f"{name}: not installed in this Python ({'sageattention' if name == 'sage' else 'flash-attn'})")
            continue
        try:
            model.set_attention_backend(name)
            seconds, out = timed(lambda: model(**args), repeats)
        except Exception as exc:  # noqa: BLE001 - a kernel build (Triton), an unsupported GPU: report, go on
            print(f"{name}: failed: {type(exc).__name__}: {str(exc)[:400]}")
            continue
        finally:
            model.set_attention_backend("sdpa")
        print(f"RESULT {name}_rel_diff={rel_diff(base, out):.4g}")
        print(f"RESULT {name}_forward_ratio={seconds / base_s:.3f}")


def quantize_blocks(model) -> None:
    """What the loader's fp8_e4m3fn quantisation leaves: the blocks' linear weights in fp8 with a per-tensor scale."""
    for module in model.blocks.modules():
        if isinstance(module, Linear):
            weight, scale = quantize_fp8(module.weight.data, torch.float8_e4m3fn)
            module._parameters["weight"] = torch.nn.Parameter(weight, requires_grad=False)
            module.weight_scale = scale


def check_fp8(repeats: int) -> None:
    reason = fp8_matmul_unavailable_reason(RUN["device"])
    if reason:
        print(f"RESULT fp8_scaled_mm_layers=0\nfp8 matmul cannot run here: {reason}")
        return
    model, args = model_and_inputs()
    bf16_s, _ = timed(lambda: model(**args), repeats)
    quantize_blocks(model)
    model.set_fp8_matmul("off")
    dequant_s, dequant = timed(lambda: model(**args), repeats)
    layers = model.set_fp8_matmul("on")
    scaled_s, scaled = timed(lambda: model(**args), repeats)
    print(f"bf16 {bf16_s:.3f} s, fp8 dequantised per layer {dequant_s:.3f} s, fp8 scaled_mm {scaled_s:.3f} s")
    print(f"RESULT fp8_scaled_mm_layers={layers}")
    print(f"RESULT fp8_matmul_rel_diff={rel_diff(dequant, scaled):.4g}")
    print(f"RESULT fp8_matmul_forward_ratio={scaled_s / dequant_s:.3f}")
    print(f"RESULT fp8_vs_bf16_forward_ratio={scaled_s / bf16_s:.3f}")


def check_compile(repeats: int) -> None:
    from torch._dynamo.utils import counters

    model, args = model_and_inputs()
    eager_s, eager = timed(lambda: model(**args), repeats)
    try:
        model.compile_blocks(backend=RUN["compile_backend"])
    except WanVideoError as exc:
        print(f"RESULT compile_available=0\ncompile cannot run here: {exc}")
        return
    counters.clear()
    sync()
    start = time.perf_counter()
    model(**args)
    sync()
    print(f"RESULT compile_seconds={time.perf_counter() - start:.1f}")
    compiled_s, compiled = timed(lambda: model(**args), repeats)
    model(**dict(args, t=torch.tensor([500.0], device=RUN["device"]), x=args["x"] * 0.9))  # another step and window
    print(f"eager {eager_s:.3f} s, compiled {compiled_s:.3f} s")
    print(f"RESULT compile_rel_diff={rel_diff(eager, compiled):.4g}")
    print(f"RESULT compiled_forward_ratio={compiled_s / eager_s:.3f}")
    print(f"RESULT compile_recompiles={sum(counters['recompiles'].values())}")


CHECKS = {"attention": check_attention, "fp8": check_fp8, "compile": check_compile}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=sorted(CHECKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-dry-run", action="store_true", help="run the check's code on the CPU, tiny config")
    args = parser.parse_args(argv)
    if args.cpu_dry_run:
        RUN.update(CPU_DRY_RUN)
        print(f"{args.check}: CPU dry run (tiny config): the figures mean nothing")
    elif not torch.cuda.is_available():
        print(f"{args.check}: needs a CUDA GPU (none here); nothing was measured", file=sys.stderr)
        return 2
    else:
        print(f"{args.check} on {torch.cuda.get_device_name(0)}, torch {torch.__version__}: 4 blocks of 14B width, "
              f"latent {LATENT}, bf16")
    with torch.no_grad():
        CHECKS[args.check](args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
