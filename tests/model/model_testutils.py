"""Loading the reference DiT fixtures (shared/fixtures/dit_*.safetensors) for the model tests."""
from __future__ import annotations

from safetensors import safe_open
from safetensors.torch import load_file

from wanvideo.model import config_from_reference

NON_WEIGHT_PREFIXES = ("input.", "output.", "aux.", "debug.", "derived.")

# output name -> (context input, audio input), the four guidance calls of the official loop
CALLS = {
    "cond": ("input.context", "input.audio"),
    "drop_text": ("input.context_null", "input.audio"),
    "uncond": ("input.context_null", "input.audio_null"),
    "drop_audio": ("input.context", "input.audio_null"),
}


def load_dit_fixture(path):
    """(config dict, weights under official names, all tensors) of one DiT fixture file."""
    tensors = load_file(str(path))
    meta = safe_open(str(path), "pt").metadata()
    weights = {k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT_PREFIXES)}
    return config_from_reference(meta["config"]), weights, tensors


def call_args(tensors, output_name):
    """Arguments of our batched forward for one of the fixture's official calls."""
    ctx_key, audio_key = CALLS[output_name]
    return dict(
        x=tensors["input.x"][None],
        t=tensors["input.t"],
        context=tensors[ctx_key][None],
        clip_fea=tensors["input.clip_fea"],
        y=tensors["input.y"],
        audio=tensors[audio_key],
        ref_target_masks=tensors["input.ref_target_masks"],
    )
