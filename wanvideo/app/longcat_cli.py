"""`python -m wanvideo longcat`: portrait + speech -> MP4 with LongCat-Video-Avatar 1.5, through the engine
functions the LongCat nodes call (Whisper features, the segment loop, Video Combine's writer).

With no model files it runs an embedded tiny random-weight LongCat set (noise pictures, real timing and sound).
Real weights: --model (the official base_model folder or a single-file repack), --lora (lora/dmd_lora.safetensors
for the distilled default), --whisper (whisper-large-v3 folder), --vae (Wan2.1 VAE), --text-encoder (UMT5-XXL).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass, field

import torch

from ..audio.settings import AudioSettings
from ..errors import InputError
from ..options import LongCatSettings, add_argument, add_arguments, option_values
from ..sampling.prompts import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT
from ..torch_inputs import parse_device
from .media import need_file, read_audio, read_image

log = logging.getLogger(__name__)

# The official avatar demos' negative prompt (InfiniteTalk's list with "Close-up" in front).
LONGCAT_NEGATIVE_PROMPT = "Close-up, Bright" + DEFAULT_NEGATIVE_PROMPT[len("bright"):]
MAX_TEXT_TOKENS = 512  # the official max_sequence_length
EMBEDDED_SIZE = (80, 144)  # (height, width) of the embedded demo: the 480x832 bucket's shape, small
MODEL_FLAGS = ("model", "whisper", "vae", "text_encoder")


def add_longcat_parser(sub) -> None:
    p = sub.add_parser("longcat", help="LongCat-Video-Avatar 1.5: a talking video with sound (one or two speakers)",
                       description=__doc__.split("\n\n")[0])
    src = p.add_argument_group("inputs")
    src.add_argument("--image", required=True, help="portrait (png/jpg/webp) that will talk")
    src.add_argument("--audio", required=True, help="speech (any file ffmpeg reads)")
    src.add_argument("--audio-2", help="speech of a second person (left: --audio, right: --audio-2)")
    add_argument(src, AudioSettings, "speaker_mode")
    src.add_argument("--output", required=True, help="the MP4 to write")
    src.add_argument("--prompt", default=None, help="what the video shows")
    src.add_argument("--negative-prompt", default=None, help="what to avoid (default: the official demos' list)")
    s = p.add_argument_group("sampling (defaults: the official v1.5 demo's)")
    add_arguments(s, LongCatSettings)
    m = p.add_argument_group("models (none given: the embedded tiny random-weight set)")
    m.add_argument("--model", help="LongCat-Video-Avatar DiT: the base_model folder (config.json + shards), its "
                   "INT8 folder, or a single-file repack")
    m.add_argument("--lora", help="distillation LoRA (lora/dmd_lora.safetensors), merged at strength 1")
    m.add_argument("--whisper", help="whisper-large-v3 folder")
    m.add_argument("--vae", help="Wan2.1 VAE (wan_2.1_vae.safetensors)")
    m.add_argument("--text-encoder", help="UMT5-XXL (umt5_xxl_*.safetensors or a Hugging Face folder)")
    m.add_argument("--device", default="auto", help="cuda, cpu or auto")
    o = p.add_argument_group("other")
    o.add_argument("--work-dir", help="where finished segments are kept (default: <output>.parts/); a rerun "
                   "with the same inputs resumes there")
    o.add_argument("--keep-parts", action="store_true", help="keep the finished segments after the MP4 is written")
    o.add_argument("--quiet", action="store_true", help="no progress bars")


@dataclass
class LongCatRequest:
    image: str
    audio: str
    output: str
    audio_2: str | None = None
    speaker_mode: str = "para"
    prompt: str | None = None
    negative_prompt: str | None = None
    sampler: LongCatSettings = field(default_factory=LongCatSettings)
    model: str | None = None
    lora: str | None = None
    whisper: str | None = None
    vae: str | None = None
    text_encoder: str | None = None
    device: str = "auto"
    work_dir: str | None = None
    keep_parts: bool = False
    quiet: bool = False

    @classmethod
    def from_args(cls, args) -> "LongCatRequest":
        values = vars(args)
        plain = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values and f.name != "sampler"}
        return cls(sampler=LongCatSettings(**option_values(LongCatSettings, values)), **plain)

    @property
    def embedded(self) -> bool:
        return not any(getattr(self, name) for name in MODEL_FLAGS)


def _check(req: LongCatRequest) -> None:
    need_file(req.image, "portrait", "--image")
    need_file(req.audio, "speech", "--audio")
    if req.audio_2:
        need_file(req.audio_2, "second speech", "--audio-2")
    if not req.embedded:
        missing = [f"--{n.replace('_', '-')}" for n in MODEL_FLAGS if not getattr(req, n)]
        if missing:
            raise InputError(f"real LongCat weights need all of --model --whisper --vae --text-encoder (missing "
                             f"{' '.join(missing)}), or none of them for the embedded tiny set")
    if not req.output.lower().endswith(".mp4"):
        raise InputError(f"--output {req.output}: give a file name ending in .mp4")
    if not os.path.isdir(os.path.dirname(os.path.abspath(req.output))):
        raise InputError(f"--output {req.output}: its folder does not exist")
    req.sampler.validated()


def _text(encoder, text: str):
    """([1, 1, 512, C], [1, 512]): the prompt's tokens zero-padded to the official length, with its mask."""
    tokens = encoder.encode(text)[:MAX_TEXT_TOKENS].float().cpu()
    embeds = torch.zeros(1, 1, MAX_TEXT_TOKENS, tokens.shape[-1])
    embeds[0, 0, : tokens.shape[0]] = tokens
    mask = torch.zeros(1, MAX_TEXT_TOKENS, dtype=torch.int64)
    mask[0, : tokens.shape[0]] = 1
    return embeds, mask


