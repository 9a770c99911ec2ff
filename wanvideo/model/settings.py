"""How the video model is loaded (precision, weight storage, attention kernel, block swap, what happens to the
weights after sampling, LoRA strength), sped up once loaded (torch.compile, fp8 matmuls) and split across GPUs
(sequence parallel); options: see wanvideo/options.py. The loader, LoRA Select and Model Speed nodes and the
command line build their inputs from these fields."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..options import option
from .attention import BACKENDS
from .compile import COMPILE_BACKENDS, COMPILE_MODES
from .parallel.sequence_parallel import MODES as SEQUENCE_PARALLEL_MODES
from .quant.fp8 import FP8_MATMUL_MODES

PRECISIONS = ("bf16", "fp16", "fp32")
QUANTIZATIONS = ("keep_fp8", "disabled", "fp8_e4m3fn", "fp8_e5m2")
OFFLOAD_AFTER = ("auto", "yes", "no")  # the host moves the weights back to system RAM after sampling: auto / always / never


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
    offload_after_sampling: str = option("auto", choices=OFFLOAD_AFTER, help=(
        "After the sampler is done, move the weights back to system RAM so other "
        "workflows get the GPU. auto: yes on cards under 32 GB, no on bigger ones (the "
        "next run then starts at once). ComfyUI can always unload the model when it needs "
        "the room, and 'Free model and node cache' releases it."))

    def load_kwargs(self) -> dict:
        """The keyword arguments of `load_model` these settings stand for."""
        if self.quantization not in QUANTIZATIONS:
            raise InputError(f"quantization {self.quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")
        if self.offload_after_sampling not in OFFLOAD_AFTER:  # used by the host after sampling: checked before loading
            raise InputError(f"offload_after_sampling {self.offload_after_sampling!r}: choose one of "
                             f"{', '.join(OFFLOAD_AFTER)}")
        return dict(dtype=self.precision, keep_fp8=self.quantization == "keep_fp8",
                    quantize=self.quantization if self.quantization.startswith("fp8_") else None,
                    attention=self.attention, blocks_to_swap=int(self.blocks_to_swap))


@dataclass
class SpeedSettings:
    """The model's speed options (InfiniteTalk Model Speed node, --compile*, --fp8-matmul); `apply(model)` sets them
    on a loaded model (errors say what is missing)."""

    compile: bool = option(False, help=(
        "torch.compile the transformer blocks: the first window compiles (minutes), later windows of the same size "
        "run faster. Needs triton on a GPU."))
    compile_backend: str = option("inductor", choices=COMPILE_BACKENDS, help=(
        "torch.compile backend (inductor = the fast one; eager / aot_eager only check that the model compiles)."))
    compile_mode: str = option("default", choices=COMPILE_MODES, help="torch.compile mode (inductor only).")
    fp8_matmul: str = option("off", choices=FP8_MATMUL_MODES, help=(
        "Multiply fp8 weights in fp8 (torch._scaled_mm) on GPUs of compute capability 8.9+ (RTX 40xx, L4/L40, "
        "H100). on: an error elsewhere; auto: where it can run; off: dequantise each layer (any GPU)."))

    def apply(self, model) -> None:
        if self.fp8_matmul != "off" or any(getattr(m, "fp8_matmul", False) for m in model.modules()):
            if not hasattr(model, "set_fp8_matmul"):
                raise InputError(f"{type(model).__name__} has no fp8 matmul option; set fp8_matmul to off")
            model.set_fp8_matmul(self.fp8_matmul)
        if self.compile:
            if not hasattr(model, "compile_blocks"):
                raise InputError(f"{type(model).__name__} cannot be compiled here; turn compile off")
            model.compile_blocks(self.compile_backend, self.compile_mode)


@dataclass
class LoraSettings:
    """A LoRA's strength (InfiniteTalk LoRA Select node; the command line's --lora FILE[:STRENGTH])."""

    strength: float = option(1.0, min=-10.0, max=10.0, step=0.01, help=(
        "How strongly the LoRA changes the weights (1.0 = as trained, 0 = off)."))


@dataclass
class ParallelSettings:
    """How one window is split across several GPUs (the command line under torchrun)."""

    sequence_parallel: str | None = option(None, choices=SEQUENCE_PARALLEL_MODES, help=(
        "under `torchrun --nproc_per_node N -m wanvideo generate ...`: split each window across the "
        "N GPUs (ulysses: attention heads, as far as they divide; ring: token blocks); rank 0 writes"))
