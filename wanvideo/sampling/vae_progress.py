"""Progress and Cancel inside one VAE encode or decode.

The Wan VAE is causal in time: its encoder runs on 1 + 4 + 4 + ... frames and its decoder on one latent
frame at a time, carrying a cache between the calls (diffusers' AutoencoderKLWan and ComfyUI's WanVAE
alike). A window's decode is many such calls and can take minutes on slow hardware, so the loop
reports each call as a chunk and honours Cancel before the next one, by hooking the VAE's `encoder` /
`decoder` sub-module. An adapter exposes that module as `vae.module`; without one the call runs whole.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch

from .settings import GenerationInterrupted
from .vae import TEMPORAL_STRIDE

ENCODE, DECODE = "encode", "decode"


def chunk_count(stage: str, frames: int) -> int:
    """Encoder / decoder calls for `frames` pixel frames (encode) or latent frames (decode)."""
    return 1 + (frames - 1) // TEMPORAL_STRIDE if stage == ENCODE else frames


@contextmanager
def vae_chunks(vae, stage: str, chunks: int, report: Callable[[int, int], None] | None,
               should_stop: Callable[[], bool] | None):
    """While active, every call of the VAE's encoder/decoder is reported as `report(done, chunks)`, and a
    requested stop raises GenerationInterrupted before the next call."""
    part = getattr(getattr(vae, "module", None), "encoder" if stage == ENCODE else "decoder", None)
    if not isinstance(part, torch.nn.Module):
        yield
        return
    done = [0]

    def before(_module, _args):
        if should_stop is not None and should_stop():
            raise GenerationInterrupted(f"stopped during the VAE {stage}, chunk {done[0] + 1}/{chunks}")

    def after(_module, _args, _output):
        done[0] += 1
        if report is not None:
            report(min(done[0], chunks), chunks)

    handles = [part.register_forward_pre_hook(before), part.register_forward_hook(after)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
