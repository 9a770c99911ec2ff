"""Make the demo's sample inputs: a drawn portrait (PIL) and a synthesised voice (espeak-ng).

    python scripts/examples/make_demo_assets.py            # writes assets/demo_portrait.png and assets/demo_speech.wav

Both are the project's own (no photo, no recording of a person), small enough to ship in the pack. The
committed files were made with this script; rerun it only to change them (needs `espeak-ng` on PATH:
`apt-get install espeak-ng` on Debian/Ubuntu).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "assets")
TEXT = "Hello! I am a drawn portrait with a synthetic voice."
SIZE = (480, 832)  # width x height: the 480p model's portrait shape
RATE = 16000  # what wav2vec2 reads; the sound track is resampled for the MP4 anyway


def draw_portrait(size=SIZE) -> Image.Image:
    """A flat-shaded head and shoulders facing the camera, mouth closed, on a soft gradient."""
    w, h = size
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top, bottom = np.array([196, 214, 232]), np.array([120, 146, 178])
    background = (top * (1 - y) + bottom * y).repeat(w, axis=1).astype(np.uint8)
    img = Image.fromarray(background, "RGB")
    d = ImageDraw.Draw(img)
    cx = w // 2
    skin, skin_shade, hair = (232, 190, 160), (214, 168, 138), (70, 48, 36)
    # shoulders and shirt, neck
    d.ellipse([cx - 230, 610, cx + 230, 1010], fill=(52, 86, 130))
    d.polygon([(cx - 60, 640), (cx + 60, 640), (cx, 720)], fill=(238, 238, 240))
    d.rectangle([cx - 48, 470, cx + 48, 650], fill=skin_shade)
    # hair behind, ears, face, fringe
    d.ellipse([cx - 150, 140, cx + 150, 470], fill=hair)
    d.ellipse([cx - 150, 330, cx - 110, 410], fill=skin_shade)
    d.ellipse([cx + 110, 330, cx + 150, 410], fill=skin_shade)
    d.ellipse([cx - 125, 190, cx + 125, 560], fill=skin)
    d.chord([cx - 135, 150, cx + 135, 380], 180, 360, fill=hair)
    # eyes, brows, nose, mouth (closed: the model opens it)
    for side in (-1, 1):
        ex = cx + side * 52
        d.ellipse([ex - 26, 345, ex + 26, 377], fill=(250, 250, 250))
        d.ellipse([ex - 12, 347, ex + 12, 375], fill=(74, 104, 60))
        d.ellipse([ex - 5, 355, ex + 5, 367], fill=(20, 20, 20))
        d.line([(ex - 30, 322), (ex + 28, 316 if side < 0 else 328)][:: side], fill=hair, width=7)
    d.line([(cx, 380), (cx - 10, 440), (cx + 8, 446)], fill=skin_shade, width=5)
    d.arc([cx - 46, 462, cx + 46, 502], 15, 165, fill=(170, 80, 80), width=6)
    d.ellipse([cx - 95, 420, cx - 60, 450], fill=(240, 176, 160))
    d.ellipse([cx + 60, 420, cx + 95, 450], fill=(240, 176, 160))
    return img.filter(ImageFilter.SMOOTH)


def synthesise_speech(path: str, text: str = TEXT, rate: int = RATE) -> None:
    """espeak-ng speaks `text`; ffmpeg (imageio-ffmpeg's) resamples it to `rate` Hz mono 16-bit WAV."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        subprocess.run([espeak, "-v", "en-us", "-s", "165", "-w", raw, text], check=True)
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", raw,
                        "-ac", "1", "-ar", str(rate), "-c:a", "pcm_s16le", "-map_metadata", "-1", "-fflags", "+bitexact",
                        path], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=ASSETS, help="folder for demo_portrait.png and demo_speech.wav")
    parser.add_argument("--portrait-only", action="store_true", help="do not remake the speech")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    draw_portrait().save(os.path.join(args.out, "demo_portrait.png"), optimize=True)
    if not args.portrait_only:
        synthesise_speech(os.path.join(args.out, "demo_speech.wav"))


if __name__ == "__main__":
    main()
