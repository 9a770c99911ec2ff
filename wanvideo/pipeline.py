"""Files in, MP4 with sound out: the command line's pipeline, through the engine functions the nodes call.

    audio files -> wanvideo.audio.build_audio_embeddings   (the audio embeds node)
    model files -> wanvideo.model.load_model               (the model loader node)
    image/video -> wanvideo.sampling.generate              (the sampler node: windows to a frame store)
    frame store -> wanvideo.video.write_video              (Video Combine: one MP4, H.264 + AAC)

Inside ComfyUI the host encodes the prompt (umt5) and the image (CLIP ViT-H) and runs the VAE; here
`wanvideo.encoders` and diffusers' AutoencoderKLWan do. With no model files given, an embedded tiny
random-weight set (`wanvideo.tiny`) runs instead: the picture is noise, the sound and timing are real.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field, fields
from fractions import Fraction

import numpy as np
import torch

from .errors import InputError, ModelFileError

log = logging.getLogger("wanvideo")

# The reference's default prompts (InfiniteTalk examples / Wan's negative prompt, in its original Chinese).
DEFAULT_PROMPT = "A person is talking to the camera with natural facial expressions and clear lip movements."
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走"
)
EMBEDDED_NOTICE = ("Using the embedded tiny random-weight model set (no model files given): the picture will be "
                   "noise; the sound and the timing are real.")
EMBEDDED_LONG_SIDE = 256  # the embedded set's automatic size: the image's aspect, this many pixels on the long side

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MODEL_EXTENSIONS = (".safetensors", ".sft", ".pt", ".pth", ".bin", ".ckpt")


# ----------------------------------------------------------------------------- requests


@dataclass
class ModelPaths:
    models_dir: str | None = None
    model: str | None = None
    infinitetalk: str | None = None
    wav2vec: str | None = None
    vae: str | None = None
    clip_vision: str | None = None
    text_encoder: str | None = None
    loras: list = field(default_factory=list)  # [(path, strength)]

    FILES = ("model", "infinitetalk", "wav2vec", "vae", "clip_vision", "text_encoder")

    @property
    def embedded(self) -> bool:
        return self.models_dir is None and not self.loras and all(getattr(self, f) is None for f in self.FILES)


@dataclass
class GenerateRequest:
    audio: str
    output: str
    image: str | None = None
    video: str | None = None
    audio_2: str | None = None
    speaker_mode: str = "para"
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    cfg: float | None = None
    audio_cfg: float | None = None
    shift: float | None = None
    scheduler: str = "euler"
    seed: int = 42
    width: int = 0
    height: int = 0
    size: str = "480p"
    frame_window: int = 81
    motion_frames: int = 9
    max_frames: int = 0
    fps: float = 25.0
    color_correction: float = 1.0
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
    def from_args(cls, args) -> "GenerateRequest":
        loras = [_parse_lora(item) for item in (args.lora or [])]
        models = ModelPaths(models_dir=args.models_dir, model=args.model, infinitetalk=args.infinitetalk,
                            wav2vec=args.wav2vec, vae=args.vae, clip_vision=args.clip_vision,
                            text_encoder=args.text_encoder, loras=loras)
        names = {f.name for f in fields(cls)} - {"models"}
        values = {n: getattr(args, n) for n in names if hasattr(args, n)}
        return cls(models=models, **values)


@dataclass
class GenerateResult:
    path: str
    frames: int
    fps: float
    embedded: bool

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def _parse_lora(item: str):
    path, strength = item, 1.0
    head, sep, tail = item.rpartition(":")
    if sep and head and not os.path.exists(item):
        try:
            path, strength = head, float(tail)
        except ValueError:
            pass
    return path, strength


# ----------------------------------------------------------------------------- media files


def _need_file(path: str | None, what: str, option: str) -> str:
    if not path:
        raise InputError(f"{option}: no {what} given")
    if not os.path.isfile(path):
        raise InputError(f"{option} {path}: file not found (the {what})")
    return path


def read_image(path: str) -> torch.Tensor:
    """[H, W, 3] float32 in 0..1 (EXIF rotation applied, alpha dropped)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"--image {path}: not an image PIL can read ({exc}); use a PNG, JPEG or WebP file") from None


