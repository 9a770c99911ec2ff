"""What both job pipelines (InfiniteTalk `pipeline`, WanAnimate `animate_pipeline`) share: the request parts
read from the command line, the progress bars, the result and the MP4 written from a finished frame store."""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from dataclasses import dataclass, fields

import torch

from ..model.settings import LoraSettings
from ..options import options_of
from .model_files import ModelPaths

log = logging.getLogger(__name__)

EMBEDDED_NOTICE = ("Using the embedded tiny random-weight model set (no model files given): the picture will be "
                   "noise; the sound and the timing are real.")


@dataclass
class GenerateResult:
    path: str
    frames: int
    fps: float
    embedded: bool
    has_audio: bool = True  # read back from the written file

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def settings_from_args(settings_cls, args, skip=()):
    """A settings object from the parsed command line: the options it has arguments for, the defaults for the rest."""
    return settings_cls(**{n: getattr(args, n) for n in options_of(settings_cls) if hasattr(args, n) and n not in skip})


def model_paths_from_args(args, **files) -> ModelPaths:
    """The model files both commands take (--model, --vae, ..., --lora), plus the mode's own `files`."""
    return ModelPaths(models_dir=args.models_dir, model=args.model, vae=args.vae, clip_vision=args.clip_vision,
                      text_encoder=args.text_encoder, loras=[parse_lora(item) for item in (args.lora or [])], **files)


def plain_fields_from_args(request_cls, args) -> dict:
    """The request's own fields that are plain values (not settings objects) from the parsed command line."""
    return {f.name: getattr(args, f.name) for f in fields(request_cls)
            if f.default_factory is dataclasses.MISSING and hasattr(args, f.name)}


def parse_lora(item: str):
    path, strength = item, LoraSettings().strength
    head, sep, tail = item.rpartition(":")
    if sep and head and not os.path.exists(item):
        try:
            path, strength = head, float(tail)
        except ValueError:
            pass
    return path, strength


def free_memory(device) -> None:
    """Give the cached GPU memory back between the model stages."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


class ProgressBars:
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
        self.bar.set_description(p.text)  # "window k/n", "clip k/n"
        self.bar.n = (p.window - 1) * p.steps + p.step
        stage = getattr(p, "stage", "denoise")
        self.bar.set_postfix_str(f"step {p.step}/{p.steps}" if stage == "denoise" else f"{stage} {p.chunk}/{p.chunks}",
                                 refresh=False)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def write_from_store(store, output: str, audio, rate, req, work: str, embedded: bool) -> GenerateResult:
    """The MP4 from a finished frame store, what the file holds, then the store removed unless kept
    (shared by `make_video_file` and the animate pipeline)."""
    from ..video import encode_video

    log.info("writing %s", output)
    # The store itself (not a one-shot iterator): if a writer fails, the next one can read the frames again.
    video = encode_video(store, output, store.fps, audio=audio, sample_rate=rate)
    result = GenerateResult(path=video.path, frames=video.frames, fps=video.fps, embedded=embedded,
                            has_audio=video.has_audio)
    if not req.keep_parts:
        # The MP4 is written: the finished windows are no longer needed for a resume.
        store.release()
        shutil.rmtree(store.path, ignore_errors=True)
        if req.work_dir is None and os.path.isdir(work) and not os.listdir(work):
            os.rmdir(work)
    return result
