"""torch.compile of the transformer blocks (an option of the model loader and the CLI).

Every block is compiled in place with static shapes: the first window compiles once per shape (all blocks
share one graph, as they share their code), later windows of the same size reuse it. Where the host's
torch or platform cannot compile, `check_compile` says so and what to do instead, before any work starts.
"""
from __future__ import annotations

import importlib.util
import logging
import shutil
import sys

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

COMPILE_BACKENDS = ("inductor", "cudagraphs", "aot_eager", "eager")
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead")


def compile_unavailable_reason(backend: str, device) -> str | None:
    """Why `backend` cannot compile on `device` with this torch, or None when it can."""
    if backend not in COMPILE_BACKENDS:
        return f"unknown compile backend {backend!r}; choose one of {', '.join(COMPILE_BACKENDS)}"
    if not hasattr(torch, "compile"):
        return f"this torch ({torch.__version__}) has no torch.compile: update torch to 2.1 or newer"
    dynamo = getattr(torch, "_dynamo", None)
    if dynamo is not None and hasattr(dynamo, "is_dynamo_supported") and not dynamo.is_dynamo_supported():
        return (f"torch.compile is not supported by torch {torch.__version__} on Python "
                f"{sys.version_info.major}.{sys.version_info.minor} here")
    device = torch.device(device)
    if backend == "inductor":
        if device.type == "cuda" and importlib.util.find_spec("triton") is None:
            return ("torch.compile (inductor) on a GPU needs the triton package, which is not installed in this "
                    "Python (on Windows: pip install triton-windows)")
        if device.type == "cpu" and not any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "cl")):
            return "torch.compile (inductor) on the CPU needs a C++ compiler (gcc, clang or MSVC) on the PATH"
    if backend == "cudagraphs" and device.type != "cuda":
        return "the cudagraphs compile backend needs a CUDA GPU"
    return None


def check_compile(backend: str, device) -> None:
    reason = compile_unavailable_reason(backend, device)
    if reason:
        raise InputError(f"cannot compile the model: {reason}; turn the compile option off to run uncompiled")


def compile_blocks(model, backend: str = "inductor", mode: str = "default") -> int:
    """Compile each transformer block of `model` in place; returns how many. Idempotent."""
    if mode not in COMPILE_MODES:
        raise InputError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    check_compile(backend, getattr(model, "main_device", "cpu"))
    units = getattr(model, "compile_units", None)
    blocks = units() if callable(units) else getattr(model, "blocks", None)  # WanAnimate: its face blocks too
    if blocks is None:
        raise InputError(f"{type(model).__name__} has no transformer blocks to compile")
    # One graph per distinct input shape is expected; the default limit (8) is per code object and the blocks
    # share theirs, so leave room for a few window sizes without falling back to eager silently.
    config = torch._dynamo.config
    config.cache_size_limit = max(getattr(config, "cache_size_limit", 8), 64)
    options = dict(backend=backend, dynamic=False)
    if backend == "inductor" and mode != "default":
        options["mode"] = mode
    count = 0
    for block in blocks:
        if getattr(block, "_wanvideo_compiled", None) != (backend, mode):
            block.compile(**options)
            block._wanvideo_compiled = (backend, mode)
        count += 1
    model.compiled = (backend, mode)
    log.info("torch.compile (%s, %s) of %d blocks: the first window compiles (minutes with "
             "inductor), later windows of the same size reuse it", backend, mode, count)
    return count
