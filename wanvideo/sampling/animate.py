"""WanAnimate on the window loop: the official `WanAnimate.generate` (Wan2.2 `wan/animate.py`) re-expressed as
model-specific conditioning for the one long-video loop (frame store on disk, resume, progress, flat memory).

Per clip (animate_clips.py gives the clips): the pose frames' VAE latent, the face crops in [-1, 1], and
`y` = [mask | latent] for the reference slot (ones | character image latent) followed by the clip part:
* animation: first clip the latent of a mid-grey video (zero pixels), mask 0; later clips the previous clip's
  last `refert` decoded frames then grey, mask 1 on those frames;
* replacement: the background video (later clips: refert frames, then background), mask = 1 − person mask
  (nearest-downsampled by 8, soft values kept), set to 1 on the refert frames.
Latent frame 0 of x is noise like the rest and the model denoises it; it is dropped before decoding. Guidance
(cfg > 1) adds a pass with the negative prompt and all −1 face pixels: uncond + cfg·(cond − uncond).
Speed (not in the official code, all optional): the two passes as one batched forward, the step cache
(TeaCache / MagCache with the Wan2.1 I2V 14B calibrations, see cache.py) and APG, as the InfiniteTalk loop.

Differences, on purpose: each clip's noise comes from its own seed (`window_noise`), so a resumed run equals an
uninterrupted one; every finished clip goes to disk with its refert frames; only the frames inside the driving
length are stored, so the output has exactly the driving video's frame count.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..contracts import ClipEncoder, VideoVAE
from ..errors import InputError
from ..video.frame_store import FrameStore
from .animate_checks import check_driving_inputs
from .animate_clips import padded_source_index, plan_clips
from .animate_inputs import DrivingVideo, check_face_video, driving_length, letterbox, output_size
from .animate_settings import AnimateSettings
from .conditioning import ReferenceFrames, prepare_clip, prepare_context
from .denoise import latent_frames
from .fingerprint import Digest, module_fingerprint
from .guidance import UNCOND, needed_passes
from .loop import WindowRunner, check_speed_options, run_job
from .settings import GenerationInterrupted, Progress, key_settings
from .vae import LATENT_CHANNELS, SPATIAL_STRIDE, TEMPORAL_STRIDE
from .vae_progress import ENCODE
from .windows import Window

log = logging.getLogger(__name__)

STORE_FORMAT_REVISION = 1  # bump when the WanAnimate loop's numbers change, so old stores are not resumed
CARRY = "refert_pixels"  # what a clip hands to the next (kept in the frame store for resuming)


@dataclass
class AnimatePlan:
    """Everything a WanAnimate run decides before its first clip."""

    reference: torch.Tensor  # [3, H, W] in [-1, 1], letterboxed to the output size
    videos: dict  # name -> DrivingVideo or None: pose, face, background, mask
    replace: bool
    real_len: int
    padded: list  # driving frame behind each padded frame
    clips: list  # Windows
    height: int
    width: int
    ctx: torch.Tensor
    ctx_null: torch.Tensor
    clip_fea: torch.Tensor
    pass_names: list
    face_size: int

    @property
    def lat_h(self) -> int:
        return self.height // SPATIAL_STRIDE

    @property
    def lat_w(self) -> int:
        return self.width // SPATIAL_STRIDE


def check_animate_model(model) -> dict:
    config = dict(getattr(model, "config", {}) or {})
    if config.get("model_type") != "animate":
        raise InputError(
            "this model is Wan2.1 I2V (+ InfiniteTalk), not Wan2.2-Animate: load Wan2.2-Animate-14B (e.g. "
            "Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors) in the model loader for the Animate sampler"
        )
    return config


def plan_animate(model, image, clip_fea, pose, face, background, mask, context, context_null,
                 s: AnimateSettings, clip_encoder=None) -> AnimatePlan:
    """Check the inputs against the model and decide size, length, clips and guidance passes.
    With `clip_encoder` the CLIP features are its encoding of the letterboxed character image (`clip_fea` unused)."""
    config = check_animate_model(model)
    if (background is None) != (mask is None):
        raise InputError("character replacement needs both the background video and the person mask video; "
                         "for animation leave both unconnected")
    pose_video, face_video = DrivingVideo(pose, "pose"), DrivingVideo(face, "face")
    videos = {"pose": pose_video, "face": face_video,
              "background": DrivingVideo(background, "background") if background is not None else None,
              "mask": DrivingVideo(mask, "mask") if mask is not None else None}
    check_driving_inputs(image, videos)  # disagreeing or broken inputs refused before any model call
    face_size = int(config["motion_encoder"]["size"])
    check_face_video(face_video, face_size)
    real_len = driving_length(videos)
    if s.max_frames:
        real_len = min(real_len, s.max_frames)
    clips, target = plan_clips(real_len, s.clip_len, s.refert_frames)
    height, width = output_size(pose_video, s.width, s.height)
    reference = letterbox(ReferenceFrames(image).rgb(0), height, width) * 2.0 - 1.0
    ctx = prepare_context(context, config["text_dim"], config["text_len"], "positive")
    ctx_null = prepare_context(context_null, config["text_dim"], config["text_len"], "negative")
    if clip_encoder is not None:
        clip_fea = encode_reference(clip_encoder, reference)
    clip_row = prepare_clip(clip_fea, config["clip_dim"], 1)
    # the uncond pass differs in its face pixels too, so identical prompts do not make it redundant
    pass_names = needed_passes(s.cfg, 1.0, False, same_text=False)
    return AnimatePlan(reference, videos, background is not None, real_len, padded_source_index(real_len, target),
                       clips, height, width, ctx, ctx_null, clip_row, pass_names, face_size)


def encode_reference(clip_encoder: ClipEncoder, reference: torch.Tensor) -> torch.Tensor:
    """[1, 257, clip_dim]: the CLIP features of the character image as the model sees it, letterboxed to the output
    size (the official loop encodes that image; the command line does the same)."""
    with torch.no_grad():
        features = clip_encoder(((reference.float() + 1.0) / 2.0).clamp(0.0, 1.0))
    return torch.as_tensor(features).float().cpu()


def i2v_mask(lat_t: int, lat_h: int, lat_w: int, given: int, pixel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """[4, lat_t, lat_h, lat_w]: the official `get_i2v_mask`. Per pixel frame 1 = given, 0 = generate (soft values
    of `pixel_mask` [T, lat_h, lat_w] kept); the first `given` frames set to 1; the first frame counted 4 times;
    4 consecutive pixel frames per latent frame."""
    frames = (lat_t - 1) * TEMPORAL_STRIDE + 1
    mask = torch.zeros(frames, lat_h, lat_w) if pixel_mask is None else pixel_mask.clone().float()
    mask[:given] = 1.0
    mask = torch.cat([mask[:1].repeat(TEMPORAL_STRIDE, 1, 1), mask[1:]], dim=0)
    return mask.view(lat_t, TEMPORAL_STRIDE, lat_h, lat_w).transpose(0, 1)


def latent_person_mask(mask: torch.Tensor) -> torch.Tensor:
    """[T, H, W] person mask (1 = person) -> [T, H/8, W/8] "given" mask 1 − person, nearest (pixel 8i, 8j)."""
    t, h, w = mask.shape
    return F.interpolate((1.0 - mask)[:, None], size=(h // SPATIAL_STRIDE, w // SPATIAL_STRIDE), mode="nearest")[:, 0]


class AnimateClipRunner(WindowRunner):
    """The WanAnimate hooks of the window recipe: reference slot, pose and face conditioning, refert frames."""

    label = "WanAnimate"
    unit = "clip"
    carry_name = CARRY
    schedule = "wan22"

    def __init__(self, model, vae: VideoVAE, plan: AnimatePlan, s: AnimateSettings, store: FrameStore, windows: list,
                 on_progress: Callable[[Progress], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 prepare_model: Callable[[tuple], None] | None = None, parallel=None):
        super().__init__(model, vae, s, store, windows, plan.real_len, plan.height, plan.width, on_progress,
                         should_stop, prepare_model, parallel)
        self.plan = plan
        self.ctx_d, self.ctx_null_d = plan.ctx.to(self.device), plan.ctx_null.to(self.device)
        self.clip_d = plan.clip_fea.to(self.device)
        self._y_ref: torch.Tensor | None = None

    def y_ref(self, window: Window) -> torch.Tensor:
        """[20, 1, h, w]: ones, then the character image's latent (the reference slot); computed once."""
        if self._y_ref is None:
            latent = self.vae_call(window, ENCODE, self.plan.reference[:, None], 0).float().cpu()
            self._y_ref = torch.cat([torch.ones(4, 1, self.plan.lat_h, self.plan.lat_w), latent], dim=0)
        return self._y_ref

    def y_clip(self, window: Window, indices: list, refert: torch.Tensor | None) -> torch.Tensor:
        """[20, lat_t, h, w]: the clip part of y (mask channels, then the conditioning video's latent)."""
        plan, given = self.plan, window.drop
        height, width, length = plan.height, plan.width, window.length
        lat_t = latent_frames(length)
        if given and refert is None:
            raise InputError(f"cannot continue at clip {window.index + 1}: the previous clip's frames are missing from "
                             f"{self.store.path}; delete that folder to start again")
        if plan.replace:
            video = plan.videos["background"].pixels(indices, height, width)
            pixel_mask = latent_person_mask(plan.videos["mask"].mask(indices, height, width))
        else:
            video = torch.zeros(3, length, height, width)
            pixel_mask = None
        if given:
            assert refert is not None  # checked above
            video[:, :given] = refert[:, :given].to(video)
        latent = self.vae_call(window, ENCODE, video, 0).float().cpu()
        del video
        return torch.cat([i2v_mask(lat_t, plan.lat_h, plan.lat_w, given, pixel_mask), latent], dim=0)

    def passes(self, y, pose_latents, faces) -> dict:
        passes = {}
        for name in self.plan.pass_names:
            uncond = name == UNCOND
            passes[name] = dict(context=self.ctx_null_d if uncond else self.ctx_d, clip_fea=self.clip_d, y=y,
                                pose_latents=pose_latents, face_pixel_values=faces * 0 - 1 if uncond else faces)
        return passes

    def conditioning(self, window: Window, refert):
        """The guidance passes; no latent frame is kept clean (the refert frames condition through `y`)."""
        plan = self.plan
        indices = plan.padded[window.start:window.end]
        y = torch.cat([self.y_ref(window), self.y_clip(window, indices, refert)], dim=1)[None].to(self.device)
        pose = plan.videos["pose"].pixels(indices, plan.height, plan.width)
        pose_latents = self.vae_call(window, ENCODE, pose, 0).float()[None].to(self.device)
        del pose
        faces = plan.videos["face"].pixels(indices, plan.face_size, plan.face_size)[None].to(self.device)
        no_clean_frames = torch.zeros(LATENT_CHANNELS, 0, plan.lat_h, plan.lat_w, device=self.device)
        return self.passes(y, pose_latents, faces), no_clean_frames

    def latent_shape(self, window: Window) -> tuple[int, int, int, int]:
        # one more latent frame than the clip: the reference slot in front, denoised like the rest
        return (LATENT_CHANNELS, latent_frames(window.length) + 1, self.plan.lat_h, self.plan.lat_w)

    def decode(self, window: Window, latent: torch.Tensor) -> torch.Tensor:
        return super().decode(window, latent[:, 1:])  # the reference slot is dropped

    def next_carry(self, window: Window, video: torch.Tensor) -> torch.Tensor:
        """The next clip's refert frames [3, refert, H, W]: this clip's last decoded frames."""
        return video[:, -self.s.refert_frames:].float().cpu()


