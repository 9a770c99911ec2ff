"""The long-video window loop: any length, window by window, every finished window on disk.

Re-expresses the reference loop (`InfiniteTalkPipeline.generate_infinitetalk`,
MeiGen-AI/InfiniteTalk `wan/multitalk.py`):

* every window is conditioned on a reference frame: the image, or for dubbing
  the source frame at the window's start (CLIP features + `y`: 4 mask channels,
  ones on latent frame 0, then the VAE latent of that frame followed by grey);
* the first window's motion latent is the reference frame's latent; later
  windows VAE-encode the previous window's last `motion_frames` decoded frames
  and keep those latents clean (overwritten before every model call and after
  every step), and drop those frames from their output;
* audio windows advance by `frame_window − motion_frames` (see windows.py);
* three-way text/audio guidance (guidance.py), reference Euler schedule or
  UniPC / DPM++ (schedules.py); optional colour correction toward the image.

Differences, on purpose: exactly `total_frames` frames come out; each window's
noise comes from its own generator (seed for window 0, a derived seed after), so
a resumed run equals an uninterrupted one; each finished window goes straight
to a FrameStore together with the next window's motion latent.
"""
from __future__ import annotations

import hashlib
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import InputError, NonFiniteError
from ..video.frame_store import FrameStore
from .cache import StepCache
from .color import match_and_blend_colors
from .conditioning import ReferenceFrames, check_audio, prepare_clip, prepare_context
from .edit_mask import EditRegion, prepare_edit_region
from .fingerprint import Digest, module_fingerprint
from .guidance import COND, DROP_AUDIO, DROP_TEXT, combine, needed_passes
from .masks import ref_target_masks
from .passes import PassRunner, use_batched_passes
from .schedules import FlowSolver
from .settings import GenerationInterrupted, Progress, SamplerSettings, key_settings
from .sizes import resolve_size
from .vae import LATENT_CHANNELS, SPATIAL_STRIDE, TEMPORAL_STRIDE
from .vae_progress import DECODE, ENCODE, chunk_count, vae_chunks
from .window_job import LOCAL, WindowJob
from .window_prompts import WindowPrompts, reuse_matching_windows
from .windows import Window, gather_audio, plan_windows

log = logging.getLogger(__name__)

STORE_FORMAT_REVISION = 1  # bump when the loop's numbers change, so old stores are not resumed


def window_seed(seed: int, index: int) -> int:
    """The noise seed of window `index`: the user's seed for the first, a derived one for the rest."""
    if index == 0:
        return int(seed) & 0xFFFF_FFFF_FFFF_FFFF
    digest = hashlib.sha256(f"infinitetalk-window:{int(seed)}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def window_noise(seed: int, index: int, shape, device=None) -> torch.Tensor:
    """float32 N(0, 1) noise for window `index` (CPU generator: the same numbers on every device)."""
    generator = torch.Generator("cpu").manual_seed(window_seed(seed, index))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device or "cpu")


def latent_frames(frames: int) -> int:
    return (frames - 1) // TEMPORAL_STRIDE + 1