def read_audio(path: str, option: str = "--audio") -> tuple[np.ndarray, int]:
    """([channels, samples] float32, sample_rate) of the first audio stream of any file ffmpeg reads."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise InputError(f"{option} {path}: the file has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            chunks = []
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                channels = len(frame.layout.channels)
                if arr.shape[0] != channels:  # packed sample format: interleaved
                    arr = arr.reshape(-1, channels).T
                if arr.dtype.kind == "i":  # signed PCM -> [-1, 1)
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
                elif arr.dtype.kind == "u":  # unsigned 8-bit PCM is centred on 128
                    half = float(np.iinfo(arr.dtype).max + 1) / 2
                    arr = (arr.astype(np.float32) - half) / half
                chunks.append(arr.astype(np.float32))
    except av.error.FFmpegError as exc:
        raise InputError(f"{option} {path}: cannot decode the audio ({exc})") from None
    if not chunks:
        raise InputError(f"{option} {path}: the audio stream is empty")
    return np.concatenate(chunks, axis=1), int(rate)


def read_video(path: str) -> tuple[np.ndarray, float]:
    """(frames [N, H, W, 3] uint8, fps) of the first video stream."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(f"--video {path}: the file has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or Fraction(25))
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise InputError(f"--video {path}: cannot decode the video ({exc})") from None
    if not frames:
        raise InputError(f"--video {path}: the video has no frames")
    return np.stack(frames), fps


# ----------------------------------------------------------------------------- model files


FOLDERS = {
    "model": ("diffusion_models", "unet"),
    "infinitetalk": ("diffusion_models", "model_patches", "unet"),
    "wav2vec": ("wav2vec2", "audio_encoders"),
    "vae": ("vae",),
    "clip_vision": ("clip_vision",),
    "text_encoder": ("text_encoders", "clip"),
}
WHAT = {
    "model": "Wan2.1 I2V 14B (e.g. wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors)",
    "infinitetalk": "InfiniteTalk (e.g. Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors)",
    "wav2vec": "wav2vec2 (e.g. wav2vec2-chinese-base_fp16.safetensors or a chinese-wav2vec2-base folder)",
    "vae": "Wan 2.1 VAE (wan_2.1_vae.safetensors)",
    "clip_vision": "CLIP ViT-H/14 (clip_vision_h.safetensors)",
    "text_encoder": "umt5-xxl (umt5_xxl_fp8_e4m3fn_scaled.safetensors)",
}


def _candidates(models_dir: str, kind: str) -> list[str]:
    found = []
    for folder in FOLDERS[kind]:
        root = os.path.join(models_dir, folder)
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if kind == "wav2vec" and "config.json" in filenames and dirpath != root:
                found.append(dirpath)  # a Hugging Face folder
                dirnames[:] = []
                continue
            for name in sorted(filenames):
                if name.lower().endswith(MODEL_EXTENSIONS):
                    found.append(os.path.join(dirpath, name))
    return found


def _matches(kind: str, path: str, two_speakers: bool) -> int:
    """Preference score of a candidate (0 = not this kind of model)."""
    name = os.path.basename(path).lower().replace("-", "_")
    if kind == "model":
        return 2 if "i2v" in name and "infinitetalk" not in name and "2.2" not in name and "2_2" not in name else 0
    if kind == "infinitetalk":
        if "infinitetalk" not in name:
            return 0
        return 3 if ("multi" in name) == two_speakers else 1
    if kind == "wav2vec":
        return 2 if "wav2vec" in name else 0
    if kind == "vae":
        if "wan" not in name or "2.2" in name or "2_2" in name:
            return 0
        return 2
    if kind == "clip_vision":
        return 2 if "clip_vision_h" in name or "vit_h" in name or "vit-h" in name else 1
    if kind == "text_encoder":
        return 2 if "umt5" in name else 0
    return 0


