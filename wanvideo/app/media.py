"""Reading the user's media files for the command line: a portrait, speech, a source video.

Inside ComfyUI the host's Load Image / Load Audio / Load Video nodes do this; every failure here is an
InputError that names the option and the file.
"""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import torch

from ..errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def need_file(path: str | None, what: str, option: str) -> str:
    if not path:
        raise InputError(f"{option}: no {what} given")
    if not os.path.isfile(path):
        raise InputError(f"{option} {path}: file not found (the {what})")
    return path


def read_image(path: str) -> torch.Tensor:
    """[H, W, 3] float32 in 0..1 (EXIF rotation applied, any PIL mode converted, alpha dropped)."""
    from ..images import read_image_file

    rgb = read_image_file(path, f"--image {path}")
    return torch.from_numpy(rgb.astype(np.float32) / 255.0)


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


def read_video(path: str, option: str = "--video") -> tuple[np.ndarray, float]:
    """(frames [N, H, W, 3] uint8, fps) of the first video stream."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(f"{option} {path}: the file has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or Fraction(25))
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except av.error.FFmpegError as exc:
        raise InputError(f"{option} {path}: cannot decode the video ({exc})") from None
    if not frames:
        raise InputError(f"{option} {path}: the video has no frames")
    return np.stack(frames), fps