def first_frame_mask(frames: int, lat_h: int, lat_w: int) -> torch.Tensor:
    """[4, T, lat_h, lat_w]: the reference's mask channels of `y` (ones on latent frame 0 only)."""
    mask = torch.zeros(4, latent_frames(frames), lat_h, lat_w)
    mask[:, 0] = 1.0
    return mask


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """[3, n, H, W] in [-1, 1] -> [n, H, W, 3] uint8 (rounded)."""
    pixels = ((video.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).contiguous().cpu().numpy()


def denoise_window(
    model,
    noise: torch.Tensor,
    motion_latent: torch.Tensor,
    solver: FlowSolver,
    passes: dict,
    cfg: float,
    audio_cfg: float,
    has_audio: bool,
    on_step: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    predict: Callable | None = None,
    guide: Callable | None = None,
    blend: Callable | None = None,
) -> torch.Tensor:
    """Denoise one window's latent [16, T, h, w]; `passes` maps pass name -> model keyword arguments.

    The motion latent (its first frames) is written into the latent before every model call and after
    every step, so those frames stay clean, as in the reference. `predict(x, t, step)` runs a step's passes
    (default: one model call per pass; see passes.PassRunner), `guide(preds)` combines them (default: CFG).
    `blend(latent, i)`: face-only dubbing's source blend at step i's noise level (i = steps: the clean end; see
    edit_mask.py), before every model call and after the last step.
    """
    predict = predict or PassRunner(model, passes, should_stop=should_stop)
    guide = guide or (lambda preds: combine(preds, cfg, audio_cfg, has_audio))
    latent = noise.clone()
    n_motion = motion_latent.shape[1]
    for i in range(solver.num_steps):
        if should_stop is not None and should_stop():
            raise GenerationInterrupted(f"stopped before step {i + 1}/{solver.num_steps}")
        if blend is not None:
            latent = blend(latent, i)
        latent[:, :n_motion] = motion_latent
        t = solver.timesteps[i:i + 1].to(latent.device)
        preds = predict(latent[None], t, i)
        velocity = guide(preds)
        del preds
        latent = solver.step(i, latent, velocity)
        if not bool(torch.isfinite(latent).all()):
            raise NonFiniteError(
                f"step {i + 1}/{solver.num_steps} produced NaN/infinite values: likely a damaged or wrongly "
                "quantised model or LoRA file, or fp16 overflow (use bf16 or fp32 compute)")
        latent[:, :n_motion] = motion_latent
        if on_step is not None:
            on_step(i + 1)
    if blend is not None:
        latent = blend(latent, solver.num_steps)
        latent[:, :n_motion] = motion_latent
    return latent


def generate(
    model,
    vae,
    frames,
    clip_fea,
    *,
    audio=None,
    context=None,
    context_null=None,
    speaker_masks=None,
    settings: SamplerSettings | None = None,
    store_root: str,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_window_done: Callable[[int, FrameStore], None] | None = None,
    prepare_model: Callable[[tuple], None] | None = None,
    clip_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    lock_wait: float = 0.0,
    parallel=None,
    edit_mask=None,
    face_models=None,
) -> FrameStore:
    """Generate the whole video into a FrameStore under `store_root` (resuming a matching unfinished one).

    model: the DiT (INFINITETALK_MODEL contract); vae: an object with encode/decode/fingerprint (vae.py);
    frames: the reference image, or source video frames for dubbing (conditioning.ReferenceFrames);
    clip_fea: [1 or N, 257, clip_dim]; audio: AudioEmbeddings or None (plain I2V);
    context / context_null: [1, L, text_dim] positive / negative text embeddings (None = empty prompt);
    speaker_masks: optional pair of [H, W] masks for two speakers.
    prepare_model: called with the window's latent shape [1, 16, T, h, w] right before its denoising (after the
        VAE encodes), e.g. for a host to load the model's weights, making room for them and the activations.
    clip_encoder: optional CLIP ViT-H image encoder, pixels [3, H, W] in 0..1 -> [257, clip_dim] (or [1, 257, ...]).
        Given, each window's CLIP features come from its conditioning frame as the model sees it (resized and
        centre-cropped to the output size; for dubbing, the window's own frame), as the reference does, and
        `clip_fea` is not used. An encoder may carry `fingerprint()` (identifies its weights, for resuming).
    lock_wait: seconds to wait while another process runs the same job in the same folder (then a
        RunInProgressError naming that process; see video/run_lock.py).
    parallel: where each window's model calls run (window_job.LocalExecutor by default; the multi-device
        executors of wanvideo.model.parallel). It does not change the run's identity: a run resumes under any.
    edit_mask: dubbing only, where the picture may change ([H, W] or one per source frame, 1 = change); the rest
        stays the source's pixels (edit_mask.py). `settings.face_only` builds it from the face box instead.
    face_models: with `settings.face_only`, the person detector and pose model files (face_box.find_face_models):
        the face is found in every source frame, one at a time, before the first window (progress stage "face").
    """
    s = (settings or SamplerSettings()).validated()
    plan = plan_run(model, frames, None if clip_encoder is not None else clip_fea, audio, context, context_null,
                    speaker_masks, s, clip_encoder=clip_encoder, edit_mask=edit_mask, face_models=face_models,
                    on_progress=on_progress, should_stop=should_stop)
    check_speed_options(model, s)
    store = _open_store(store_root, model, vae, plan, audio, s, lock_wait)
    if store.complete:
        log.info("WanVideo InfiniteTalk: all %d windows of this run are already on disk (%s); nothing to do",
                 len(plan.windows), store.path)
        store.release()
        return store
    try:
        with _vae_precision(vae, s.vae_precision):
            runner = _WindowRunner(model, vae, plan, audio, s, store, on_progress, should_stop, prepare_model, parallel)
            run_windows(runner, plan.windows, store, on_window_done)
        store.mark_complete()
    finally:
        store.release()  # the run is over: another process may use (resume, read) this folder now
    return store


def _vae_precision(vae, name: str):
    """The VAE's own precision switch (vae.py, the node's HostWanVAE); other VAE objects run as they are."""
    switch = getattr(vae, "precision", None)
    if callable(switch):
        return switch(name)
    if name == "fp32":
        log.info("WanVideo InfiniteTalk: this VAE object (%s) has no precision switch; it runs as loaded",
                 type(vae).__name__)
    return nullcontext()


@dataclass
class RunPlan:
    """Everything a run decides before its first window: sizes, windows, checked conditioning."""

    source: ReferenceFrames
    has_audio: bool
    fps: float
    total: int
    height: int
    width: int
    windows: list
    ctx: torch.Tensor
    ctx_null: torch.Tensor
    clip_all: torch.Tensor | None  # None: encoded per window by clip_encoder
    masks: torch.Tensor | None
    pass_names: list
    num_speakers: int
    audio_window: int
    clip_dim: int = 1280
    clip_encoder: Callable | None = None
    prompts: WindowPrompts | None = None  # the positive prompt(s): one, or one per window
    edit: EditRegion | None = None  # face-only dubbing: where the picture may change (None: everywhere)

    @property
    def lat_h(self) -> int:
        return self.height // SPATIAL_STRIDE

    @property
    def lat_w(self) -> int:
        return self.width // SPATIAL_STRIDE


def _frame_count(audio, source: ReferenceFrames, s: SamplerSettings) -> tuple[float, int]:
    """(fps, number of frames to make): the audio's length (or max_frames); without audio, max_frames or the video's."""
    if audio is not None:
        return float(audio.fps), audio.num_frames if s.max_frames == 0 else min(audio.num_frames, s.max_frames)
    if s.max_frames > 0:
        return s.fps, s.max_frames
    if source.is_video:
        return s.fps, len(source)
    raise InputError("without audio embeddings (plain image-to-video) set max_frames to the number of "
                     "frames to make (e.g. 81)")


def plan_run(model, frames, clip_fea, audio, context, context_null, speaker_masks, s: SamplerSettings,
             clip_encoder=None, edit_mask=None, face_models=None, on_progress=None, should_stop=None) -> RunPlan:
    """Check the inputs against the model and decide sizes, windows and guidance passes."""
    config = dict(getattr(model, "config", {}) or {})
    if config.get("model_type") == "animate":
        raise InputError("this model is Wan2.2-Animate (WanAnimate): it does not make talking video from speech. Use "
                         "it with the InfiniteTalk Animate Sampler, or load Wan2.1 I2V 14B + an InfiniteTalk file here")
    text_dim, text_len = int(config.get("text_dim", 4096)), int(config.get("text_len", 512))
    clip_dim, audio_window = int(config.get("clip_dim", 1280)), int(config.get("audio_window", 5))

    source = ReferenceFrames(frames)
    check_audio(audio, config)
    has_audio = audio is not None
    fps, total = _frame_count(audio, source, s)
    height, width = resolve_size(s.width, s.height, source.height, source.width, s.size_bucket)
    lat_h, lat_w = height // SPATIAL_STRIDE, width // SPATIAL_STRIDE
    windows = plan_windows(total, s.frame_window, s.motion_frames, TEMPORAL_STRIDE)

    prompts = WindowPrompts.prepare(context, text_dim, text_len)
    ctx = prompts.first
    ctx_null = prepare_context(context_null, text_dim, text_len, "negative")
    clip_all = None if clip_encoder is not None else prepare_clip(clip_fea, clip_dim, len(source))
    num_speakers = audio.num_speakers if has_audio else 1
    masks = ref_target_masks(num_speakers, source.height, source.width, height, width, lat_h, lat_w,
                             speaker_masks) if has_audio else None
    pass_names = needed_passes(s.cfg, s.audio_cfg, has_audio, prompts.all_same_as(ctx_null))
    face_progress = face_search_progress(on_progress, len(windows), s.steps)
    edit = prepare_edit_region(edit_mask, s, source, height, width, face_models, face_progress,
                               should_stop)  # last: face_only searches every frame
    return RunPlan(source, has_audio, fps, total, height, width, windows, ctx, ctx_null, clip_all, masks,
                   pass_names, num_speakers, audio_window, clip_dim, clip_encoder, prompts, edit)


def face_search_progress(on_progress, windows: int, steps: int):
    """face_only's face search as progress (stage "face", one chunk per source frame) and a log line now and then."""
    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            log.info("WanVideo InfiniteTalk: face_only: face found in %d/%d source frames", done, total)
        if on_progress is not None:
            on_progress(Progress(1, windows, 0, steps, stage="face", chunk=done, chunks=total))
    return progress


def check_speed_options(model, s: SamplerSettings) -> None:
    """Refuse, before any work, speed options this model cannot run."""
    if s.cache_method != "none":
        StepCache.check_model(model)
    if s.guidance_batching == "batched" and not getattr(model, "supports_batched_passes", False):
        use_batched_passes("batched", model, {COND: {}, DROP_TEXT: {}}, (1, 1, 1))  # raises the clear error


def _open_store(store_root: str, model, vae, plan: RunPlan, audio, s: SamplerSettings,
                lock_wait: float = 0.0) -> FrameStore:
    """The run's frame store: a new one, or the unfinished one of an identical earlier run (logged)."""
    clip = plan.clip_all if plan.clip_encoder is None else _encoder_id(plan.clip_encoder)
    key = _run_key(model, vae, plan.source, audio, plan.prompts.run_key_context(), plan.ctx_null, clip, plan.masks, s,
                   plan.total, (plan.height, plan.width), plan.edit)
    store = FrameStore.open_for_run(
        store_root, key, width=plan.width, height=plan.height, fps=plan.fps, total_frames=plan.total,
        num_windows=len(plan.windows),
        info=dict(settings=vars(s), passes=plan.pass_names, speakers=plan.num_speakers, dubbing=plan.source.is_video),
        lock_wait=lock_wait,
    )
    changed = reuse_matching_windows(store, plan.prompts.window_keys(len(plan.windows)))
    if changed is not None:
        log.info("WanVideo InfiniteTalk: the prompt of window %d changed: %s, windows %d-%d made again", changed + 1,
                 f"windows 1-{changed} are reused" if changed else "nothing is reused", changed + 1, len(plan.windows))
    if store.complete:
        return store
    resumed = store.finished_windows
    if resumed and store.windows_to_make():
        log.info("WanVideo InfiniteTalk: resuming at window %d/%d: %d finished windows (%d frames) found in %s",
                 store.windows_to_make()[0] + 1, len(plan.windows), resumed, len(store), store.path)
    if plan.source.is_video and len(plan.source) < plan.total:
        log.warning("WanVideo InfiniteTalk: the source video has %d frames for %d output frames; its last frame "
                    "conditions the rest", len(plan.source), plan.total)
    return store


class _WindowRunner:
    """Samples, decodes and stores one window at a time (the InfiniteTalk body of the loop)."""

    carry_name = "motion_latent"  # what a window hands to the next, kept in the store's state
    unit = "window"

    def __init__(self, model, vae, plan: RunPlan, audio, s: SamplerSettings, store: FrameStore, on_progress,
                 should_stop, prepare_model=None, parallel=None):
        self.model, self.vae, self.plan, self.audio, self.s, self.store = model, vae, plan, audio, s, store
        self.parallel = parallel or LOCAL  # where a window's model calls run (window_job.py)
        self.on_progress, self.should_stop, self.prepare_model = on_progress, should_stop, prepare_model
        self.device = device = torch.device(getattr(model, "main_device", None) or "cpu")
        self.resumed = store.finished_windows
        source = plan.source
        self.color_ref = source.conditioning(0, plan.height, plan.width)[:, 0] if s.color_correction > 0 else None
        self.cache = {}  # (frame index, window length) -> (y, clip): an image conditions every window the same way
        self.ctx_null_d = plan.ctx_null.to(device)
        self.ctx_d = {}  # prompt index -> its embedding on the device
        self.masks_d = plan.masks.to(device) if plan.masks is not None else None

    def report(self, window: Window, step: int, stage: str = "denoise", chunk: int = 0, chunks: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(window.index + 1, len(self.plan.windows), step, self.s.steps, self.resumed,
                                      stage=stage, chunk=chunk, chunks=chunks))

    def vae_call(self, window: Window, stage: str, x: torch.Tensor, step: int) -> torch.Tensor:
        """vae.encode / vae.decode of one window, reporting each VAE chunk and honouring Cancel between them."""
        chunks = chunk_count(stage, x.shape[1])
        self.report(window, step, stage, 0, chunks)
        with vae_chunks(self.vae, stage, chunks, lambda i, n: self.report(window, step, stage, i, n), self.should_stop):
            return self.vae.encode(x) if stage == ENCODE else self.vae.decode(x)

    def conditioning(self, window: Window):
        """(pixels, y, clip row) of the window's reference frame, computed once per distinct frame."""
        plan, source = self.plan, self.plan.source
        height, width = plan.height, plan.width
        frame_index = min(window.start, len(source) - 1) if source.is_video else 0
        cond_key = (frame_index, window.length)
        cond_pixels = source.conditioning(frame_index, height, width)
        if cond_key not in self.cache:
            self.cache.clear()
            video = torch.cat([cond_pixels, cond_pixels.new_zeros(3, window.length - 1, height, width)], 1)
            y_latent = self.vae_call(window, ENCODE, video, 0).float().cpu()
            del video
            y = torch.cat([first_frame_mask(window.length, plan.lat_h, plan.lat_w), y_latent], 0)[None]
            clip_row = self.clip_row(frame_index, cond_pixels)
            self.cache[cond_key] = (y.to(self.device), clip_row.to(self.device))
        return cond_pixels, *self.cache[cond_key]

    def clip_row(self, frame_index: int, cond_pixels: torch.Tensor) -> torch.Tensor:
        """[1, 257, clip_dim]: the given features' row, or the encoder's features of the conditioning frame."""
        plan = self.plan
        if plan.clip_encoder is None:
            return plan.clip_all[frame_index if plan.clip_all.shape[0] > 1 else 0][None]
        pixels = ((cond_pixels[:, 0].float() + 1.0) / 2.0).clamp(0.0, 1.0)
        with torch.no_grad():
            features = plan.clip_encoder(pixels)
        return prepare_clip(torch.as_tensor(features).float().cpu(), plan.clip_dim, 1)

    def passes(self, window: Window, y, clip_row) -> dict:
        """Model keyword arguments of each guidance pass (conditional, no text, no audio, ...)."""
        audio_in = audio_null = None
        if self.plan.has_audio:
            audio_in = gather_audio(self.audio.speakers, window, self.plan.audio_window).to(self.device)
            audio_null = torch.zeros_like(audio_in[:1])
        passes = {}
        for name in self.plan.pass_names:
            passes[name] = dict(context=self.context(window) if name in (COND, DROP_AUDIO) else self.ctx_null_d,
                                audio=audio_in if name in (COND, DROP_TEXT) else audio_null,
                                clip_fea=clip_row, y=y, ref_target_masks=self.masks_d)
            if audio_in is not None and self.s.audio_scale != 1.0:  # only then: models without the option still run
                passes[name]["audio_scale"] = self.s.audio_scale
        return passes

    def context(self, window: Window) -> torch.Tensor:
        """The positive prompt's embedding for this window (prompt k for window k, the last for the rest)."""
        index = self.plan.prompts.index_for(window.index)
        if index not in self.ctx_d:
            self.ctx_d[index] = self.plan.prompts.contexts[index].to(self.device)
        return self.ctx_d[index]

    def run(self, window: Window, motion_latent):
        """Sample, decode and store one window; returns the next window's motion latent."""
        plan, s, store = self.plan, self.s, self.store
        started = time.perf_counter()
        self.report(window, 0)
        cond_pixels, y, clip_row = self.conditioning(window)
        if window.index == 0:
            motion_latent = self.vae_call(window, ENCODE, cond_pixels, 0).float()
        if motion_latent is None:
            raise InputError(f"cannot continue at window {window.index + 1}: the motion frames of the previous "
                             f"window are missing from {store.path}; delete that folder to start again")
        motion_latent = motion_latent.to(self.device)

        passes = self.passes(window, y, clip_row)
        shape = (LATENT_CHANNELS, latent_frames(window.length), plan.lat_h, plan.lat_w)
        if self.prepare_model is not None:
            # The host loads the weights (making room first) before the batching choice measures free memory.
            self.prepare_model((1, *shape))
        noise = window_noise(s.seed, window.index, shape, self.device)
        edit = self.window_edit(window, noise, FlowSolver(s.scheduler, s.steps, s.shift))
        job = WindowJob(window.index, noise, motion_latent, passes, s, s.cfg, s.audio_cfg, plan.has_audio,
                        (plan.height, plan.width), blend=edit.blend if edit is not None else None)
        del passes, noise
        latent, note = self.parallel.denoise(self.model, job, lambda i: self.report(window, i), self.should_stop)
        del job
        with torch.no_grad():
            video = self.vae_call(window, DECODE, latent, s.steps)
            del latent
            if not bool(torch.isfinite(video).all()):
                raise NonFiniteError("the VAE decoded NaN/infinite pixels (they would be black frames): the VAE file is "
                                     "damaged, or it overflowed in fp16 (use a bf16 or fp32 VAE)")
            if self.color_ref is not None:
                video = match_and_blend_colors(video, self.color_ref.to(video.device), s.color_correction)
            if edit is not None:  # face-only dubbing: the source's pixels outside the mask (motion frames too)
                video = edit.composite(video)
            next_motion = None
            if window.index < len(plan.windows) - 1:
                next_motion = self.vae_call(window, ENCODE, video[:, -s.motion_frames:], s.steps).float()
            kept = to_uint8_frames(video[:, window.drop:window.drop + window.keep])
            del video
        store.write_window(window.index, kept, {"motion_latent": next_motion} if next_motion is not None else None)
        log.info("WanVideo InfiniteTalk: window %d/%d done in %.1f s (%d/%d frames)%s", window.index + 1,
                 len(plan.windows), time.perf_counter() - started, len(store), plan.total, f"; {note}" if note else "")
        return next_motion

    def window_edit(self, window: Window, noise, solver: FlowSolver):
        """Face-only dubbing's blend and composite for this window (None: the whole frame is generated)."""
        if self.plan.edit is None:
            return None
        return self.plan.edit.window(window, noise, solver.timesteps_full / 1000.0,
                                     lambda pixels: self.vae_call(window, ENCODE, pixels, 0))


def run_windows(runner, windows: list, store: FrameStore, on_window_done=None) -> None:
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


def _encoder_id(encoder) -> str:
    """What identifies a CLIP encoder's numbers in the run key: its own fingerprint, else its type."""
    fingerprint = getattr(encoder, "fingerprint", None)
    return str(fingerprint()) if callable(fingerprint) else f"clip-encoder:{type(encoder).__qualname__}"


def _run_key(model, vae, source, audio, ctx, ctx_null, clip_all, masks, s, total, size, edit=None) -> str:
    """Digest of everything that decides the frames; equal digests mean a rerun may resume the store."""
    d = Digest()
    d.add("revision", STORE_FORMAT_REVISION)
    d.add("settings", key_settings(s))
    d.add("total_size", [total, list(size)])
    d.add("model_config", {k: v for k, v in (getattr(model, "config", {}) or {}).items()})
    d.add("model_dtype", str(getattr(model, "compute_dtype", "")))
    d.add("model_weights", module_fingerprint(model) if isinstance(model, torch.nn.Module) else repr(model))
    d.add("vae", vae.fingerprint() if hasattr(vae, "fingerprint") else repr(vae))
    d.add("frames", len(source))
    for i in range(len(source)):
        d.add("frame", source.rgb(i))
    if audio is not None:
        d.add("audio", [audio.fps, audio.num_speakers])
        d.add("audio_speakers", list(audio.speakers))
    d.add("context", ctx)
    d.add("context_null", ctx_null)
    d.add("clip", clip_all)
    d.add("masks", masks)
    if edit is not None:  # added only with a region: runs without one keep their key
        d.add("edit_region", edit.key())
    return d.hexdigest()[:32]
