"""Tiny generations through a window executor, recording each window's latent (the multi-device tests compare
them with the single-process run's)."""
from __future__ import annotations

import torch
from sampling_fakes import FakeVAE

from wanvideo.audio import AudioEmbeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.animate import AnimateSettings, generate_animate
from wanvideo.sampling.window_job import LOCAL

# windows of 17 frames advancing by 8: 17 frames -> 1 window, 33 -> 3 windows
TALK = dict(frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0, width=48, height=32, seed=7)
ANIMATE = dict(clip_len=13, steps=2, width=48, height=80, cfg=2.0)


class Recorder:
    """An executor that records the latent each window's denoising returns (index -> latent)."""

    def __init__(self, inner=LOCAL):
        self.inner = inner
        self.latents: dict[int, torch.Tensor] = {}

    def denoise(self, model, job, on_step=None, should_stop=None):
        latent, note = self.inner.denoise(model, job, on_step, should_stop)
        self.latents[job.index] = latent.detach().clone().cpu()
        return latent, note


def talk_inputs(speakers: int, frames: int, seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    voices = [torch.randn(frames, 2, 32, generator=gen) for _ in range(speakers)]
    audio = AudioEmbeddings(speakers=voices, fps=25.0, waveform=torch.zeros(frames * 640), sample_rate=16000,
                            mode="para")
    image = torch.rand(1, 40, 56, 3, generator=gen)
    return audio, image


def run_talk(model, tiny, executor, root, speakers=1, frames=17, on_window_done=None, should_stop=None,
             on_progress=None, **settings):
    audio, image = talk_inputs(speakers, frames)
    return generate(model, FakeVAE(record=False), image, tiny.clip_fea, audio=audio, context=tiny.context,
                    context_null=tiny.context_null, settings=SamplerSettings(**{**TALK, **settings}),
                    store_root=str(root), on_window_done=on_window_done, should_stop=should_stop,
                    on_progress=on_progress, parallel=executor)


def driving_clip(frames: int = 25):
    """Short slices of the shared driving videos (pose and face), as numpy frames."""
    from testlib import MEDIA

    from wanvideo.app.media import read_image, read_video

    image = read_image(str(MEDIA / "portrait_480x832.png"))
    pose, _ = read_video(str(MEDIA / "animate_pose_3s.mp4"))
    face, _ = read_video(str(MEDIA / "animate_face_3s.mp4"))
    return image, pose[:frames], face[:frames]


def run_animate(model, tiny, executor, root, clip, on_window_done=None, **settings):
    image, pose, face = clip
    return generate_animate(model, FakeVAE(record=False), image, tiny.clip_fea, pose, face, context=tiny.context,
                            context_null=tiny.context_null, settings=AnimateSettings(**{**ANIMATE, **settings}),
                            store_root=str(root), on_window_done=on_window_done, parallel=executor)


def max_dev(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    return max(float((a[k] - b[k]).abs().max()) for k in a)