def _run_key(model, vae, plan: AnimatePlan, s: AnimateSettings) -> str:
    """Digest of everything that decides the frames; equal digests mean a rerun may resume the store."""
    d = Digest()
    d.add("kind", "wananimate")
    d.add("revision", STORE_FORMAT_REVISION)
    settings = key_settings(s)  # speed options at their defaults leave the key as before they existed
    if s.vae_precision == AnimateSettings.vae_precision:
        settings.pop("vae_precision")  # likewise the VAE precision, added later
    d.add("settings", settings)
    d.add("size", [plan.real_len, plan.height, plan.width])
    d.add("model_config", {k: v for k, v in (getattr(model, "config", {}) or {}).items()})
    d.add("model_dtype", str(getattr(model, "compute_dtype", "")))
    d.add("model_weights", module_fingerprint(model) if isinstance(model, torch.nn.Module) else repr(model))
    d.add("vae", vae.fingerprint() if hasattr(vae, "fingerprint") else repr(vae))
    d.add("reference", plan.reference)
    for name, video in plan.videos.items():
        d.add(name, None if video is None else len(video))
        if video is not None:
            for i in range(min(len(video), plan.real_len)):
                d.add("frame", video.source.frames[i])  # as given (uint8 or float): no conversion needed to tell
    d.add("context", plan.ctx)
    d.add("context_null", plan.ctx_null)
    d.add("clip", plan.clip_fea)
    return d.hexdigest()[:32]


