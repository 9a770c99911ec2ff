"""`python -m wanvideo longcat` with the embedded tiny LongCat set: a real MP4 as long as the speech, with its
sound; clear errors before any work for bad inputs."""
from __future__ import annotations

import re
import subprocess
import sys

import av
import pytest

from wanvideo.app.cli import main

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return frames, float(video.average_rate), len(container.streams.audio), (video.height, video.width)


def test_longcat_command_writes_the_speech_length_with_sound(media_dir, tmp_path):
    out = tmp_path / "talk.mp4"
    cmd = [sys.executable, "-m", "wanvideo", "longcat", "--image", str(media_dir / "portrait_480x832.png"),
           "--audio", str(media_dir / "speech_en_mono16k.wav"), "--output", str(out), "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "embedded tiny" in proc.stdout + proc.stderr
    # 7.41 s of speech at 25 fps = 185 frames: two official segments (93 + 80) cover 173, so three are made
    assert _probe(out) == (185, 25.0, 1, (80, 144))
    assert not (tmp_path / "talk.mp4.parts").exists()


@pytest.mark.parametrize("extra,message", [
    (["--steps", "4"], "exactly 8 steps"),
    (["--num-frames", "90"], "4n\\+1"),
    (["--model", "base_model"], "need all of --model --whisper --vae --text-encoder"),
])
def test_bad_inputs_are_explained(media_dir, tmp_path, capsys, extra, message):
    rc = main(["longcat", "--image", str(media_dir / "portrait_480x832.png"), "--audio",
               str(media_dir / "speech_en_mono16k.wav"), "--output", str(tmp_path / "x.mp4"), "--quiet", *extra])
    assert rc == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x.mp4").exists()
