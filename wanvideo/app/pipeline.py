"""Files in, MP4 with sound out (`make_video_file`): the command line's pipeline, through the engine functions the
nodes call.

    audio files -> wanvideo.audio.build_audio_embeddings   (the audio embeds node)
    model files -> wanvideo.model.load_model               (the model loader node)
    image/video -> wanvideo.sampling.generate              (the sampler node: windows to a frame store)
    frame store -> wanvideo.video.write_video              (Video Combine: one MP4, H.264 + AAC)

Inside ComfyUI the host encodes the prompt (umt5) and the image (CLIP ViT-H) and runs the VAE; here
`wanvideo.app.encoders` and diffusers' AutoencoderKLWan do. With no model files given, an embedded tiny
random-weight set (`wanvideo.tiny`) runs instead: the picture is noise, the sound and timing are real.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio.settings import AudioSettings
from ..errors import InputError
from ..model.parallel.settings import MultiGPUSettings
from ..model.settings import LoaderSettings, SpeedSettings
from ..progress_log import logged_progress
from ..sampling.conditioning import ReferenceFrames
from ..sampling.edit_mask import check_edit_inputs
from ..sampling.face_box import face_models_for
from ..sampling.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT
from ..sampling.settings import SamplerSettings
from ..sampling.sizes import resolve_size
from ..sampling.vae import load_wan_vae
from ..sampling.window_prompts import split_prompts, stand_in_context
from ..torch_inputs import parse_device
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
from .media import IMAGE_EXTENSIONS, need_file, read_audio, read_image, read_video
from .model_files import ModelPaths, resolve_models
from .run_checks import check_model_headers, check_numbers, check_output, check_work_dir, checked_work_folder
from .window_executor import window_executor

log = logging.getLogger(__name__)

EMBEDDED_LONG_SIDE = 256  # the embedded set's automatic size: the image's aspect, this many pixels on the long side


# ----------------------------------------------------------------------------- requests


# Options the command line decides at run time when not given: the reference's values (SamplerSettings'
# defaults) with real weights, others for the tiny embedded set and for step-distillation LoRAs.
AUTO_SAMPLING = ("steps", "cfg", "audio_cfg")


@dataclass
class GenerateRequest:
    """One `python -m wanvideo generate` job. Option values live in the engine's settings objects."""

    audio: str
    output: str
    image: str | None = None
    video: str | None = None
    audio_2: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    edit_mask: str | None = None  # face-only dubbing: an image or a video of masks (white = may change)
    detection_dir: str | None = None  # face_only: the detector's folder (default: <models-dir>/detection, <models-dir>)
    steps: int | None = None  # None: see AUTO_SAMPLING
    cfg: float | None = None
    audio_cfg: float | None = None
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    audio_settings: AudioSettings = field(default_factory=AudioSettings)
    models: ModelPaths = field(default_factory=ModelPaths)
    device: str = "auto"
    sequence_parallel: str | None = None  # ulysses | ring: each window's tokens split across torchrun's ranks
    model_speed: SpeedSettings = field(default_factory=SpeedSettings)  # --compile, --fp8-matmul
    # --parallel guidance_split|layer_split|sequence_parallel --devices ... (None: one device)
    multi_gpu: MultiGPUSettings = field(default_factory=lambda: MultiGPUSettings(parallel=None))
    work_dir: str | None = None
    keep_parts: bool = False
    quiet: bool = False
    wait_for_lock: float = 0.0  # RunLockSettings: seconds to wait for another process on the same work folder

    @classmethod
    def from_args(cls, args) -> "GenerateRequest":
        models = model_paths_from_args(args, infinitetalk=args.infinitetalk, wav2vec=args.wav2vec)
        return cls(models=models, model_speed=settings_from_args(SpeedSettings, args),
                   multi_gpu=settings_from_args(MultiGPUSettings, args),
                   sampler=settings_from_args(SamplerSettings, args, skip=AUTO_SAMPLING),
                   loader=settings_from_args(LoaderSettings, args),
                   audio_settings=settings_from_args(AudioSettings, args), **plain_fields_from_args(cls, args))