def resolve_models(paths: ModelPaths, two_speakers: bool, need_audio: bool = True) -> dict:
    """{kind: path} for every model the run needs: given paths first, then a search of --models-dir."""
    out = {}
    kinds = [k for k in ModelPaths.FILES if need_audio or k not in ("infinitetalk", "wav2vec")]
    for kind in kinds:
        given = getattr(paths, kind)
        if kind == "infinitetalk" and given == "none":
            out[kind] = None  # the model file holds the InfiniteTalk weights itself (a combined file)
            continue
        if given:
            if not os.path.exists(given):
                raise InputError(f"--{kind.replace('_', '-')} {given}: not found (the {WHAT[kind]})")
            out[kind] = given
            continue
        if not paths.models_dir:
            raise InputError(f"--{kind.replace('_', '-')} is missing: give the {WHAT[kind]}, or --models-dir "
                             "with your ComfyUI models folder (or no model options at all for the embedded demo)")
        if not os.path.isdir(paths.models_dir):
            raise InputError(f"--models-dir {paths.models_dir}: not a folder")
        scored = [(_matches(kind, p, two_speakers), p) for p in _candidates(paths.models_dir, kind)]
        scored = [sp for sp in scored if sp[0] > 0]
        if not scored:
            folders = " or ".join(f"{paths.models_dir}/{f}/" for f in FOLDERS[kind])
            raise InputError(f"no {WHAT[kind]} found in {folders}: download it there (see README, "
                             f"'Model files'), or give --{kind.replace('_', '-')}")
        best = max(s for s, _ in scored)
        top = [p for s, p in scored if s == best]
        if len(top) > 1:
            listing = "\n  ".join(top)
            raise InputError(f"several {WHAT[kind]} candidates in {paths.models_dir}; choose one with "
                             f"--{kind.replace('_', '-')}:\n  {listing}")
        out[kind] = top[0]
    for path, _ in paths.loras:
        if not os.path.isfile(path):
            raise InputError(f"--lora {path}: file not found")
    return out


