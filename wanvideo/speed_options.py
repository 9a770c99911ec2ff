"""The speed options (issue 13), declared once: name, type, default, choices or range, help. The sampler's options
are fields of `SamplerSettings`, the model's of `SpeedSettings`; the nodes (nodes/speed_nodes.py) and the command
line build their inputs and arguments from this table, so the three cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .model.compile import COMPILE_BACKENDS, COMPILE_MODES
from .model.fp8 import FP8_MATMUL_MODES
from .sampling.apg import APG_MOMENTUM, APG_NORM_THRESHOLD
from .sampling.cache import CACHE_METHODS, MAGCACHE_K
from .sampling.guidance import BATCH_MODES


@dataclass(frozen=True)
class SpeedOption:
    name: str
    type: type
    default: object
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SPEED_OPTIONS = {o.name: o for o in (
    SpeedOption("guidance_batching", str, "auto", choices=BATCH_MODES, help=(
        "How the 2-3 guidance passes of a step run. auto: as one batched forward (same result within float "
        "tolerance, faster) unless block swap is on or the GPU lacks memory for it; batched / sequential: force either.")),
    SpeedOption("cache_method", str, "none", choices=CACHE_METHODS, help=(
        "Step cache: skip the transformer blocks of a model call whose input barely changed, reusing its cached "
        "residual. teacache: the reference's TeaCache for InfiniteTalk; magcache: MagCache (Wan2.1 I2V ratios). "
        "none: off (the reference's default).")),
    SpeedOption("cache_threshold", float, -1.0, min=-1.0, max=10.0, step=0.001, help=(
        "How much change the cache tolerates before computing again: higher = faster, less faithful. -1 = the "
        "method's default (TeaCache 0.2 as the reference, MagCache 0.12); 0 = never skip.")),
    SpeedOption("cache_start_step", int, -1, min=-1, max=1000, help=(
        "First step that may be skipped. -1 = the method's default (TeaCache 5 as the reference, MagCache 20 % of "
        "the steps); earlier steps always run.")),
    SpeedOption("cache_end_step", int, -1, min=-1, max=1000, help=(
        "Last step that may be skipped (-1 = the last step).")),
    SpeedOption("cache_magcache_k", int, MAGCACHE_K, min=1, max=10, help=(
        "MagCache: at most this many calls skipped in a row (default 2).")),
    SpeedOption("apg", bool, False, help=(
        "Adaptive projected guidance instead of plain CFG (the reference's --use_apg; off by default).")),
    SpeedOption("apg_momentum", float, APG_MOMENTUM, min=-1.0, max=1.0, step=0.01, help=(
        "APG momentum of the guidance differences (reference -0.75).")),
    SpeedOption("apg_norm_threshold", float, APG_NORM_THRESHOLD, min=0.0, max=1000.0, step=0.5, help=(
        "APG cap on the norm of a guidance difference (reference 55; 0 = no cap).")),
    SpeedOption("compile", bool, False, help=(
        "torch.compile the transformer blocks: the first window compiles (minutes), later windows of the same size "
        "run faster. Needs triton on a GPU.")),
    SpeedOption("compile_backend", str, "inductor", choices=COMPILE_BACKENDS, help=(
        "torch.compile backend (inductor = the fast one; eager / aot_eager only check that the model compiles).")),
    SpeedOption("compile_mode", str, "default", choices=COMPILE_MODES, help="torch.compile mode (inductor only)."),
    SpeedOption("fp8_matmul", str, "off", choices=FP8_MATMUL_MODES, help=(
        "Multiply fp8 weights in fp8 (torch._scaled_mm) on GPUs of compute capability 8.9+ (RTX 40xx, L4/L40, "
        "H100). on: an error elsewhere; auto: where it can run; off: dequantise each layer (any GPU).")),
)}
SAMPLER_CACHE_OPTIONS = ("cache_method", "cache_threshold", "cache_start_step", "cache_end_step", "cache_magcache_k")
SAMPLER_GUIDANCE_OPTIONS = ("guidance_batching", "apg", "apg_momentum", "apg_norm_threshold")
MODEL_SPEED_OPTIONS = ("compile", "compile_backend", "compile_mode", "fp8_matmul")


@dataclass
class SpeedSettings:
    """The model's speed options; `apply(model)` sets them on a loaded model (errors say what is missing)."""

    compile: bool = False
    compile_backend: str = "inductor"
    compile_mode: str = "default"
    fp8_matmul: str = "off"

    def apply(self, model) -> None:
        if self.fp8_matmul != "off" or any(getattr(m, "fp8_matmul", False) for m in model.modules()):
            if not hasattr(model, "set_fp8_matmul"):
                raise InputError(f"{type(model).__name__} has no fp8 matmul option; set fp8_matmul to off")
            model.set_fp8_matmul(self.fp8_matmul)
        if self.compile:
            if not hasattr(model, "compile_blocks"):
                raise InputError(f"{type(model).__name__} cannot be compiled here; turn compile off")
            model.compile_blocks(self.compile_backend, self.compile_mode)


def node_input(name: str) -> tuple:
    """The ComfyUI INPUT_TYPES entry of a speed option."""
    o = SPEED_OPTIONS[name]
    meta = {"default": o.default, "tooltip": o.help}
    for key in ("min", "max", "step"):
        if getattr(o, key) is not None:
            meta[key] = getattr(o, key)
    if o.choices is not None:
        return list(o.choices), meta
    return {int: "INT", float: "FLOAT", bool: "BOOLEAN", str: "STRING"}[o.type], meta


def node_inputs(*names: str) -> dict:
    return {name: node_input(name) for name in names}


def add_cli_arguments(parser, *names: str) -> None:
    """--name-with-dashes for each option (booleans are switches), same default, choices and help."""
    for name in names:
        o = SPEED_OPTIONS[name]
        text = o.help.replace("%", "%%")
        if o.type is bool:
            parser.add_argument(o.flag, dest=name, action="store_true", default=o.default, help=text)
        else:
            parser.add_argument(o.flag, dest=name, type=o.type, default=o.default, choices=o.choices,
                                help=f"{text} (default {o.default})")


def settings_from(values: dict, names) -> dict:
    """The given options' values from a mapping (node widgets, argparse namespace vars), defaults for the rest."""
    return {name: values.get(name, SPEED_OPTIONS[name].default) for name in names}
