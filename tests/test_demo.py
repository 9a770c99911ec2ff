"""`bash scripts/examples/demo.sh`: the pack's own sample portrait and speech make a talking MP4 with sound."""
import os
import subprocess
import sys

import av
import numpy as np
import soundfile as sf
from PIL import Image
from testlib import REPO_ROOT

PORTRAIT = REPO_ROOT / "assets" / "demo_portrait.png"
SPEECH = REPO_ROOT / "assets" / "demo_speech.wav"


def test_the_shipped_sample_is_small_a_portrait_and_speech():
    assert PORTRAIT.stat().st_size + SPEECH.stat().st_size < 400_000  # ships inside the pack
    with Image.open(PORTRAIT) as img:
        assert img.mode == "RGB" and img.height > img.width >= 256  # a portrait-shaped picture
    wave, rate = sf.read(str(SPEECH), dtype="float32")
    assert wave.ndim == 1 and rate == 16000
    assert 2.0 < len(wave) / rate < 8.0
    # Speech, not silence or a tone: loud enough, and it pauses (between words) as speech does.
    frames = wave[: len(wave) // 400 * 400].reshape(-1, 400)  # 25 ms
    energy = np.sqrt((frames ** 2).mean(axis=1))
    assert energy.max() > 0.05
    assert (energy < energy.max() * 0.05).mean() > 0.05


def test_demo_without_inputs_makes_an_mp4_with_h264_and_aac_as_long_as_the_shipped_speech(tmp_path):
    out = tmp_path / "demo.mp4"
    # The shipped sample (no portrait or speech named); options only to keep the CPU run short (the demo's
    # own defaults: bigger, 4 steps, colour correction; checked by hand, several minutes on 2 cores).
    fast = ["--output", str(out), "--width", "64", "--height", "64", "--steps", "2", "--frame-window", "33",
            "--motion-frames", "5", "--color-correction", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="2", WANVIDEO_PYTHON=sys.executable)  # no venv set-up in tests
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "examples" / "demo.sh"), *fast], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wrote {out}" in result.stdout  # it says where the MP4 is

    speech = sf.info(str(SPEECH)).duration
    with av.open(str(out)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        frames = sum(1 for _ in c.decode(video))
        audio_seconds = float(audio.duration * audio.time_base)
    assert frames == int(speech * 25)
    assert abs(frames / 25 - speech) <= 1 / 25
    assert abs(audio_seconds - speech) <= 1 / 25


def test_demo_with_one_or_two_names_explains_its_usage(tmp_path):
    result = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "examples" / "demo.sh"), "face.png"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage: bash scripts/examples/demo.sh" in result.stderr
