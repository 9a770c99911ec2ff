"""InfiniteTalk on the window loop (loop.py): talking video of any length from a portrait or a video and speech.

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

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from ..contracts import ClipEncoder, VideoVAE
from ..errors import InputError
from ..video.frame_store import FrameStore
from .color import match_and_blend_colors
from .conditioning import ReferenceFrames, check_audio, prepare_clip, prepare_context
from .denoise import first_frame_mask, latent_frames
from .edit_mask import EditRegion, prepare_edit_region
from .fingerprint import Digest, module_fingerprint
from .guidance import COND, DROP_AUDIO, DROP_TEXT, needed_passes
from .loop import WindowRunner, check_speed_options, run_job
from .masks import ref_target_masks
from .schedules import FlowSolver
from .settings import Progress, SamplerSettings, key_settings
from .sizes import resolve_size
from .vae import LATENT_CHANNELS, SPATIAL_STRIDE, TEMPORAL_STRIDE
from .vae_progress import ENCODE
from .window_prompts import WindowPrompts, reuse_matching_windows
from .windows import Window, gather_audio, plan_windows

log = logging.getLogger(__name__)

STORE_FORMAT_REVISION = 1  # bump when the loop's numbers change, so old stores are not resumed


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
    clip_encoder: ClipEncoder | None = None,
    lock_wait: float = 0.0,
    edit_mask=None,
    parallel=None,
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
    edit_mask: dubbing only, where the picture may change ([H, W] or one per source frame, 1 = change); the rest
        stays the source's pixels (edit_mask.py). `settings.face_only` builds it from the face box instead.
    parallel: where each window's model calls run (window_job.LocalExecutor by default; the multi-device
        executors of wanvideo.model.parallel). It does not change the run's identity: a run resumes under any.
    face_models: with `settings.face_only`, the person detector and pose model files (face_box.find_face_models):
        the face is found in every source frame, one at a time, before the first window (progress stage "face").
    """
    s = (settings or SamplerSettings()).validated()
    plan = plan_run(model, frames, None if clip_encoder is not None else clip_fea, audio, context, context_null,
                    speaker_masks, s, clip_encoder=clip_encoder, edit_mask=edit_mask, face_models=face_models,
                    on_progress=on_progress, should_stop=should_stop)
    check_speed_options(model, s)
    store = _open_store(store_root, model, vae, plan, audio, s, lock_wait)
    runner_args = dict(model=model, vae=vae, plan=plan, audio=audio, s=s, windows=plan.windows,
                       on_progress=on_progress, should_stop=should_stop, prepare_model=prepare_model,
                       parallel=parallel)
    return run_job(store, TalkWindowRunner, runner_args, on_window_done=on_window_done, vae_precision=s.vae_precision)


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
    clip_encoder: ClipEncoder | None = None
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


def _open_store(store_root: str, model, vae, plan: RunPlan, audio, s: SamplerSettings,
                lock_wait: float = 0.0) -> FrameStore:
    """The run's frame store: a new one, or the unfinished one of an identical earlier run."""
    clip = plan.clip_all if plan.clip_encoder is None else _encoder_id(plan.clip_encoder)
    assert plan.prompts is not None  # plan_run prepares them
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
    return store


class TalkWindowRunner(WindowRunner):
    """The InfiniteTalk hooks of the window recipe: reference-frame conditioning, audio, clean motion latents."""

    label = "WanVideo InfiniteTalk"
    unit = "window"
    carry_name = "motion_latent"  # what a window hands to the next, kept in the store's state

    def __init__(self, model, vae: VideoVAE, plan: RunPlan, audio, s: SamplerSettings, store: FrameStore, windows: list,
                 on_progress: Callable[[Progress], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 prepare_model: Callable[[tuple], None] | None = None, parallel=None):
        super().__init__(model, vae, s, store, windows, plan.total, plan.height, plan.width, on_progress,
                         should_stop, prepare_model, parallel)
        self.plan, self.audio = plan, audio
        device, source = self.device, plan.source
        self.color_ref = source.conditioning(0, plan.height, plan.width)[:, 0] if s.color_correction > 0 else None
        self.cache: dict = {}  # (frame index, window length) -> (y, clip): an image conditions every window the same way
        self.ctx_null_d = plan.ctx_null.to(device)
        self.ctx_d: dict = {}  # prompt index -> its embedding on the device
        self.masks_d = plan.masks.to(device) if plan.masks is not None else None
        if source.is_video and len(source) < plan.total:
            log.warning("WanVideo InfiniteTalk: the source video has %d frames for %d output frames; its last frame "
                        "conditions the rest", len(source), plan.total)

    def conditioning(self, window: Window, motion_latent):
        """The guidance passes, and the motion latent kept clean: the reference frame's latent for the first window,
        the previous window's last frames' after."""
        cond_pixels, y, clip_row = self.reference(window)
        if window.index == 0:
            motion_latent = self.vae_call(window, ENCODE, cond_pixels, 0).float()
        if motion_latent is None:
            raise InputError(f"cannot continue at window {window.index + 1}: the motion frames of the previous "
                             f"window are missing from {self.store.path}; delete that folder to start again")
        return self.passes(window, y, clip_row), motion_latent.to(self.device)

    def reference(self, window: Window):
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
            assert plan.clip_all is not None  # plan_run prepares the features when there is no encoder
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
        assert self.plan.prompts is not None  # plan_run prepares them
        index = self.plan.prompts.index_for(window.index)
        if index not in self.ctx_d:
            self.ctx_d[index] = self.plan.prompts.contexts[index].to(self.device)
        return self.ctx_d[index]

    def edit_region(self, window: Window, noise: torch.Tensor, solver: FlowSolver):
        """Face-only dubbing's blend and composite for this window (None: the whole frame is generated)."""
        if self.plan.edit is None:
            return None
        return self.plan.edit.window(window, noise, solver.timesteps_full / 1000.0,
                                     lambda pixels: self.vae_call(window, ENCODE, pixels, 0))

    def latent_shape(self, window: Window) -> tuple[int, int, int, int]:
        return (LATENT_CHANNELS, latent_frames(window.length), self.plan.lat_h, self.plan.lat_w)

    def guidance(self) -> tuple[float, float, bool]:
        return self.s.cfg, self.s.audio_cfg, self.plan.has_audio

    def postprocess(self, window: Window, video: torch.Tensor) -> torch.Tensor:
        """Colour correction toward the reference image."""
        if self.color_ref is None:
            return video
        return match_and_blend_colors(video, self.color_ref.to(video.device), self.s.color_correction)

    def next_carry(self, window: Window, video: torch.Tensor) -> torch.Tensor:
        """The next window's motion latent: its last `motion_frames` decoded frames, encoded."""
        return self.vae_call(window, ENCODE, video[:, -self.s.motion_frames:], self.s.steps).float()


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
