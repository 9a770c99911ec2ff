"""Files in, MP4 with sound out for WanAnimate (`make_animate_file`): the command line's `animate`, through the
engine functions the Animate sampler node calls.

    character image + pose/face (+ background/mask) videos -> wanvideo.sampling.animate.generate_animate
    frame store + the pose video's sound                    -> wanvideo.video.write_video (one MP4)

The output has the driving video's frame count and frame rate, and the pose video's sound when it has one.
With no model files given an embedded tiny random-weight WanAnimate set runs (noise pictures, real timing).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..model.settings import LoaderSettings, SpeedSettings
from ..sampling.animate_checks import check_driving_inputs, resample_to_rate
from ..sampling.animate_inputs import DrivingVideo
from ..sampling.animate_settings import AnimateSettings
from ..sampling.vae import load_wan_vae
from ..torch_inputs import parse_device
from ..validation import check_request
from ..video.work_folder import holding_work_folder
from .jobs import (
    EMBEDDED_NOTICE,
    GenerateResult,
    ProgressBars,
    free_memory,
    model_paths_from_args,
    plain_fields_from_args,
    settings_from_args,
    write_from_store,
)
from .media import need_file, read_audio, read_image, read_video
from .model_files import ModelPaths, resolve_models
from .run_checks import checked_work_folder

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "视频中的人在做动作"  # the official generate.py's prompt ("the person in the video is moving")
EMBEDDED_LONG_SIDE = 256


@dataclass
class AnimateRequest:
    """One `python -m wanvideo animate` job. Option values live in the engine's settings objects."""

    image: str
    pose_video: str
    face_video: str
    output: str
    background_video: str | None = None
    mask_video: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None  # None: 4 for the embedded set, 6 with a LoRA, else the engine's (the official 20)
    sampler: AnimateSettings = field(default_factory=AnimateSettings)  # size and fps: decided at run time
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    model_speed: SpeedSettings = field(default_factory=SpeedSettings)  # --compile, --fp8-matmul
    models: ModelPaths = field(default_factory=ModelPaths)
    device: str = "auto"
    work_dir: str | None = None
    keep_parts: bool = False
    quiet: bool = False
    wait_for_lock: float = 0.0  # RunLockSettings: seconds to wait for another process on the same work folder

    @classmethod
    def from_args(cls, args) -> "AnimateRequest":
        return cls(models=model_paths_from_args(args), sampler=settings_from_args(AnimateSettings, args, skip=("steps",)),
                   loader=settings_from_args(LoaderSettings, args), model_speed=settings_from_args(SpeedSettings, args),
                   **plain_fields_from_args(cls, args))


def _check_files(req: AnimateRequest) -> None:
    need_file(req.image, "character image", "--image")
    need_file(req.pose_video, "pose video", "--pose-video")
    need_file(req.face_video, "face video", "--face-video")
    if (req.background_video is None) != (req.mask_video is None):
        raise InputError("replacement needs both --background-video and --mask-video (animation: neither)")
    if req.background_video:
        need_file(req.background_video, "background video", "--background-video")
        need_file(req.mask_video, "person mask video", "--mask-video")
    out_dir = os.path.dirname(os.path.abspath(req.output))
    if not req.output.lower().endswith((".mp4", ".mkv", ".mov", ".webm")):
        raise InputError(f"--output {req.output}: give a video file name ending in .mp4")
    if not os.path.isdir(out_dir):
        raise InputError(f"--output {req.output}: the folder {out_dir} does not exist")


def _at_pose_rate(path: str, pose_fps: float, name: str):
    """A driving video's frames, resampled to the pose video's frame rate when its own differs."""
    frames, fps = read_video(path, f"--{name}-video")
    return resample_to_rate(frames, fps, pose_fps, name)


def _pose_sound(path: str):
    """(waveform, rate) of the pose video's sound, or (None, None) when it has none."""
    try:
        return read_audio(path, "--pose-video")
    except InputError as exc:
        log.info("no sound in the pose video (%s): the MP4 will be silent", exc)
        return None, None


def _embedded_size(req: AnimateRequest, height: int, width: int) -> tuple[int, int]:
    if req.sampler.width and req.sampler.height:
        return req.sampler.width, req.sampler.height
    scale = EMBEDDED_LONG_SIDE / max(height, width)
    snap = lambda v: max(16, int(round(v * scale / 16)) * 16)  # noqa: E731
    return snap(width), snap(height)


