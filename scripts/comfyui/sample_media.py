"""Sample media for the real-host scripts, also in a plain clone of the pack.

`media_dir()` is where the scripts read their inputs: `$WANVIDEO_MEDIA` when set, else `../shared/media` beside
the repository (the drawn portraits and synthesised speech the tests use) when it exists, else a folder of small
media generated here under the same file names (a drawn face, tones shaped like syllables, moving shapes):
enough for the scripts to run the examples end to end, not to judge the pictures or the lip-sync.

    python scripts/comfyui/sample_media.py DIR    # write the generated set into DIR

Needs numpy, Pillow and PyAV (all in ComfyUI's requirements).
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_MEDIA = REPO.parent / "shared" / "media"
GENERATED = Path(tempfile.gettempdir()) / "wanvideo-sample-media"

SPEECH = {"speech_en_mono16k.wav": (7.4, 180.0), "speaker_a.wav": (4.5, 140.0), "speaker_b.wav": (4.5, 220.0)}
STILLS = {"portrait_480x832.png": (480, 832, 1), "two_people_832x480.jpg": (832, 480, 2)}
CLIPS = {"source_talk_4s.mp4": (480, 832, 25, 4.0, True), "animate_pose_3s.mp4": (480, 832, 30, 3.0, True),
         "animate_face_3s.mp4": (512, 512, 30, 3.0, False), "animate_background_3s.mp4": (480, 832, 30, 3.0, False),
         "animate_mask_3s.mp4": (480, 832, 30, 3.0, False)}


def media_dir() -> Path:
    """The folder of sample media the scripts read (see the module docstring)."""
    if os.environ.get("WANVIDEO_MEDIA"):
        return Path(os.environ["WANVIDEO_MEDIA"])
    if SHARED_MEDIA.is_dir():
        return SHARED_MEDIA
    write_media(GENERATED)
    return GENERATED


def speech(seconds: float, pitch: float, rate: int = 16000):
    """Syllable-like bursts of a voiced tone with harmonics, and pauses: int16 mono."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * math.pi * pitch * k * t * (1 + 0.05 * np.sin(2 * math.pi * 3 * t))) / k for k in (1, 2, 3))
    envelope = np.clip(np.sin(2 * math.pi * 4.0 * t), 0, None) * (np.sin(2 * math.pi * 0.4 * t) > -0.6)
    return (0.3 * 32767 * voice / 2 * envelope).astype(np.int16)


def write_wav(path: Path, samples, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def face(draw, cx: float, cy: float, size: float, mouth: float = 0.2) -> None:
    """A drawn face (skin, hair, eyes, mouth opening by `mouth` in 0..1)."""
    r = size / 2
    draw.ellipse((cx - r, cy - r * 1.2, cx + r, cy + r * 1.2), fill=(232, 190, 160))
    draw.chord((cx - r, cy - r * 1.3, cx + r, cy + r * 0.2), 180, 360, fill=(90, 60, 40))
    for dx in (-0.4, 0.4):
        draw.ellipse((cx + dx * r - r * 0.12, cy - r * 0.15, cx + dx * r + r * 0.12, cy + r * 0.05), fill=(255, 255, 255))
        draw.ellipse((cx + dx * r - r * 0.05, cy - r * 0.1, cx + dx * r + r * 0.05, cy), fill=(60, 90, 60))
    h = r * (0.05 + 0.25 * mouth)
    draw.ellipse((cx - r * 0.3, cy + r * 0.55 - h, cx + r * 0.3, cy + r * 0.55 + h), fill=(150, 60, 60))


def still(width: int, height: int, people: int, mouth: float = 0.2, shift: float = 0.0):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (170, 190, 215))
    draw = ImageDraw.Draw(image)
    for i in range(people):
        cx = width * (i + 0.5) / people + shift
        face(draw, cx, height * 0.42, min(width / people, height) * 0.55, mouth)
    return image


def clip_frame(name: str, width: int, height: int, i: int, n: int):
    from PIL import Image, ImageDraw

    phase = 2 * math.pi * i / n
    if name.startswith("animate_pose"):
        image = Image.new("RGB", (width, height), (0, 0, 0))
        draw = ImageDraw.Draw(image)
        cx, cy = width / 2, height * 0.3
        hand = (cx + width * 0.3, cy + height * 0.15 * math.sin(phase * 2))
        for a, b, colour in (((cx, cy), (cx, cy + height * 0.3), (255, 0, 0)), ((cx, cy + 40), hand, (0, 255, 0)),
                             ((cx, cy + 40), (cx - width * 0.3, cy + height * 0.2), (0, 0, 255))):
            draw.line((*a, *b), fill=colour, width=8)
        return image
    if name.startswith("animate_mask"):
        image = Image.new("RGB", (width, height), (0, 0, 0))
        ImageDraw.Draw(image).ellipse((width * 0.3, height * 0.15, width * 0.7, height * 0.9), fill=(255, 255, 255))
        return image
    if name.startswith("animate_background"):
        level = int(120 + 40 * math.sin(phase))
        return Image.new("RGB", (width, height), (level, level - 20, level - 40))
    return still(width, height, 1, mouth=0.5 + 0.5 * math.sin(phase * 4), shift=10 * math.sin(phase))


def write_clip(path: Path, width: int, height: int, fps: int, seconds: float, sound: bool) -> None:
    """An H.264 clip (with an AAC track made from the speech tones when `sound`)."""
    import av
    import numpy as np

    n = int(fps * seconds)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=44100) if sound else None
        for i in range(n):
            frame = av.VideoFrame.from_image(clip_frame(path.name, width, height, i, n))
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            pcm = speech(seconds, 200.0, 44100).reshape(1, -1)
            for start in range(0, pcm.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start:start + 1024]), format="s16",
                                                   layout="mono")
                chunk.sample_rate = 44100
                out.mux(audio.encode(chunk))
            out.mux(audio.encode())


def write_media(folder: Path) -> None:
    """Write every generated file that is not there yet."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (seconds, pitch) in SPEECH.items():
        if not (folder / name).exists():
            write_wav(folder / name, speech(seconds, pitch))
    for name, (width, height, people) in STILLS.items():
        if not (folder / name).exists():
            still(width, height, people).save(folder / name)
    for name, spec in CLIPS.items():
        if not (folder / name).exists():
            part = folder / f".{name}.part.mp4"
            write_clip(part, *spec)
            part.replace(folder / name)


if __name__ == "__main__":
    write_media(Path(sys.argv[1]) if len(sys.argv) > 1 else GENERATED)
