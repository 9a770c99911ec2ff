"""A tiny two-window, two-speaker generation split across torchrun ranks (gloo, CPU), for the sequence-parallel tests.

Run as `torchrun --nproc_per_node N sp_job.py STORE_ROOT KILL_AFTER_WINDOW MODE`: rank 0 drives the window loop
into STORE_ROOT and SIGKILLs itself right after window KILL_AFTER_WINDOW (0-based; -1 = never) is on disk, like a
crash; the other ranks serve the DiT's forward calls. `run_single` is the same generation on one process.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import torch

from wanvideo.audio import AudioEmbeddings
from wanvideo.model import build_model, tiny_config
from wanvideo.sampling import SamplerSettings, generate

FRAMES = 25  # window 17, motion 9: windows start at 0 and 8 -> two windows
SETTINGS = SamplerSettings(frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0, width=48, height=32,
                           seed=7, color_correction=0.5)


def dit():
    """The tiny DiT exactly as wanvideo.tiny.tiny_models(seed=0) builds it (without loading the other models)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model(tiny_config())


def inputs():
    """(vae, audio embeddings, image, clip, context, negative context), the same on every call."""
    from wanvideo.tiny import tiny_models

    models = tiny_models(seed=0)
    gen = torch.Generator().manual_seed(3)
    speakers = [torch.randn(FRAMES, 2, 32, generator=gen) for _ in range(2)]
    embeddings = AudioEmbeddings(speakers=speakers, fps=25.0, waveform=torch.zeros(FRAMES * 640), sample_rate=16000,
                                 mode="para")
    image = torch.rand(1, 40, 56, 3, generator=gen)
    return models, embeddings, image


def run(model, root, on_window_done=None):
    models, embeddings, image = inputs()
    return generate(model, models.vae, image, models.clip_fea, audio=embeddings, context=models.context,
                    context_null=models.context_null, settings=SETTINGS, store_root=str(root),
                    on_window_done=on_window_done)


if __name__ == "__main__":
    from wanvideo.model.parallel.distributed import init_from_env, run_sequence_parallel, shutdown

    root, kill_after, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    info = init_from_env("cpu")
    logging.basicConfig(level=logging.INFO if info.is_main else logging.WARNING, format="%(message)s")

    def crash(index, store):
        if index == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    store = run_sequence_parallel(dit(), mode, lambda model: run(model, root, crash))
    if info.is_main:
        print(f"frames={len(store)} complete={store.complete}")
    shutdown()
