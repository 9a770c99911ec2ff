"""A small deterministic generation run (tiny real models) shared by the resume test and its subprocess.

Run as a script: `python resume_job.py STORE_ROOT KILL_AFTER_WINDOW THREADS` generates into STORE_ROOT and
SIGKILLs its own process right after window KILL_AFTER_WINDOW (0-based) is on disk, like a crash would.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from wanvideo.audio import AudioEmbeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.tiny import tiny_models

FRAMES = 41  # window 17, motion 9: windows start at 0, 8, 16, 24 -> 4 windows
SETTINGS = SamplerSettings(frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0, width=48, height=32,
                           seed=42, color_correction=0.5)
PASSES = 3  # cond, drop_text, uncond


def inputs():
    models = tiny_models(seed=0)
    gen = torch.Generator().manual_seed(3)
    embeddings = AudioEmbeddings(speakers=[torch.randn(FRAMES, 2, 32, generator=gen)], fps=25.0,
                                 waveform=torch.zeros(FRAMES * 640), sample_rate=16000)
    image = torch.rand(1, 40, 56, 3, generator=gen)
    return models, embeddings, image


def run(root, models, embeddings, image, on_window_done=None):
    return generate(models.dit, models.vae, image, models.clip_fea, audio=embeddings, context=models.context,
                    context_null=models.context_null, settings=SETTINGS, store_root=str(root),
                    on_window_done=on_window_done)


if __name__ == "__main__":
    root, kill_after, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)

    def crash(index, store):
        if index == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    run(root, *inputs(), on_window_done=crash)
