"""`python -m wanvideo animate-preprocess` and `animate --driving-video`: a raw driving video in, the preprocessing
videos (and the animated MP4 with the clip's sound) out, through the real command line and the stand-in ONNX files."""
from __future__ import annotations

import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
from testlib.preprocess_fixtures import DETECTOR, POSE
from testlib.synthetic_person import person_clip

from wanvideo.app.cli import main
from wanvideo.video import write_video

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SMALL = ["--resolution-width", "48", "--resolution-height", "80"]


def _probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
        return len(frames), float(video.average_rate), len(container.streams.audio), frames[0].shape


@pytest.fixture
def detection(tmp_path):
    folder = tmp_path / "models" / "detection"
    folder.mkdir(parents=True)
    shutil.copy(DETECTOR, folder / "yolov10m.onnx")
    shutil.copy(POSE, folder / "vitpose_h_wholebody.onnx")
    return folder


@pytest.fixture
def driving(tmp_path):
    """A 25 fps clip of a drawn person with a tone as its sound."""
    path = tmp_path / "driving.mp4"
    tone = (0.2 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    write_video(person_clip(20), str(path), 25.0, audio=tone, sample_rate=16000)
    return path


def test_preprocess_command_writes_the_videos(tmp_path, detection, driving, media_dir, capsys):
    out = tmp_path / "pre"
    code = main(["animate-preprocess", "--image", str(media_dir / "portrait_480x832.png"), "--driving-video",
                 str(driving), "--output-dir", str(out), "--models-dir", str(tmp_path / "models"), "--quiet", *SMALL])
    assert code == 0, capsys.readouterr().err
    frames, fps, audio, shape = _probe(out / "pose.mp4")
    assert (frames, fps, audio) == (24, 30.0, 1)  # 20 frames at 25 fps -> 24 at 30, the clip's sound on the pose
    assert _probe(out / "face.mp4")[:2] == (24, 30.0) and _probe(out / "face.mp4")[3] == (512, 512, 3)
    assert (out / "character.png").is_file() and not (out / "mask.mp4").exists()


def test_replace_mode_writes_background_and_mask(tmp_path, detection, driving, media_dir, caplog):
    out = tmp_path / "pre"
    code = main(["animate-preprocess", "--image", str(media_dir / "portrait_480x832.png"), "--driving-video",
                 str(driving), "--output-dir", str(out), "--detection-dir", str(detection), "--mode", "replace",
                 "--quiet", *SMALL])
    assert code == 0
    for name in ("pose", "face", "background", "mask"):
        assert _probe(out / f"{name}.mp4")[0] == 24
    assert "pose hulls" in caplog.text


def test_missing_models_are_named(tmp_path, driving, media_dir, capsys):
    code = main(["animate-preprocess", "--image", str(media_dir / "portrait_480x832.png"), "--driving-video",
                 str(driving), "--output-dir", str(tmp_path / "o"), "--detection-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "yolov10m.onnx" in err and "huggingface.co" in err
    assert not (tmp_path / "o").exists()


def test_animate_from_a_driving_video_end_to_end(tmp_path, detection, driving, media_dir):
    out = tmp_path / "animated.mp4"
    cmd = [sys.executable, "-m", "wanvideo", "animate", "--image", str(media_dir / "portrait_480x832.png"),
           "--driving-video", str(driving), "--output", str(out), "--detection-dir", str(detection), *SMALL,
           "--clip-len", "13", "--steps", "1", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    frames, fps, audio, shape = _probe(out)
    assert (frames, fps, audio) == (24, 30.0, 1)
    assert shape[:2] == (256, 96)  # the embedded set scales the 80x32 pose video to a long side of 256


def test_driving_video_and_pose_video_together_are_refused(tmp_path, driving, media_dir, capsys):
    code = main(["animate", "--image", str(media_dir / "portrait_480x832.png"), "--driving-video", str(driving),
                 "--pose-video", str(driving), "--output", str(tmp_path / "a.mp4")])
    assert code == 2 and "not both" in capsys.readouterr().err