def _load_real(req: AnimateRequest, files: dict, device, image):
    """Encoders first (and freed), then the WanAnimate model and the VAE."""
    from ..model import load_model
    from .encoders import load_clip_vision, load_text_encoder

    text = load_text_encoder(files["text_encoder"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
                             device=device)
    context = text.encode(req.prompt if req.prompt is not None else DEFAULT_PROMPT)[None]
    context_null = text.encode(req.negative_prompt or "")[None] if req.sampler.cfg > 1 else None
    del text
    free_memory(device)
    clip = load_clip_vision(files["clip_vision"], dtype=torch.float16 if device.type == "cuda" else torch.float32,
                            device=device)
    clip_fea = clip.encode(image)[None]  # the letterboxed character image, as the official loop encodes it
    del clip
    free_memory(device)
    log.info("loading the video model: %s", os.path.basename(files["model"]))
    dit = load_model([files["model"]], device=device, loras=list(req.models.loras), **req.loader.load_kwargs())
    vae = load_wan_vae(files["vae"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32, device=device)
    return dit, vae, context, context_null, clip_fea


def make_animate_file(req: AnimateRequest) -> GenerateResult:
    """Run the whole WanAnimate job; the MP4 is written to `req.output` (the work folder held throughout, as
    `make_video_file` does)."""
    _check_files(req)
    work = checked_work_folder(req)
    with holding_work_folder(work, req.wait_for_lock, remove_when_empty=req.work_dir is None):
        return _make_animate_file(req)


def _make_animate_file(req: AnimateRequest) -> GenerateResult:
    from ..sampling.animate import generate_animate

    _check_files(req)
    # settings problems before any file is read or model loaded
    check_request(req)
    dataclasses.replace(req.sampler, steps=req.steps or 1).validated()
    req.loader.load_kwargs()
    device = parse_device(req.device, "--device")
    embedded = req.models.embedded
    files = {} if embedded else resolve_models(req.models, two_speakers=False, need_audio=False, model_kind="animate")
    image = read_image(req.image)
    pose, fps = read_video(req.pose_video, "--pose-video")
    face = _at_pose_rate(req.face_video, fps, "face")
    background = _at_pose_rate(req.background_video, fps, "background") if req.background_video else None
    mask = _at_pose_rate(req.mask_video, fps, "mask") if req.mask_video else None
    check_driving_inputs(image, {name: DrivingVideo(v, name) if v is not None else None for name, v in
                                 (("pose", pose), ("face", face), ("background", background), ("mask", mask))})
    sound, rate = _pose_sound(req.pose_video)

    if embedded:
        from ..tiny import tiny_animate_models

        print(EMBEDDED_NOTICE, file=sys.stderr)  # noqa: T201 - the CLI's user must see this even without logging
        tiny = tiny_animate_models(seed=0, device=device)
        dit, vae, context, context_null, clip_fea = tiny.dit, tiny.vae, tiny.context, tiny.context_null, tiny.clip_fea
        width, height = _embedded_size(req, pose.shape[1], pose.shape[2])
        steps = req.steps or 4
    else:
        from ..sampling.animate_inputs import letterbox, output_size

        out_h, out_w = output_size(DrivingVideo(pose, "pose"), req.sampler.width, req.sampler.height)
        boxed = letterbox(image.permute(2, 0, 1), out_h, out_w).permute(1, 2, 0)
        dit, vae, context, context_null, clip_fea = _load_real(req, files, device, boxed)
        width, height = req.sampler.width, req.sampler.height
        steps = req.steps or (6 if req.models.loras else AnimateSettings().steps)
    req.model_speed.apply(dit)  # a clear error where this machine cannot compile or multiply in fp8
    settings = dataclasses.replace(req.sampler, steps=steps, width=width, height=height, fps=fps)
    work = req.work_dir or (os.path.abspath(req.output) + ".parts")
    os.makedirs(work, exist_ok=True)
    bars = ProgressBars(req.quiet)
    try:
        store = generate_animate(dit, vae, image, clip_fea, pose, face, background=background, mask=mask,
                                 context=context, context_null=context_null, settings=settings, store_root=work,
                                 on_progress=bars, lock_wait=req.wait_for_lock)
    finally:
        bars.close()
    return write_from_store(store, req.output, sound, rate, req, work, embedded)