# ----------------------------------------------------------------------------- the run


@dataclass
class _Models:
    dit: object
    vae: object
    wav2vec: object
    context: torch.Tensor | None
    context_null: torch.Tensor | None
    clip_fea: torch.Tensor | None
    embedded: bool


def _embedded_size(req: GenerateRequest, height: int, width: int) -> tuple[int, int]:
    if req.sampler.width and req.sampler.height:
        return req.sampler.width, req.sampler.height
    scale = EMBEDDED_LONG_SIDE / max(height, width)

    def snap(v):
        return max(16, int(round(v * scale / 16)) * 16)

    return snap(width), snap(height)


def _load_embedded(need_audio: bool, device) -> _Models:
    from ..tiny import tiny_models

    tiny = tiny_models(seed=0, device=device, audio_adapter=need_audio)
    return _Models(tiny.dit, tiny.vae, tiny.wav2vec, tiny.context, tiny.context_null, tiny.clip_fea, True)


def _encode_conditioning(req, files, device, frames, windows_starts, size):
    """Prompt and image features with the standalone encoders, each freed right after use."""
    from .encoders import load_clip_vision, load_text_encoder

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    log.info("encoding the prompt with %s", os.path.basename(files["text_encoder"]))
    text = load_text_encoder(files["text_encoder"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
                             device=device)
    # "a | b | c": one prompt per window (sampling/window_prompts.py)
    prompts = split_prompts(req.prompt) or [DEFAULT_PROMPT]
    context = [text.encode(p)[None] for p in prompts] if len(prompts) > 1 else text.encode(prompts[0])[None]
    # As the reference: an empty negative prompt means the InfiniteTalk config's default one.
    negative = req.negative_prompt or DEFAULT_NEGATIVE_PROMPT
    context_null = text.encode(negative)[None]
    del text
    free_memory(device)
    log.info("encoding the image with %s", os.path.basename(files["clip_vision"]))
    clip = load_clip_vision(files["clip_vision"], dtype=dtype, device=device)
    # As the reference: CLIP sees the frame the model is conditioned on (resized to cover and centre-cropped to
    # the output size). Dubbing: each window's own source frame; only those rows are used.
    source = ReferenceFrames(frames)
    height, width = size

    def encode(index, encoder=clip):
        pixels = ((source.conditioning(index, height, width)[:, 0] + 1.0) / 2.0).clamp(0.0, 1.0)
        return encoder.encode(pixels.permute(1, 2, 0).contiguous())

    if len(source) == 1:
        clip_fea = encode(0)[None]
    else:
        clip_fea = torch.zeros(len(source), 257, clip.dim)
        for start in windows_starts:
            index = min(start, len(source) - 1)
            clip_fea[index] = encode(index)
    del clip, encode
    free_memory(device)
    return context, context_null, clip_fea


def _load_dit(req, files, device):
    from ..model import load_model

    log.info("loading the video model: %s%s", os.path.basename(files["model"]),
             f" + {os.path.basename(files['infinitetalk'])}" if files["infinitetalk"] else "")
    # layer split / worker pool: the weights wait in RAM (no single card must hold them all)
    initial = torch.device("cpu") if req.multi_gpu.parallel in ("layer_split", "sequence_parallel") else None
    dit = load_model([files["model"]], device=device, infinitetalk=files["infinitetalk"], require_audio=True,
                     loras=list(req.models.loras), initial_device=initial, **req.loader.load_kwargs())
    return _speed_up(dit, req)


def _speed_up(dit, req: GenerateRequest):
    """--compile / --fp8-matmul on the loaded video model (a clear error where this machine cannot)."""
    req.model_speed.apply(dit)
    return dit


def load_video_model(req: GenerateRequest):
    """Only the DiT `make_video_file` would load for this request (what the other ranks of a multi-GPU run need)."""
    device = parse_device(req.device, "--device")
    if req.models.embedded:
        return _speed_up(_load_embedded(True, device).dit, req)
    return _load_dit(req, resolve_models(req.models, two_speakers=req.audio_2 is not None), device)


def _load_real(req, files, device, frames, window_starts, size) -> _Models:
    """Encoders first (and freed), then the video model and the VAE: one big model in memory at a time."""
    context, context_null, clip_fea = _encode_conditioning(req, files, device, frames, window_starts, size)
    dit = _load_dit(req, files, device)
    vae = load_wan_vae(files["vae"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32, device=device)
    return _Models(dit, vae, None, context, context_null, clip_fea, False)


def sampler_settings(req: GenerateRequest, embedded: bool, src_h: int, src_w: int) -> SamplerSettings:
    """The request's sampler settings with steps/cfg/audio_cfg decided when not given (AUTO_SAMPLING).

    Real weights: the reference's values (SamplerSettings' defaults), or with a LoRA the step-distillation ones
    the example workflows use. The embedded tiny set: 4 steps, no text guidance, a small size.
    """
    s = dataclasses.replace(req.sampler)
    reference = SamplerSettings()
    lora = bool(req.models.loras)
    if embedded:
        s.width, s.height = _embedded_size(req, src_h, src_w)
        s.steps = req.steps if req.steps is not None else 4
        s.cfg = 1.0 if req.cfg is None else req.cfg
    else:
        s.steps = req.steps if req.steps is not None else (6 if lora else reference.steps)
        s.cfg = req.cfg if req.cfg is not None else (1.0 if lora else reference.cfg)
    s.audio_cfg = req.audio_cfg if req.audio_cfg is not None else (3.0 if lora else reference.audio_cfg)
    return s


def make_video_file(req: GenerateRequest) -> GenerateResult:
    """Run the whole job; the MP4 is written to `req.output`. The work folder is held from the first check to the
    last file removed (another run of the same command waits, `--wait-for-lock`)."""
    work = checked_work_folder(req)
    with holding_work_folder(work, req.wait_for_lock, remove_when_empty=req.work_dir is None):
        return _make_video_file(req)


def _make_video_file(req: GenerateRequest) -> GenerateResult:
    from ..audio import build_audio_embeddings
    from ..sampling import generate as sample_video
    from ..sampling import plan_windows

    # Inputs first: every file problem is reported before any model is loaded.
    need_file(req.audio, "speech", "--audio")
    if req.audio_2:
        need_file(req.audio_2, "second speaker's speech", "--audio-2")
    if req.image:
        need_file(req.image, "portrait", "--image")
    else:
        need_file(req.video, "source video", "--video")
    if req.edit_mask:
        need_file(req.edit_mask, "edit mask", "--edit-mask")
    face_models = _face_models(req)  # face_only without the detector's files: named before any decoding
    output = check_output(req.output)
    work = req.work_dir or (output + ".parts")
    check_work_dir(work, "--work-dir" if req.work_dir else "the work folder (--work-dir)")
    check_numbers(req)
    prompts = split_prompts(req.prompt)  # an empty prompt between '|' is named before any work
    device = parse_device(req.device, "--device")
    two = req.audio_2 is not None
    embedded = req.models.embedded
    files = {} if embedded else resolve_models(req.models, two_speakers=two)
    check_model_headers(files, req.models.loras)  # a damaged file is named before any weights load

    wave_1, rate_1 = read_audio(req.audio, "--audio")
    wave_2, rate_2 = read_audio(req.audio_2, "--audio-2") if two else (None, None)
    if req.image:
        image = read_image(req.image)
        frames = image[None]
        src_h, src_w = image.shape[:2]
    else:
        video, _src_fps = read_video(req.video)
        frames = video
        src_h, src_w = video.shape[1:3]

    if embedded:
        print(EMBEDDED_NOTICE, file=sys.stderr)  # noqa: T201 - the CLI's user must see this even without logging
    settings = sampler_settings(req, embedded, src_h, src_w)
    edit_mask = read_edit_mask(req.edit_mask) if req.edit_mask else None
    check_edit_inputs(edit_mask, settings, ReferenceFrames(frames))  # before any model loads

    # Speech -> embeddings (the same engine function as the audio embeds node).
    if embedded:
        models = _load_embedded(True, device)
        _speed_up(models.dit, req)
    else:
        from ..audio import load_wav2vec

        models = None
        wav2vec = load_wav2vec(files["wav2vec"], dtype=torch.float32, device=device)
    encoder = models.wav2vec if models else wav2vec
    log.info("embedding the speech")
    embeds = build_audio_embeddings(encoder, wave_1, rate_1, wave_2, rate_2, mode=req.audio_settings.speaker_mode,
                                    fps=settings.fps, normalize_loudness=req.audio_settings.normalize_loudness,
                                    frame_limit=settings.max_frames, callback=logged_progress("embedding the speech"))
    total = embeds.num_frames
    if not embedded:
        del wav2vec
        free_memory(device)
        starts = [w.start for w in plan_windows(total, settings.frame_window, settings.motion_frames)]
        size = resolve_size(settings.width, settings.height, src_h, src_w, settings.size_bucket)
        models = _load_real(req, files, device, frames, starts, size)

    if embedded and prompts and len(prompts) > 1:
        # the tiny set has no text encoder: the first prompt keeps its stand-in, the others get one from their text
        models.context = [models.context if p == prompts[0] else stand_in_context(p, models.context)
                          for p in prompts]
    os.makedirs(work, exist_ok=True)
    bars = ProgressBars(req.quiet)

    def sample(dit):
        return sample_video(dit, models.vae, frames, models.clip_fea, audio=embeds, context=models.context,
                            context_null=models.context_null, settings=settings, store_root=work, on_progress=bars,
                            lock_wait=req.wait_for_lock, edit_mask=edit_mask, face_models=face_models,
                            parallel=window_executor(req, files, dit, work))

    try:
        if req.sequence_parallel:  # under torchrun: the other ranks run each DiT call with us (wanvideo.app.multi_gpu)
            from ..model.parallel.distributed import run_sequence_parallel

            store = run_sequence_parallel(models.dit, req.sequence_parallel, sample)
        else:
            store = sample(models.dit)
    finally:
        bars.close()

    # Sound: the speech file itself for one speaker (full quality); the embedded mix for two.
    if two:
        audio, rate = embeds.waveform.numpy(), embeds.sample_rate
    else:
        audio, rate = wave_1, rate_1
    return write_from_store(store, output, audio, rate, req, work, embedded)


def _face_models(req: GenerateRequest):
    """--face-only (without --edit-mask): the detector and pose model files, from --detection-dir or --models-dir as
    `animate-preprocess` finds them (a one-image input is refused as "for dubbing" first)."""
    if req.image:
        return None
    from .preprocess_job import detection_folders

    return face_models_for(req.edit_mask, req.sampler, detection_folders(req.detection_dir, req.models.models_dir))


def read_edit_mask(path: str) -> torch.Tensor:
    """--edit-mask: an image (one mask for every frame) or a video (one per frame) -> [N, H, W] in 0..1, white =
    may change."""
    from ..images import read_image_file

    if path.lower().endswith(IMAGE_EXTENSIONS):
        rgb = read_image_file(path, f"--edit-mask {path}")[None]
    else:
        import av

        try:
            with av.open(path) as container:
                if not container.streams.video:
                    raise InputError(f"--edit-mask {path}: neither an image nor a video")
                rgb = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
        except av.error.FFmpegError as exc:
            raise InputError(f"--edit-mask {path}: cannot decode it as an image or a video ({exc})") from None
        if not rgb:
            raise InputError(f"--edit-mask {path}: the video has no frames")
        rgb = np.stack(rgb)
    return torch.from_numpy(rgb.astype(np.float32).mean(-1) / 255.0)