def generate_animate(
    model,
    vae,
    image,
    clip_fea,
    pose,
    face,
    *,
    background=None,
    mask=None,
    context=None,
    context_null=None,
    settings: AnimateSettings | None = None,
    store_root: str,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_window_done: Callable[[int, FrameStore], None] | None = None,
    prepare_model: Callable[[tuple], None] | None = None,
    clip_encoder: ClipEncoder | None = None,
    lock_wait: float = 0.0,
    parallel=None,
) -> FrameStore:
    """Animate `image` with the driving clip (pose + face videos), or replace the person in it (+ background and
    mask videos), into a FrameStore under `store_root` of exactly the driving length (resuming a matching
    unfinished store). Frames: anything indexable of H×W×C (IMAGE batches in 0..1, uint8 arrays).
    prepare_model: called with each clip's latent shape [1, 16, T, h, w] before its denoising (a host loads the
    weights there, see talk.generate).
    clip_encoder: optional CLIP ViT-H image encoder, pixels [3, H, W] in 0..1 -> [257, clip_dim] (or [1, 257, ...]).
    Given, the CLIP features come from the letterboxed character image, as in the official loop, and `clip_fea`
    is not used.
    lock_wait: seconds to wait for another process working in the same store.
    parallel: where each clip's model calls run (see talk.generate)."""
    s = (settings or AnimateSettings()).validated()
    plan = plan_animate(model, image, clip_fea, pose, face, background, mask, context, context_null, s, clip_encoder)
    check_speed_options(model, s)
    store = FrameStore.open_for_run(
        store_root, _run_key(model, vae, plan, s), width=plan.width, height=plan.height, fps=s.fps,
        total_frames=plan.real_len, num_windows=len(plan.clips),
        info=dict(mode="wananimate-" + ("replace" if plan.replace else "animate"), settings=vars(s),
                  passes=plan.pass_names),
        lock_wait=lock_wait,
    )
    runner_args = dict(model=model, vae=vae, plan=plan, s=s, windows=plan.clips, on_progress=on_progress,
                       should_stop=should_stop, prepare_model=prepare_model, parallel=parallel)
    return run_job(store, AnimateClipRunner, runner_args, on_window_done=on_window_done,
                   vae_precision=s.vae_precision)


__all__ = ["AnimatePlan", "AnimateSettings", "GenerationInterrupted", "generate_animate", "i2v_mask", "plan_animate"]
