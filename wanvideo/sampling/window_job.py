"""One window's denoising as a unit of work: everything it needs in one picklable object.

The window loops (InfiniteTalk, WanAnimate) prepare a window's conditioning, noise and motion frames, then hand a
`WindowJob` to an executor and get the window's latent back. The default executor runs it here; the multi-device
executors (`wanvideo.model.parallel`) run the same `run_window_job` with each guidance pass on its own device, with
the blocks spread over devices, or in a pool of worker processes that split the tokens (the job travels to them:
a few MB of conditioning in, one latent out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .apg import window_guide
from .passes import window_pass_runner
from .schedules import FlowSolver


@dataclass
class WindowJob:
    """noise / motion_latent: [16, T, h, w] / [16, m, h, w]; passes: pass name -> model keyword arguments;
    settings: the sampler's settings (SamplerSettings or AnimateSettings); size: output (height, width);
    schedule: the FlowSolver schedule ('infinitetalk' or 'wan22')."""

    index: int
    noise: torch.Tensor
    motion_latent: torch.Tensor
    passes: dict
    settings: Any  # SamplerSettings or AnimateSettings (scheduler, steps, shift, the guidance options)
    cfg: float
    audio_cfg: float
    has_audio: bool
    size: tuple[int, int]
    schedule: str = "infinitetalk"
    blend: Callable | None = None  # face-only dubbing's per-step source blend (loop.denoise_window); stays here

    @property
    def shape(self) -> tuple:
        return tuple(self.noise.shape)

    def solver(self) -> FlowSolver:
        s = self.settings
        return FlowSolver(s.scheduler, s.steps, s.shift, schedule=self.schedule)

    def to(self, device) -> "WindowJob":
        """The same job with its tensors on `device` (a worker's)."""
        def move(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        passes = {name: {k: move(v) for k, v in kwargs.items()} for name, kwargs in self.passes.items()}
        return WindowJob(self.index, move(self.noise), move(self.motion_latent), passes, self.settings, self.cfg,
                         self.audio_cfg, self.has_audio, self.size, self.schedule, self.blend)


def run_window_job(model, job: WindowJob, on_step: Callable[[int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, predict=None) -> tuple[torch.Tensor, str]:
    """(the window's denoised latent, a note for the log) — `predict` replaces the window's PassRunner (guidance
    split runs the passes on several devices)."""
    from .denoise import denoise_window

    s = job.settings
    if predict is None:
        predict = window_pass_runner(model, job.passes, job.shape, s, job.size, should_stop)
    with torch.no_grad():
        latent = denoise_window(model, job.noise, job.motion_latent, job.solver(), job.passes, job.cfg,
                                job.audio_cfg, job.has_audio, on_step=on_step, should_stop=should_stop,
                                predict=predict, guide=window_guide(s, job.cfg, job.audio_cfg, job.has_audio),
                                blend=job.blend)
    cache = getattr(predict, "cache", None)
    return latent, (cache.summary() if cache is not None else "")


class LocalExecutor:
    """Runs a window on the model as it is (one device, or block swap): the default."""

    name = "local"

    def denoise(self, model, job: WindowJob, on_step=None, should_stop=None) -> tuple[torch.Tensor, str]:
        return run_window_job(model, job, on_step, should_stop)


LOCAL = LocalExecutor()
