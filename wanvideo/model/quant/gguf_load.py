"""Where GGUF weights meet the loader: which tensors stay packed, and the checks done once per file.

`load_model` asks `place_packed` for every parameter before its usual path: a block-quantised
Linear weight of a GGUF file is moved packed to its device (quantized.pack) when the caller keeps
file quantisation; anything else returns False and is read through `source.get()` (dequantised to
float32 by the GGUF source, then cast to the compute dtype like any safetensors tensor). Nothing
here depends on the model kind, so a WanAnimate GGUF goes through the same two functions (tested in
tests/model/test_gguf_loading.py). A loader node for another model kind lists GGUF files by passing
`also=(GGUF_EXTENSION,)` to host.model_choices (see nodes/model_nodes._weight_files), and the command
line's search takes the kind into model_files.GGUF_KINDS.
"""
from __future__ import annotations

import torch

from ..layers import Linear
from .quantized import pack


def place_packed(source, key: str, module, attr: str, target: torch.device, keep: bool) -> bool:
    """Put a packed weight in place (True) or leave the tensor to the normal path (False)."""
    if not (keep and attr == "weight" and isinstance(module, Linear)):
        return False
    is_packed = getattr(source, "is_packed", None)
    if is_packed is None or not is_packed(key):
        return False
    packed, fmt = source.get_packed(key)
    pack(module, packed.to(target), fmt)
    return True


def check_types(entries: dict) -> None:
    """Unsupported quantisation types of the tensors a model will use, checked before anything is read."""
    keys_by_source: dict = {}
    for source, key in entries.values():
        if hasattr(source, "check_types"):
            keys_by_source.setdefault(id(source), (source, []))[1].append(key)
    for source, keys in keys_by_source.values():
        source.check_types(keys)