def _load_real(req: LongCatRequest, device):
    from ..audio.longcat_whisper import load_whisper
    from ..model.longcat_loading import load_longcat_model
    from ..sampling.vae import load_wan_vae
    from .encoders import load_text_encoder

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    text = load_text_encoder(req.text_encoder, dtype=dtype, device=device)
    pos = _text(text, req.prompt if req.prompt is not None else DEFAULT_PROMPT)
    neg = _text(text, req.negative_prompt or LONGCAT_NEGATIVE_PROMPT)
    del text
    whisper = load_whisper(req.whisper, dtype=torch.float32, device=device)
    dit = load_longcat_model(req.model, dtype=dtype, device=device, lora=req.lora)
    vae = load_wan_vae(req.vae, dtype=dtype, device=device)
    return dit, vae, whisper, pos, neg


def make_longcat_file(req: LongCatRequest):
    """Run the whole job; the MP4 is written to `req.output`. Returns a jobs.GenerateResult."""
    from ..audio.longcat_embeds import longcat_audio_embeds
    from ..sampling.longcat import generate_longcat
    from .jobs import EMBEDDED_NOTICE, ProgressBars, write_from_store

    _check(req)
    device = parse_device(req.device, "--device")
    image = read_image(req.image)
    wave_1, rate_1 = read_audio(req.audio, "--audio")
    wave_2, rate_2 = read_audio(req.audio_2, "--audio-2") if req.audio_2 else (None, None)
    settings = req.sampler
    if req.embedded:
        from ..tiny.longcat import tiny_longcat_models

        print(EMBEDDED_NOTICE, file=sys.stderr)  # noqa: T201 - the CLI's user must see this even without logging
        tiny = tiny_longcat_models(seed=0, device=device)
        dit, vae, whisper = tiny.dit, tiny.vae, tiny.whisper
        pos, neg = (tiny.context, None), (tiny.context_null, None)
        if not (settings.width and settings.height):
            settings = dataclasses.replace(settings, height=EMBEDDED_SIZE[0], width=EMBEDDED_SIZE[1])
    else:
        dit, vae, whisper, pos, neg = _load_real(req, device)
    s = settings.validated()
    audio = longcat_audio_embeds(whisper, wave_1, rate_1, wave_2, rate_2, mode=req.speaker_mode, fps=s.fps,
                                 num_frames=s.num_frames, num_cond_frames=s.num_cond_frames)
    del whisper
    work = req.work_dir or (os.path.abspath(req.output) + ".parts")
    os.makedirs(work, exist_ok=True)
    bars = ProgressBars(req.quiet)
    try:
        store = generate_longcat(dit, vae, image, audio, context=pos[0], context_mask=pos[1], context_null=neg[0],
                                 context_null_mask=neg[1], settings=settings, store_root=work, on_progress=bars)
    finally:
        bars.close()
    # one speaker: the file's own sound; two: their mix on the generated timeline (16 kHz)
    sound, rate = (wave_1, rate_1) if wave_2 is None else (audio.waveform, audio.sample_rate)
    return write_from_store(store, req.output, sound, rate, req, work, req.embedded)


__all__ = ["LONGCAT_NEGATIVE_PROMPT", "LongCatRequest", "add_longcat_parser", "make_longcat_file"]
