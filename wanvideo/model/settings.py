"""How the video model is loaded: precision, weight storage, attention kernel, block swap (options: see
wanvideo/options.py). The loader node and the command line both build their inputs from these fields."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..options import option
from .attention import BACKENDS

PRECISIONS = ("bf16", "fp16", "fp32")
QUANTIZATIONS = ("keep_fp8", "disabled", "fp8_e4m3fn", "fp8_e5m2")


@dataclass
class LoaderSettings:
    precision: str = option("bf16", choices=PRECISIONS, help=(
        "Compute precision. bf16 is what the reference runs; fp16 for GPUs without bf16 (pre-Ampere); fp32 only "
        "for checks (needs ~70 GB)."))
    quantization: str = option("keep_fp8", choices=QUANTIZATIONS, help=(
        "Weight storage. keep_fp8: fp8 files stay fp8 in memory (half the VRAM of bf16) and GGUF files stay "
        "quantised (VRAM ~ file size; each layer dequantised as it runs), other files use the compute precision. "
        "disabled: everything in the compute precision (a GGUF is dequantised on load). fp8_e4m3fn / fp8_e5m2: "
        "store the blocks in fp8 even from a bf16 file (quantised on load, ~17 GB instead of ~33 GB)."))
    blocks_to_swap: int = option(0, min=0, max=40, step=1, help=(
        "Transformer blocks kept in system RAM and moved to the GPU just in time (the next one is prefetched). "
        "Each block is ~0.8 GB in bf16 / ~0.4 GB in fp8: raise it until the model fits your VRAM (e.g. 20-30 on "
        "12-16 GB cards); slower the higher."))
    attention: str = option("sdpa", choices=BACKENDS, help=(
        "Attention kernel. sdpa: PyTorch's own, always available. sage: SageAttention (faster, needs the "
        "sageattention package). flash: FlashAttention 2/3 (needs flash-attn)."))

    def load_kwargs(self) -> dict:
        """The keyword arguments of `load_model` these settings stand for."""
        if self.quantization not in QUANTIZATIONS:
            raise InputError(f"quantization {self.quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
        return dict(dtype=self.precision, keep_fp8=self.quantization == "keep_fp8",
                    quantize=self.quantization if self.quantization.startswith("fp8_") else None,
                    attention=self.attention, blocks_to_swap=int(self.blocks_to_swap))
