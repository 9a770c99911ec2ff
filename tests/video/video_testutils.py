"""Helpers for the video tests: read back what a user (or a browser, or ComfyUI's front end) would see."""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

import av
import numpy as np


@dataclass
class Probe:
    container: str
    video_codec: str | None = None
    codec_tag: str | None = None
    pix_fmt: str | None = None
    width: int = 0
    height: int = 0
    frames: int = 0  # decoded
    fps: float = 0.0
    video_duration: float = 0.0  # decoded frames / fps
    audio_codec: str | None = None
    audio_channels: int = 0
    audio_rate: int = 0
    audio_duration: float = 0.0  # decoded samples / rate
    metadata: dict = field(default_factory=dict)
    decoded: list | None = None


def probe(path, keep_frames: bool = False) -> Probe:
    """Decode the whole file with PyAV (FFmpeg's libraries) and report what is really in it."""
    with av.open(str(path)) as c:
        p = Probe(container=c.format.name, metadata=dict(c.metadata))
        if c.streams.video:
            vs = c.streams.video[0]
            p.video_codec = vs.codec_context.name
            p.codec_tag = vs.codec_tag
            p.pix_fmt = vs.codec_context.pix_fmt
            p.width, p.height = vs.codec_context.width, vs.codec_context.height
            p.fps = float(vs.average_rate or vs.guessed_rate)
        if c.streams.audio:
            a = c.streams.audio[0]
            p.audio_codec = a.codec_context.name
            p.audio_channels = a.codec_context.channels
            p.audio_rate = a.codec_context.sample_rate
    frames = []
    if p.video_codec:
        with av.open(str(path)) as c:
            for f in c.decode(video=0):
                p.frames += 1
                if keep_frames:
                    frames.append(f.to_ndarray(format="rgb24"))
        p.video_duration = p.frames / p.fps if p.fps else 0.0
    if p.audio_codec:
        samples = 0
        with av.open(str(path)) as c:
            for f in c.decode(audio=0):
                samples += f.samples
        p.audio_duration = samples / p.audio_rate
    if keep_frames:
        p.decoded = frames
    return p


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def moving_frames(n=50, h=48, w=64, seed=0) -> np.ndarray:
    """[n,h,w,3] uint8 frames with smooth, moving content (compressible, so quality checks mean something)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 6.28, 3)
    for i in range(n):
        t = i / max(1, n)
        r = 128 + 100 * np.sin(xx / 9.0 + 6.28 * t + phase[0])
        g = 128 + 100 * np.sin(yy / 7.0 - 6.28 * t + phase[1])
        b = 128 + 100 * np.sin((xx + yy) / 11.0 + 3.14 * t + phase[2])
        out[i] = np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)
    return out


def tone(seconds: float, rate: int = 16000, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels)


def listing(folder) -> set:
    return {os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(folder) for f in files}


# -- ComfyUI front-end metadata readers -------------------------------------------------------------
# Re-implementations of how ComfyUI_frontend (src/scripts/metadata/isobmff.ts, ebml.ts) finds the
# workflow in a dropped video, so the tests check the layout the front end actually reads.

_MP4_READ = 64 * 1024 * 1024
_WEBM_READ = 2 * 1024 * 1024


def _find_box(data: bytes, start: int, end: int, box: bytes):
    pos = start
    while pos < end - 8:
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        if size < 8:
            pos += 1
            continue
        if data[pos + 4:pos + 8] == box:
            return pos + 8, pos + size
        if pos + size > end:
            return None
        pos += size
    return None


def _json_from(data: bytes):
    start = data.find(b"{")
    if start < 0:
        return None
    try:
        return json.loads(data[start:].decode("utf-8"))
    except ValueError:
        return None


def comfy_metadata_mp4(path) -> dict:
    with open(path, "rb") as f:
        data = f.read(_MP4_READ)
    udta = _find_box(data, 0, len(data), b"udta")
    if udta is None:
        moov = _find_box(data, 0, len(data), b"moov")
        if moov is None:
            return {}
        udta = _find_box(data, moov[0], moov[1], b"udta")
    if udta is None:
        return {}
    meta = _find_box(data, udta[0], udta[1], b"meta")
    if meta is None:
        return {}
    keys_box = _find_box(data, meta[0] + 4, meta[1], b"keys")
    ilst = _find_box(data, meta[0] + 4, meta[1], b"ilst")
    if keys_box is None or ilst is None:
        return {}
    pos = keys_box[0] + 4
    count = struct.unpack(">I", data[pos:pos + 4])[0]
    pos += 4
    keys = {}
    for i in range(1, count + 1):
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        keys[i] = data[pos + 8:pos + size].decode("utf-8")
        pos += size
    out = {}
    pos = ilst[0]
    while pos < ilst[1] - 8:
        size, index = struct.unpack(">II", data[pos:pos + 8])
        if size <= 8:
            break
        name = keys.get(index)
        box = _find_box(data, pos + 8, pos + size, b"data")
        if name and box and name.lower() in ("prompt", "workflow"):
            value = _json_from(data[box[0] + 8:box[1]])
            if value is not None:
                out[name.lower()] = value
        pos += size
    return out


def _vint(data: bytes, pos: int):
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    value = first & (mask - 1)
    for i in range(1, length):
        value = (value << 8) | data[pos + i]
    return value, length


def comfy_metadata_webm(path) -> dict:
    with open(path, "rb") as f:
        data = f.read(_WEBM_READ)
    if data[:4] != b"\x1a\x45\xdf\xa3":
        return {}
    out = {}
    pos = 0
    while True:
        pos = data.find(b"\x67\xc8", pos)
        if pos < 0:
            break
        size, n = _vint(data, pos + 2)
        body = data[pos + 2 + n:pos + 2 + n + size]
        name = value = None
        i = 0
        while i < len(body) - 2:
            ident = body[i:i + 2]
            if ident in (b"\x45\xa3", b"\x44\x87"):
                s, m = _vint(body, i + 2)
                content = body[i + 2 + m:i + 2 + m + s]
                if ident == b"\x45\xa3":
                    name = content.rstrip(b"\x00").decode("utf-8", "replace")
                else:
                    value = content.rstrip(b"\x00")
                i += 2 + m + s
            else:
                i += 1
        if name in ("PROMPT", "WORKFLOW") and value is not None:  # the front end matches these exactly
            parsed = _json_from(value)
            if parsed is not None:
                out[name.lower()] = parsed
        pos += 2 + n + size
    return out
