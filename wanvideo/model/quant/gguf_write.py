"""Writing a state dict as a .gguf file the way the common diffusion-model converter does (for tests,
benchmarks and the tiny model set; real GGUFs come ready-made).

Conventions kept: `general.architecture` = "wan"; original tensor names; 1-D tensors, small
tensors (<= 1024 values) and the `modulation` tables in F32; 5-D weights stored as 4-D with the
real shape in `comfy.gguf.orig_shape.<name>`; a tensor whose rows do not split into the type's
blocks falls back to F16. Quantisation is the `gguf` package's own (`gguf.quants.quantize`), which
covers F16, BF16, Q8_0, Q4_0/Q4_1 and Q5_0/Q5_1; K-quants have no quantiser there, so packed
blocks made elsewhere can be passed in as `(uint8 array, "Q6_K")`.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ...errors import InputError
from .gguf_dequant import BLOCK_SIZES
from .gguf_file import ORIG_SHAPE_KEY

LIBRARY_QUANTISED = ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "BF16")
KEEP_F32_BELOW = 1024


def _plan(name: str, tensor: torch.Tensor, qtype: str) -> str:
    if tensor.dim() <= 1 or tensor.numel() <= KEEP_F32_BELOW or name.endswith("modulation"):
        return "F32"
    if qtype in ("F32", "F16", "BF16"):
        return qtype
    if tensor.shape[-1] % BLOCK_SIZES[qtype][0]:
        return "F16"
    return qtype


def write_gguf(path, tensors: dict, qtype: str = "Q8_0", metadata: dict | None = None, arch: str = "wan",
               prefix: str = "") -> dict:
    """Write `tensors` ({name: torch tensor, or (uint8 blocks, type name)}) to `path`; returns {name: type written}."""
    import gguf

    if qtype not in LIBRARY_QUANTISED + ("F32", "F16"):
        raise InputError(f"write_gguf quantises to {', '.join(LIBRARY_QUANTISED)}, F16 or F32 (the gguf package's "
                         f"quantisers), not {qtype}; pass ready-made blocks as (array, type) for others")
    quiet = logging.getLogger("gguf")  # the writer logs every file at INFO: too chatty for tests and tiny files
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    try:
        return _write(gguf, path, tensors, qtype, metadata or {}, arch, prefix)
    finally:
        quiet.setLevel(level)


def _write(gguf, path, tensors, qtype, metadata, arch, prefix) -> dict:
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in metadata.items():
        writer.add_string(key, str(value))
    written = {}
    for name, value in tensors.items():
        full = prefix + name
        if isinstance(value, tuple):
            blocks, kind = value
            writer.add_tensor(full, np.ascontiguousarray(blocks, dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType[kind])
            written[name] = kind
            continue
        kind = _plan(name, value, qtype)
        data = value.detach().float().cpu().numpy()
        if data.ndim > 4:  # GGUF holds at most 4 dimensions
            writer.add_array(ORIG_SHAPE_KEY + full, [int(d) for d in data.shape])
            data = data.reshape(data.shape[0], -1, *data.shape[-2:])
        if kind == "F32":
            writer.add_tensor(full, data.astype(np.float32))
        elif kind == "F16":
            writer.add_tensor(full, data.astype(np.float16))
        else:
            qt = gguf.GGMLQuantizationType[kind]
            writer.add_tensor(full, gguf.quants.quantize(data, qt), raw_dtype=qt)
        written[name] = kind
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written
