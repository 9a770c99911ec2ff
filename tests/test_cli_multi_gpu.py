"""`torchrun ... -m wanvideo generate --sequence-parallel`: one MP4 written by rank 0, resumable without torchrun,
clear errors when started wrongly or when rank 0 fails before sampling (the other ranks leave, nothing hangs)."""
import os
import subprocess
import sys

import av
import pytest
import soundfile as sf
from testlib import MEDIA, REPO_ROOT
from testlib.ranks import free_port

from wanvideo.app import cli

SMALL = ["--width", "64", "--height", "64", "--steps", "2", "--frame-window", "17", "--motion-frames", "5"]


@pytest.fixture(scope="module")
def one_second_speech(tmp_path_factory):
    data, rate = sf.read(str(MEDIA / "speech_en_mono16k.wav"), dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), data[:rate], rate)
    return path


def _generate(args, ranks=None, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launcher = [sys.executable, "-m", "wanvideo"]
    if ranks:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_addr",
                    "127.0.0.1", "--master_port", str(free_port()), "-m", "wanvideo"]
    return subprocess.run(launcher + ["generate", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_two_ranks_write_one_mp4_that_one_process_resumes(tmp_path, one_second_speech):
    out = tmp_path / "talk.mp4"
    args = ["--image", str(MEDIA / "portrait_480x832.png"), "--audio", str(one_second_speech), "--output", str(out),
            *SMALL, "--keep-parts", "--quiet"]
    split = _generate([*args, "--sequence-parallel", "ulysses"], ranks=2)
    assert split.returncode == 0, split.stdout + split.stderr[-3000:]
    assert split.stdout.count("wrote ") == 1  # rank 0 reports, the helper rank stays quiet
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4", "talk.mp4.parts"]
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25 and container.streams.audio

    # The same command on one process finds the finished windows: the run's identity ignores the rank count.
    single = _generate([*args[:-1]])
    assert single.returncode == 0, single.stderr[-3000:]
    assert "already on disk" in single.stderr


def test_rank_zero_failing_before_sampling_releases_the_other_ranks(tmp_path, one_second_speech):
    result = _generate(["--image", str(tmp_path / "missing.png"), "--audio", str(one_second_speech),
                        "--output", str(tmp_path / "talk.mp4"), *SMALL, "--sequence-parallel", "ring"], ranks=2,
                       timeout=300)
    assert result.returncode != 0
    assert "missing.png: file not found" in result.stderr
    assert not (tmp_path / "talk.mp4").exists()


def test_started_wrongly_gets_clear_errors(tmp_path, one_second_speech, monkeypatch, capsys):
    args = ["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio", str(one_second_speech),
            "--output", str(tmp_path / "talk.mp4")]
    assert cli.main([*args, "--sequence-parallel", "ulysses"]) == 2
    assert "torchrun --nproc_per_node N -m wanvideo generate" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(args) == 2
    assert "add --sequence-parallel ulysses" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
