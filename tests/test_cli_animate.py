"""`python -m wanvideo animate` with the embedded tiny WanAnimate set (real tiny VAE) over the shared driving clip: a
real MP4 with the pose video's frame count, frame rate and sound; clear errors for bad inputs."""
from __future__ import annotations

import subprocess
import sys

import av
import pytest

from wanvideo.app.cli import main

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
FAST = ["--width", "48", "--height", "80", "--clip-len", "13", "--steps", "1", "--quiet"]


def _probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return frames, float(video.average_rate), len(container.streams.audio)


def test_animate_command_writes_the_driving_length_rate_and_sound(media_dir, tmp_path):
    out = tmp_path / "animated.mp4"
    cmd = [sys.executable, "-m", "wanvideo", "animate", "--image", str(media_dir / "portrait_480x832.png"),
           "--pose-video", str(media_dir / "animate_pose_3s.mp4"), "--face-video", str(media_dir / "animate_face_3s.mp4"),
           "--output", str(out), *FAST]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "embedded tiny" in proc.stdout + proc.stderr
    assert _probe(out) == (90, 30.0, 1)
    assert not (tmp_path / "animated.mp4.parts").exists()


@pytest.mark.parametrize("extra,message", [
    (["--background-video", "bg.mp4"], "both --background-video and --mask-video"),
    (["--clip-len", "12"], "4n\\+1"),
])
def test_bad_inputs_are_explained(media_dir, tmp_path, capsys, extra, message):
    rc = main(["animate", "--image", str(media_dir / "portrait_480x832.png"),
               "--pose-video", str(media_dir / "animate_pose_3s.mp4"),
               "--face-video", str(media_dir / "animate_face_3s.mp4"), "--output", str(tmp_path / "x.mp4"),
               *FAST, *extra])
    assert rc == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x.mp4").exists()


def test_speed_flags_are_generates_and_reach_the_run(media_dir, tmp_path, capsys):
    from wanvideo.app.animate_pipeline import AnimateRequest
    from wanvideo.app.cli import build_parser

    def speed_flags(command):
        parser = build_parser()._subparsers._group_actions[0].choices[command]
        group = next(g for g in parser._action_groups if g.title.startswith("speed"))
        return {a.option_strings[0] for a in group._group_actions}

    assert speed_flags("animate") == speed_flags("generate")
    args = build_parser().parse_args(["animate", "--image", "a.png", "--pose-video", "p.mp4", "--face-video", "f.mp4",
                                      "--output", "o.mp4", "--cache-method", "magcache", "--cache-threshold", "0.3",
                                      "--guidance-batching", "sequential", "--apg", "--compile", "--fp8-matmul", "auto"])
    req = AnimateRequest.from_args(args)
    assert (req.sampler.cache_method, req.sampler.cache_threshold, req.sampler.guidance_batching, req.sampler.apg) == \
        ("magcache", 0.3, "sequential", True)
    assert req.model_speed.compile is True and req.model_speed.fp8_matmul == "auto"
    # the model options are applied to the loaded model: fp8 matmuls on a model without fp8 weights are refused
    rc = main(["animate", "--image", str(media_dir / "portrait_480x832.png"),
               "--pose-video", str(media_dir / "animate_pose_3s.mp4"),
               "--face-video", str(media_dir / "animate_face_3s.mp4"), "--output", str(tmp_path / "x.mp4"),
               *FAST, "--fp8-matmul", "on"])
    assert rc == 2 and "needs fp8 weights" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
