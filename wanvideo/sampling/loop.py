"""The long-video window loop every model runs on: any length, window by window, every finished window on disk.

Three pieces, shared by the InfiniteTalk sampler (talk.py) and the WanAnimate one (animate.py):

* `run_job` is the frame of a run: the frame store opened (a new one, or the unfinished one of an identical
  earlier run), "already on disk" when it is complete, the resume logged, the VAE in the run's precision, the
  windows run, the store marked complete and always released;
* `run_windows` is the loop: every window not (or no longer) on disk, in order, each given what the window
  before it handed on (its "carry", kept in the store for resuming), and a failure that says what is kept;
* `WindowRunner.run(window, carry)` is the one recipe of a window: progress, conditioning, the host's
  `prepare_model`, the window's own noise, denoising with the shared speed machinery (batched passes, step
  cache, APG), the VAE decode (chunk progress, Cancel between VAE chunks), the NaN check after decoding, the
  kept frames and the next carry written to the store, one log line.

A new model is one file: a plan (sizes, windows, checked inputs), a run key (`fingerprint.Digest` of everything
that decides the frames), a `WindowRunner` subclass and an entry function that calls `run_job`. The subclass
sets `label`, `unit`, `carry_name` and implements the hooks:

    conditioning(window, carry) -> (passes, clean)  model keyword arguments per guidance pass, and the latent
                                                    frames kept clean (may be empty); VAE encodes via vae_call
    latent_shape(window) -> (16, T, h, w)           the window's latent
    solver() -> FlowSolver                          the window's schedule (default: InfiniteTalk's)
    guidance() -> (cfg, audio_cfg, has_audio)       the scales the window's guidance combines
    edit_region(window, noise, solver) -> region    default None; else blend(latent, i) and composite(video)
    decode(window, latent) -> video [3, F, H, W]    default: the whole latent through vae_call
    postprocess(window, video) -> video             default: unchanged (InfiniteTalk: colour correction)
    next_carry(window, video) -> carry              what the next window needs (only called when one follows)

It inherits progress (`report`), VAE calls with chunk progress and Cancel (`vae_call`), the NaN check, the
store write and the log line.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Any, Callable

import torch

from ..contracts import LoopRunner, VideoVAE
from ..errors import NonFiniteError
from ..video.frame_store import FrameStore
from .cache import StepCache
from .denoise import to_uint8_frames, window_noise
from .guidance import COND, DROP_TEXT
from .passes import use_batched_passes
from .schedules import FlowSolver
from .settings import GenerationInterrupted, Progress
from .vae_progress import DECODE, ENCODE, chunk_count, vae_chunks
from .window_job import LOCAL, WindowJob
from .windows import Window

log = logging.getLogger(__name__)


class WindowRunner:
    """Conditions, samples, decodes and stores one window at a time; a model's subclass supplies the hooks."""

    label = "WanVideo"  # the log lines' prefix
    unit = "window"  # what a window is called in messages ("window", "clip")
    carry_name = "carry"  # what a window hands to the next, kept in the store's state under this name
    schedule = "infinitetalk"  # the FlowSolver schedule of this model's loop ('wan22': WanAnimate's)

    def __init__(self, model, vae: VideoVAE, s, store: FrameStore, windows: list, total: int, height: int, width: int,
                 on_progress: Callable[[Progress], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 prepare_model: Callable[[tuple], None] | None = None, parallel=None):
        self.model, self.vae, self.s, self.store = model, vae, s, store
        self.parallel = parallel or LOCAL  # where a window's model calls run (window_job.py)
        self.windows, self.total, self.height, self.width = windows, total, height, width
        self.on_progress, self.should_stop, self.prepare_model = on_progress, should_stop, prepare_model
        self.device = torch.device(getattr(model, "main_device", None) or "cpu")
        self.resumed = store.finished_windows

    # -- what every model inherits ---------------------------------------------------------------------------

    def report(self, window: Window, step: int, stage: str = "denoise", chunk: int = 0, chunks: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(window.index + 1, len(self.windows), step, self.s.steps, self.resumed,
                                      unit=self.unit, stage=stage, chunk=chunk, chunks=chunks))

    def vae_call(self, window: Window, stage: str, x: torch.Tensor, step: int) -> torch.Tensor:
        """vae.encode / vae.decode of one window, reporting each VAE chunk and honouring Cancel between them."""
        chunks = chunk_count(stage, x.shape[1])
        self.report(window, step, stage, 0, chunks)
        with vae_chunks(self.vae, stage, chunks, lambda i, n: self.report(window, step, stage, i, n), self.should_stop):
            return self.vae.encode(x) if stage == ENCODE else self.vae.decode(x)

    def run(self, window: Window, carry):
        """Sample, decode and store one window; returns what the next window needs (None after the last)."""
        s, store = self.s, self.store
        started = time.perf_counter()
        self.report(window, 0)
        passes, clean = self.conditioning(window, carry)
        shape = self.latent_shape(window)
        if self.prepare_model is not None:
            # The host loads the weights (making room first) before the batching choice measures free memory.
            self.prepare_model((1, *shape))
        noise = window_noise(s.seed, window.index, shape, self.device)
        solver = self.solver()
        region = self.edit_region(window, noise, solver)
        cfg, audio_cfg, has_audio = self.guidance()
        job = WindowJob(window.index, noise, clean, passes, s, cfg, audio_cfg, has_audio, (self.height, self.width),
                        schedule=self.schedule, blend=region.blend if region is not None else None)
        del noise, passes, clean
        latent, note = self.parallel.denoise(self.model, job, lambda i: self.report(window, i), self.should_stop)
        del job
        with torch.no_grad():
            video = self.decode(window, latent)
            del latent
            if not bool(torch.isfinite(video).all()):
                raise NonFiniteError("the VAE decoded NaN/infinite pixels (they would be black frames): the VAE file is "
                                     "damaged, or it overflowed in fp16 (use a bf16 or fp32 VAE)")
            video = self.postprocess(window, video)
            if region is not None:  # the given pixels outside the region (the carried frames too)
                video = region.composite(video)
            next_carry = self.next_carry(window, video) if window.index < len(self.windows) - 1 else None
            kept = to_uint8_frames(video[:, window.drop:window.drop + window.keep])
            del video
        store.write_window(window.index, kept, {self.carry_name: next_carry} if next_carry is not None else None)
        log.info("%s: %s %d/%d done in %.1f s (%d/%d frames)%s", self.label, self.unit, window.index + 1,
                 len(self.windows), time.perf_counter() - started, len(store), self.total, f"; {note}" if note else "")
        return next_carry

    # -- the hooks a model implements (see the module docstring) ---------------------------------------------

    def conditioning(self, window: Window, carry) -> tuple[dict, torch.Tensor]:
        raise NotImplementedError

    def latent_shape(self, window: Window) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def solver(self) -> FlowSolver:
        return FlowSolver(self.s.scheduler, self.s.steps, self.s.shift, schedule=self.schedule)

    def guidance(self) -> tuple[float, float, bool]:
        return self.s.cfg, 1.0, False

    def edit_region(self, window: Window, noise: torch.Tensor, solver: FlowSolver):
        """None (the whole frame is generated), or the window's region to change: `blend(latent, i)` during
        denoising and `composite(video)` after decoding (edit_mask.py: face-only dubbing)."""
        return None

    def decode(self, window: Window, latent: torch.Tensor) -> torch.Tensor:
        return self.vae_call(window, DECODE, latent, self.s.steps)

    def postprocess(self, window: Window, video: torch.Tensor) -> torch.Tensor:
        return video

    def next_carry(self, window: Window, video: torch.Tensor) -> Any:
        raise NotImplementedError


def run_job(store: FrameStore, runner_type: type[WindowRunner], runner_args: dict, *,
            on_window_done: Callable[[int, FrameStore], None] | None = None,
            vae_precision: str = "host") -> FrameStore:
    """The frame of a run in its opened store: nothing to do when complete, else the resume logged, a runner of
    `runner_type(store=store, **runner_args)` over its windows with the VAE in `vae_precision`, the store marked
    complete; the store is released in every case (another process may resume or read the folder then)."""
    label, unit, windows = runner_type.label, runner_type.unit, runner_args["windows"]
    if store.complete:
        log.info("%s: all %d %ss of this run are already on disk (%s); nothing to do", label, len(windows), unit,
                 store.path)
        store.release()
        return store
    try:
        if store.finished_windows and store.windows_to_make():
            log.info("%s: resuming at %s %d/%d: %d finished %ss (%d frames) found in %s", label, unit,
                     store.windows_to_make()[0] + 1, len(windows), store.finished_windows, unit, len(store), store.path)
        runner = runner_type(store=store, **runner_args)
        with use_vae_precision(runner_args["vae"], vae_precision, label):
            run_windows(runner, windows, store, on_window_done)
        store.mark_complete()
    finally:
        store.release()  # the run is over: another process may use (resume, read) this folder now
    return store


def use_vae_precision(vae, name: str, label: str = "WanVideo InfiniteTalk"):
    """The VAE's own precision switch (vae.py, the node's HostWanVAE); other VAE objects run as they are."""
    switch = getattr(vae, "precision", None)
    if callable(switch):
        return switch(name)
    if name == "fp32":
        log.info("%s: this VAE object (%s) has no precision switch; it runs as loaded", label, type(vae).__name__)
    return nullcontext()


def check_speed_options(model, s) -> None:
    """Refuse, before any work, speed options this model cannot run."""
    if s.cache_method != "none":
        StepCache.check_model(model)
    if s.guidance_batching == "batched" and not getattr(model, "supports_batched_passes", False):
        use_batched_passes("batched", model, {COND: {}, DROP_TEXT: {}}, (1, 1, 1))  # raises the clear error


def run_windows(runner: LoopRunner, windows: list, store: FrameStore, on_window_done=None) -> None:
    """The one window loop: every window not (or no longer) on disk, in order, for any model's runner.

    runner.run(window, carry) samples, decodes and stores one window and returns what the next window needs
    (InfiniteTalk: the motion latent; WanAnimate: the refert frames), kept per window in the store's states
    under `runner.carry_name`, so a rerun resumes after the last finished window and remakes a damaged window
    in the middle from the state before it alone; `runner.unit` names a window in messages ("window", "clip").
    A failure says what is kept and where a rerun resumes.
    """
    unit = getattr(runner, "unit", "window")
    made = None  # (index, carry) of the window this run made last
    for index in store.windows_to_make():
        window = windows[index]
        if index == 0:
            carry = None
        elif made is not None and made[0] == index - 1:
            carry = made[1]
        else:  # the first window of this run, or a damaged one amid windows on disk
            carry = store.load_state(index - 1).get(runner.carry_name)
        try:
            made = (index, runner.run(window, carry))
        except GenerationInterrupted as exc:
            raise GenerationInterrupted(
                f"generation stopped in {unit} {window.index + 1}/{len(windows)} ({exc}); {store.finished_windows} "
                f"finished {unit}s ({len(store)} frames) are kept in {store.path} and a rerun with the same inputs "
                "resumes there", store) from None
        except NonFiniteError as exc:
            raise NonFiniteError(
                f"{unit} {window.index + 1}/{len(windows)} stopped: {exc}. {store.finished_windows} finished {unit}s "
                f"({len(store)} frames) are kept in {store.path}") from None
        except BaseException:
            # A host may stop the run with its own exception (ComfyUI's progress hook raises its interrupt on
            # Cancel): that is a stop on request, not a failure. Anything else (out of memory, a late bad
            # input, Ctrl-C...): say what is safe before the error surfaces.
            stop = getattr(runner, "should_stop", None)
            requested = stop is not None and stop()
            (log.info if requested else log.error)(
                "WanVideo InfiniteTalk: %s %d/%d %s; %d finished %ss (%d frames) are kept in %s and a rerun with the "
                "same inputs resumes there", unit, window.index + 1, len(windows),
                "stopped on request" if requested else "failed", store.finished_windows, unit, len(store), store.path)
            raise
        if on_window_done is not None:
            on_window_done(window.index, store)
