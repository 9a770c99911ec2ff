"""Files in, MP4 with sound out for WanAnimate (`make_animate_file`): the command line's `animate`, through the
engine functions the Animate sampler node calls.

    character image + pose/face (+ background/mask) videos -> wanvideo.sampling.animate.generate_animate
    frame store + the pose video's sound                    -> wanvideo.video.write_video (one MP4)

The output has the driving video's frame count and frame rate, and the pose video's sound when it has one.
With no model files given an embedded tiny random-weight WanAnimate set runs (noise pictures, real timing).
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, fields

import torch

from .errors import InputError
from .media import need_file, read_audio, read_image, read_video
from .model_files import ModelPaths, resolve_models
from .pipeline import EMBEDDED_NOTICE, GenerateResult, _free, _parse_lora, _ProgressBars, write_from_store
from .sampling.vae import load_wan_vae
from .torch_inputs import parse_device

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "视频中的人在做动作"  # the official generate.py's prompt ("the person in the video is moving")
EMBEDDED_LONG_SIDE = 256


@dataclass
class AnimateRequest:
    image: str
    pose_video: str
    face_video: str
    output: str
    background_video: str | None = None
    mask_video: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    cfg: float = 1.0
    shift: float = 5.0
    scheduler: str = "unipc"
    seed: int = 42
    width: int = 0
    height: int = 0
    clip_len: int = 77
    refert_frames: int = 1
    max_frames: int = 0
    models: ModelPaths = field(default_factory=ModelPaths)
    device: str = "auto"
    dtype: str = "bf16"
    quantization: str = "keep_fp8"
    attention: str = "sdpa"
    blocks_to_swap: int = 0
    work_dir: str | None = None
    keep_parts: bool = False
    quiet: bool = False

    @classmethod
    def from_args(cls, args) -> "AnimateRequest":
        loras = [_parse_lora(item) for item in (args.lora or [])]
        models = ModelPaths(models_dir=args.models_dir, model=args.model, vae=args.vae, clip_vision=args.clip_vision,
                            text_encoder=args.text_encoder, loras=loras)
        names = {f.name for f in fields(cls)} - {"models"}
        return cls(models=models, **{n: getattr(args, n) for n in names if hasattr(args, n)})


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


def _pose_sound(path: str):
    """(waveform, rate) of the pose video's sound, or (None, None) when it has none."""
    try:
        return read_audio(path, "--pose-video")
    except InputError as exc:
        log.info("no sound in the pose video (%s): the MP4 will be silent", exc)
        return None, None


def _embedded_size(req: AnimateRequest, height: int, width: int) -> tuple[int, int]:
    if req.width and req.height:
        return req.width, req.height
    scale = EMBEDDED_LONG_SIDE / max(height, width)
    snap = lambda v: max(16, int(round(v * scale / 16)) * 16)  # noqa: E731
    return snap(width), snap(height)


def _load_real(req: AnimateRequest, files: dict, device, image):
    """Encoders first (and freed), then the WanAnimate model and the VAE."""
    from .encoders import load_clip_vision, load_text_encoder
    from .model import load_model

    text = load_text_encoder(files["text_encoder"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
                             device=device)
    context = text.encode(req.prompt if req.prompt is not None else DEFAULT_PROMPT)[None]
    context_null = text.encode(req.negative_prompt or "")[None] if req.cfg > 1 else None
    del text
    _free(device)
    clip = load_clip_vision(files["clip_vision"], dtype=torch.float16 if device.type == "cuda" else torch.float32,
                            device=device)
    clip_fea = clip.encode(image)[None]  # the letterboxed character image, as the official loop encodes it
    del clip
    _free(device)
    log.info("loading the video model: %s", os.path.basename(files["model"]))
    dit = load_model([files["model"]], dtype=req.dtype, device=device, keep_fp8=req.quantization == "keep_fp8",
                     quantize=req.quantization if req.quantization.startswith("fp8_") else None,
                     attention=req.attention, blocks_to_swap=req.blocks_to_swap, loras=list(req.models.loras))
    vae = load_wan_vae(files["vae"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32, device=device)
    return dit, vae, context, context_null, clip_fea


def make_animate_file(req: AnimateRequest) -> GenerateResult:
    """Run the whole WanAnimate job; the MP4 is written to `req.output`."""
    from .sampling.animate import AnimateSettings, generate_animate

    _check_files(req)
    # settings problems before any file is read or model loaded
    AnimateSettings(clip_len=req.clip_len, refert_frames=req.refert_frames, steps=req.steps or 1, shift=req.shift,
                    cfg=req.cfg, scheduler=req.scheduler, max_frames=req.max_frames).validated()
    device = parse_device(req.device, "--device")
    embedded = req.models.embedded
    files = {} if embedded else resolve_models(req.models, two_speakers=False, need_audio=False, model_kind="animate")
    image = read_image(req.image)
    pose, fps = read_video(req.pose_video)
    face, _ = read_video(req.face_video)
    background = read_video(req.background_video)[0] if req.background_video else None
    mask = read_video(req.mask_video)[0] if req.mask_video else None
    sound, rate = _pose_sound(req.pose_video)

    if embedded:
        from .tiny import tiny_animate_models

        print(EMBEDDED_NOTICE, file=sys.stderr)  # noqa: T201 - the CLI's user must see this even without logging
        tiny = tiny_animate_models(seed=0, device=device)
        dit, vae, context, context_null, clip_fea = tiny.dit, tiny.vae, tiny.context, tiny.context_null, tiny.clip_fea
        width, height = _embedded_size(req, pose.shape[1], pose.shape[2])
        steps = req.steps or 4
    else:
        from .sampling.animate_inputs import DrivingVideo, letterbox, output_size

        out_h, out_w = output_size(DrivingVideo(pose, "pose"), req.width, req.height)
        boxed = letterbox(image.permute(2, 0, 1), out_h, out_w).permute(1, 2, 0)
        dit, vae, context, context_null, clip_fea = _load_real(req, files, device, boxed)
        width, height, steps = req.width, req.height, req.steps or (6 if req.models.loras else 20)
    settings = AnimateSettings(clip_len=req.clip_len, refert_frames=req.refert_frames, steps=steps, shift=req.shift,
                               cfg=req.cfg, scheduler=req.scheduler, seed=req.seed, width=width, height=height,
                               fps=fps, max_frames=req.max_frames)
    work = req.work_dir or (os.path.abspath(req.output) + ".parts")
    os.makedirs(work, exist_ok=True)
    bars = _ProgressBars(req.quiet)
    try:
        store = generate_animate(dit, vae, image, clip_fea, pose, face, background=background, mask=mask,
                                 context=context, context_null=context_null, settings=settings, store_root=work,
                                 on_progress=bars)
    finally:
        bars.close()
    return write_from_store(store, req.output, sound, rate, req, work, embedded)