def load_wan_vae(path: str, dtype=torch.float32, device="cpu"):
    """The Wan 2.1 VAE from its original single file (ComfyUI's wan_2.1_vae.safetensors), via diffusers."""
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
    from safetensors.torch import load_file

    from .sampling import DiffusersWanVAE

    try:
        sd = load_file(path) if path.endswith((".safetensors", ".sft")) else torch.load(path, map_location="cpu",
                                                                                     weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any read failure: name the file
        raise ModelFileError(f"cannot read the VAE {path}: {exc}; re-download it") from None
    if "decoder.middle.0.residual.0.gamma" not in sd and "decoder.mid_block.resnets.0.norm1.gamma" not in sd:
        raise ModelFileError(f"{os.path.basename(path)} is not a Wan 2.1 VAE; use wan_2.1_vae.safetensors "
                             "(Comfy-Org/Wan_2.1_ComfyUI_repackaged, split_files/vae)")
    if "decoder.middle.0.residual.0.gamma" in sd:
        sd = convert_wan_vae_to_diffusers(sd)
    with torch.device("meta"):
        vae = AutoencoderKLWan()
    try:
        vae.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{os.path.basename(path)} does not fit the Wan 2.1 VAE ({str(exc)[:300]}); "
                             "the Wan 2.2 VAE is not the one InfiniteTalk uses") from None
    return DiffusersWanVAE(vae.float(), device=device, dtype=dtype)


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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name}: not a device name (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: this torch has no CUDA device; use --device cpu")
    return device


def _embedded_size(req: GenerateRequest, height: int, width: int) -> tuple[int, int]:
    if req.width and req.height:
        return req.width, req.height
    scale = EMBEDDED_LONG_SIDE / max(height, width)
    snap = lambda v: max(16, int(round(v * scale / 16)) * 16)  # noqa: E731
    return snap(width), snap(height)


def _load_embedded(need_audio: bool, device) -> _Models:
    from .tiny import tiny_models

    tiny = tiny_models(seed=0, device=device, audio_adapter=need_audio)
    return _Models(tiny.dit, tiny.vae, tiny.wav2vec, tiny.context, tiny.context_null, tiny.clip_fea, True)


def _encode_conditioning(req, files, device, frames, windows_starts):
    """Prompt and image features with the standalone encoders, each freed right after use."""
    from .encoders import load_clip_vision, load_text_encoder

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    log.info("encoding the prompt with %s", os.path.basename(files["text_encoder"]))
    text = load_text_encoder(files["text_encoder"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
                             device=device)
    context = text.encode(req.prompt if req.prompt is not None else DEFAULT_PROMPT)[None]
    negative = req.negative_prompt if req.negative_prompt is not None else DEFAULT_NEGATIVE_PROMPT
    context_null = text.encode(negative)[None]
    del text
    _free(device)
    log.info("encoding the image with %s", os.path.basename(files["clip_vision"]))
    clip = load_clip_vision(files["clip_vision"], dtype=dtype, device=device)
    if len(frames) == 1:
        clip_fea = clip.encode(_as_float_image(frames[0]))[None]
    else:
        # Dubbing: each window is conditioned on the source frame at its start; only those rows are used.
        clip_fea = torch.zeros(len(frames), 257, clip.dim)
        for start in windows_starts:
            index = min(start, len(frames) - 1)
            clip_fea[index] = clip.encode(_as_float_image(frames[index]))
    del clip
    _free(device)
    return context, context_null, clip_fea


def _as_float_image(frame) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(frame))
    return tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()


def _free(device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _load_real(req, files, device, frames, window_starts) -> _Models:
    """Encoders first (and freed), then the video model and the VAE: one big model in memory at a time."""
    from .model import load_model

    context, context_null, clip_fea = _encode_conditioning(req, files, device, frames, window_starts)
    log.info("loading the video model: %s%s", os.path.basename(files["model"]),
             f" + {os.path.basename(files['infinitetalk'])}" if files["infinitetalk"] else "")
    dit = load_model([files["model"]], dtype=req.dtype, device=device, infinitetalk=files["infinitetalk"],
                     require_audio=True,
                     keep_fp8=req.quantization == "keep_fp8",
                     quantize=req.quantization if req.quantization.startswith("fp8_") else None,
                     attention=req.attention, blocks_to_swap=req.blocks_to_swap, loras=list(req.models.loras))
    vae = load_wan_vae(files["vae"], dtype=torch.bfloat16 if device.type == "cuda" else torch.float32, device=device)
    return _Models(dit, vae, None, context, context_null, clip_fea, False)


class _ProgressBars:
    """tqdm bar per run: one tick per denoising step, the description says the window."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def __call__(self, p) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=p.windows * p.steps, initial=p.resumed * p.steps, unit="step",
                            desc="window", file=sys.stderr, dynamic_ncols=True)
        self.bar.set_description(f"window {p.window}/{p.windows}")
        self.bar.n = (p.window - 1) * p.steps + p.step
        self.bar.set_postfix_str(f"step {p.step}/{p.steps}", refresh=False)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def generate(req: GenerateRequest) -> GenerateResult:
    """Run the whole job; the MP4 is written to `req.output`."""
    from .audio import build_audio_embeddings
    from .sampling import SamplerSettings, plan_windows
    from .sampling import generate as sample_video
    from .video import write_video

    # Inputs first: every file problem is reported before any model is loaded.
    _need_file(req.audio, "speech", "--audio")
    if req.audio_2:
        _need_file(req.audio_2, "second speaker's speech", "--audio-2")
    if req.image:
        _need_file(req.image, "portrait", "--image")
    else:
        _need_file(req.video, "source video", "--video")
    out_dir = os.path.dirname(os.path.abspath(req.output))
    if not req.output.lower().endswith((".mp4", ".mkv", ".mov", ".webm")):
        raise InputError(f"--output {req.output}: give a video file name ending in .mp4")
    if not os.path.isdir(out_dir):
        raise InputError(f"--output {req.output}: the folder {out_dir} does not exist")
    device = _device(req.device)
    two = req.audio_2 is not None
    embedded = req.models.embedded
    files = {} if embedded else resolve_models(req.models, two_speakers=two)

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

    lora = bool(req.models.loras)
    if embedded:
        print(EMBEDDED_NOTICE, file=sys.stderr)  # noqa: T201 - the CLI's user must see this even without logging
        width, height = _embedded_size(req, src_h, src_w)
        steps = req.steps or 4
        cfg = 1.0 if req.cfg is None else req.cfg
    else:
        width, height = req.width, req.height
        steps = req.steps or (6 if lora else 40)
        cfg = req.cfg if req.cfg is not None else (1.0 if lora else 5.0)
    # The same defaults as the example workflows: the reference's, or the step-distillation LoRA ones.
    audio_cfg = req.audio_cfg if req.audio_cfg is not None else (3.0 if lora else 4.0)
    shift = req.shift if req.shift is not None else (11.0 if req.size == "720p" else 7.0)

    # Speech -> embeddings (the same engine function as the audio embeds node).
    if embedded:
        models = _load_embedded(True, device)
    else:
        from .audio import load_wav2vec

        models = None
        wav2vec = load_wav2vec(files["wav2vec"], dtype=torch.float32, device=device)
    encoder = models.wav2vec if models else wav2vec
    log.info("embedding the speech")
    embeds = build_audio_embeddings(encoder, wave_1, rate_1, wave_2, rate_2, mode=req.speaker_mode, fps=req.fps,
                                    frame_limit=req.max_frames)
    total = embeds.num_frames
    if not embedded:
        del wav2vec
        _free(device)
        starts = [w.start for w in plan_windows(total, req.frame_window, req.motion_frames)]
        models = _load_real(req, files, device, frames, starts)

    settings = SamplerSettings(frame_window=req.frame_window, motion_frames=req.motion_frames, steps=steps,
                               shift=shift, cfg=cfg, audio_cfg=audio_cfg, scheduler=req.scheduler, seed=req.seed,
                               color_correction=req.color_correction, max_frames=req.max_frames, width=width,
                               height=height, size_bucket=req.size, fps=req.fps)
    work = req.work_dir or (os.path.abspath(req.output) + ".parts")
    os.makedirs(work, exist_ok=True)
    bars = _ProgressBars(req.quiet)
    try:
        store = sample_video(models.dit, models.vae, frames, models.clip_fea, audio=embeds, context=models.context,
                             context_null=models.context_null, settings=settings, store_root=work,
                             on_progress=bars)
    finally:
        bars.close()

    # Sound: the speech file itself for one speaker (full quality); the embedded mix for two.
    if two:
        audio, rate = embeds.waveform.numpy(), embeds.sample_rate
    else:
        audio, rate = wave_1, rate_1
    log.info("writing %s", req.output)
    path = write_video(store.iter_frames(), req.output, store.fps, audio=audio, sample_rate=rate)
    result = GenerateResult(path=str(path), frames=len(store), fps=float(store.fps), embedded=embedded)
    if not req.keep_parts:
        # The MP4 is written: the finished windows are no longer needed for a resume.
        shutil.rmtree(store.path, ignore_errors=True)
        if req.work_dir is None and os.path.isdir(work) and not os.listdir(work):
            os.rmdir(work)
    return result


# ----------------------------------------------------------------------------- tiny files


def write_tiny_models(models_dir: str, clip_dim: int | None = None, text_dim: int | None = None) -> dict:
    """Write the tiny random-weight DiT (+ InfiniteTalk) and wav2vec2 in ComfyUI's models/ layout.

    Returns the file names to select in the loaders and the tiny model's text/image widths.
    """
    from safetensors.torch import save_file

    from .audio import tiny_wav2vec2
    from .model import build_model, tiny_config

    overrides = {}
    if clip_dim:
        overrides["clip_dim"] = int(clip_dim)
    if text_dim:
        overrides["text_dim"] = int(text_dim)
    config = tiny_config(**overrides)
    torch.manual_seed(0)
    dit = build_model(config, dtype=torch.float32, device="cpu")
    sd = {k: v.contiguous() for k, v in dit.state_dict().items()}
    # Sizes the weights cannot tell (heads, text length, wav2vec layers x channels) travel in the metadata,
    # the way the reference fixtures carry their constructor arguments. Two files: the Wan model with the
    # InfiniteTalk weights in it (a "combined" file), and the plain Wan model (for image-to-video without audio).
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()
              if k not in ("clip_dim", "audio_layers", "audio_channels", "audio_adapter")}

    def meta(audio_adapter):
        return {"config": json.dumps({"model_kwargs": dict(kwargs, audio_adapter=audio_adapter),
                                      "clip_dim": config["clip_dim"],
                                      "audio_proj": {"blocks": config["audio_layers"],
                                                     "channels": config["audio_channels"]}})}

    dm = os.path.join(models_dir, "diffusion_models")
    os.makedirs(dm, exist_ok=True)
    names = {"model": "wan2.1_i2v_infinitetalk_tiny_random.safetensors",
             "model_no_audio": "wan2.1_i2v_tiny_random.safetensors"}
    save_file(sd, os.path.join(dm, names["model"]), metadata=meta(True))
    save_file({k: v for k, v in sd.items() if not _is_adapter_key(k)}, os.path.join(dm, names["model_no_audio"]),
              metadata=meta(False))
    # wav2vec2 as a Hugging Face folder (config.json + model.safetensors), as users keep chinese-wav2vec2-base.
    names["wav2vec"] = "tiny-wav2vec2-random"
    tiny_wav2vec2(seed=0).model.save_pretrained(os.path.join(models_dir, "wav2vec2", names["wav2vec"]),
                                                safe_serialization=True)
    names["text_dim"] = config["text_dim"]
    names["clip_dim"] = config["clip_dim"]
    return names


def _is_adapter_key(key: str) -> bool:
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key or ".norm_x." in key

