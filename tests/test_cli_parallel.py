"""The command line on several devices in one command (`--parallel guidance_split|layer_split|sequence_parallel
--devices ...`; CPU devices here), and torchrun across two "machines" (two node ranks over loopback, gloo)."""
from __future__ import annotations

import os
import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile as sf
from testlib import MEDIA, REPO_ROOT
from testlib.ranks import free_port

from wanvideo.app import cli
from wanvideo.video.frame_store import FrameStore

SMALL = ["--width", "64", "--height", "64", "--steps", "2", "--frame-window", "17", "--motion-frames", "5"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    data, rate = sf.read(str(MEDIA / "speech_en_mono16k.wav"), dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), data[:rate], rate)
    return path


def _args(out, speech):
    return ["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio", str(speech), "--output", str(out),
            *SMALL, "--keep-parts", "--quiet"]


def _frames(out) -> np.ndarray:
    (store,) = [p for p in (out.parent / (out.name + ".parts")).iterdir() if p.is_dir()]
    return FrameStore(str(store)).read_frames()


@pytest.mark.parametrize("mode", ["guidance_split", "layer_split", "sequence_parallel"])
def test_each_mode_writes_the_one_device_frames(tmp_path, speech, mode, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    single = tmp_path / "single.mp4"
    assert cli.main(_args(single, speech)) == 0
    split = tmp_path / f"{mode}.mp4"
    assert cli.main([*_args(split, speech), "--parallel", mode, "--devices", "cpu,cpu"]) == 0, capsys.readouterr().err
    a, b = _frames(single), _frames(split)
    assert a.shape == b.shape == (25, 64, 64, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # equal up to 8-bit rounding of the decoded frames
    with av.open(str(split)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25 and container.streams.audio


def test_wrong_parallel_settings_are_refused_before_any_work(tmp_path, speech, capsys):
    out = tmp_path / "talk.mp4"
    assert cli.main([*_args(out, speech), "--parallel", "guidance_split", "--devices", "cpu"]) == 2
    assert "at least two devices" in capsys.readouterr().err
    assert cli.main([*_args(out, speech), "--parallel", "layer_split", "--devices", "cpu,cpu", "--fsdp"]) == 2
    assert "fsdp and the Ray backend are for sequence_parallel" in capsys.readouterr().err
    assert not out.exists()


def test_two_machines_as_two_torchrun_node_ranks_over_loopback(tmp_path, speech):
    """Multi-machine: each machine starts torchrun with --nnodes 2 and its --node_rank, the same rendezvous."""
    out = tmp_path / "talk.mp4"
    port = str(free_port())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    nodes = []
    for node_rank in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--node_rank", str(node_rank), "--master_addr", "127.0.0.1", "--master_port", port,
               "-m", "wanvideo", *_args(out, speech), "--sequence-parallel", "ulysses"]
        nodes.append(subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = [(n.wait(timeout=600), *n.communicate()) for n in nodes]
    for code, stdout, stderr in results:
        assert code == 0, stdout + stderr[-3000:]
    assert sum(stdout.count("wrote ") for _, stdout, _ in results) == 1  # the first machine's rank 0 writes
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25 and container.streams.audio
