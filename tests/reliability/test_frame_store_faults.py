"""The frame store under damage, kills, full disks and concurrent runs: never a traceback, never a reused
damaged window, never two runs writing the same windows."""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from reliability_utils import fill
from testlib import REPO_ROOT

from wanvideo.errors import InputError, OutputError, RunInProgressError
from wanvideo.video.frame_store import FrameStore, FrameStoreError

KEY = "00112233445566778899aabbccddeeff"
SHAPE = dict(width=64, height=48, fps=25.0, total_frames=24, num_windows=3)


def _frames(n=8, seed=0, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _open(root, **kw):
    return FrameStore.open_for_run(str(root), KEY, **dict(SHAPE, **kw))


def _flip_middle_byte(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def _child(code: str, *args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_manifest_records_a_checksum_per_segment(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(), {"motion_latent": torch.zeros(2)})
    entry = json.load(open(os.path.join(store.path, "manifest.json")))["windows"][0]
    import hashlib

    assert entry["sha256"] == hashlib.sha256(open(os.path.join(store.path, entry["file"]), "rb").read()).hexdigest()


def test_damaged_segment_of_the_right_size_is_regenerated_not_reused(tmp_path, caplog):
    store = _open(tmp_path)
    for i in range(2):
        store.write_window(i, _frames(seed=i), {"motion_latent": torch.full((2,), float(i))})
    segment = os.path.join(store.path, "window_00001.mkv")
    size = os.path.getsize(segment)
    _flip_middle_byte(segment)
    assert os.path.getsize(segment) == size
    with caplog.at_level(logging.WARNING):
        resumed = _open(tmp_path)
    assert "window 2 of" in caplog.text and "damaged" in caplog.text and "regenerated" in caplog.text
    assert not os.path.exists(segment)  # not reused
    assert resumed.finished_windows in (0, 1)
    assert len(resumed.read_frames()) == len(resumed)  # what is kept decodes


def test_reading_a_damaged_segment_is_a_clear_error(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(), None)
    with open(os.path.join(store.path, "window_00000.mkv"), "r+b") as f:
        f.truncate(60)
    with pytest.raises(FrameStoreError, match=r"window_00000.mkv (is damaged|holds fewer frames).*"):
        store.read_frames()


@pytest.mark.parametrize("content", ["[1, 2, 3]", "{\"format\": 7}", "not json", ""])
def test_damaged_manifest_starts_afresh(tmp_path, content, caplog):
    store = _open(tmp_path)
    store.write_window(0, _frames(), {"motion_latent": torch.zeros(2)})
    open(os.path.join(store.path, "manifest.json"), "w").write(content)
    with caplog.at_level(logging.WARNING):
        again = _open(tmp_path)
    assert again.finished_windows == 0 and "afresh" in caplog.text


def test_work_folder_that_is_a_file(tmp_path):
    blocker = tmp_path / "work"
    blocker.write_text("x")
    with pytest.raises(InputError, match="work folder .* is a file"):
        _open(blocker)


_HOLD_LOCK = """
import sys, time
from wanvideo.video.frame_store import FrameStore
FrameStore.open_for_run(sys.argv[1], sys.argv[2], width=64, height=48, fps=25.0, total_frames=24, num_windows=3)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_identical_run_is_told_one_is_running_and_a_killed_one_leaves_no_stale_lock(tmp_path):
    child = _child(_HOLD_LOCK, str(tmp_path), KEY)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunInProgressError, match=rf"already working in .*{KEY} \(pid {child.pid} "):
            _open(tmp_path)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = _open(tmp_path)  # the OS dropped the dead run's lock
    store.write_window(0, _frames(), None)
    store.release()


def test_the_same_process_may_reopen_its_own_store(tmp_path):
    first = _open(tmp_path)
    first.write_window(0, _frames(), {"motion_latent": torch.zeros(2)})
    second = _open(tmp_path)
    assert second.finished_windows == 1


_WRITE_WINDOWS = """
import sys
import numpy as np, torch
from wanvideo.video.frame_store import FrameStore
store = FrameStore.open_for_run(sys.argv[1], sys.argv[2], width=160, height=120, fps=25.0, total_frames=72,
                                num_windows=12)
rng = np.random.default_rng(0)
for i in range(store.finished_windows, 12):
    print("window", i, flush=True)
    store.write_window(i, rng.integers(0, 256, (6, 120, 160, 3), dtype=np.uint8), {"motion_latent": torch.full((4,), i)})
print("done", flush=True)
"""


@pytest.mark.parametrize("seed", [1])
def test_sigkill_at_a_random_point_of_a_window_write_keeps_a_consistent_store(tmp_path, seed):
    child = _child(_WRITE_WINDOWS, str(tmp_path), KEY)
    assert child.stdout.readline().startswith("window")
    time.sleep(random.Random(seed).uniform(0.02, 0.3))
    child.send_signal(signal.SIGKILL)
    child.wait()
    store = FrameStore.open_for_run(str(tmp_path), KEY, width=160, height=120, fps=25.0, total_frames=72,
                                    num_windows=12)
    kept = store.finished_windows
    assert kept < 12, "the kill came too late to test anything"
    assert len(store.read_frames()) == len(store) == 6 * kept  # every listed window decodes whole
    if kept:
        assert store.load_state()["motion_latent"][0] == kept - 1
    visible = {n for n in os.listdir(store.path)}
    assert not [n for n in visible if ".wv-" in n or n.endswith(".tmp")]  # no half-written file left
    rng = np.random.default_rng(seed)  # the rerun completes from there
    for i in range(kept, 12):
        store.write_window(i, rng.integers(0, 256, (6, 120, 160, 3), dtype=np.uint8), {"motion_latent": torch.zeros(4)})
    store.mark_complete()
    assert len(FrameStore(store.path).read_frames()) == 72
    store.release()


def test_full_disk_while_writing_a_window_keeps_the_earlier_windows(small_disk):
    folder, real = small_disk(1024)
    if not real:
        pytest.skip("no tmpfs can be mounted here (the writer's full-disk case uses an ffmpeg fake instead)")
    store = _open(folder)
    store.write_window(0, _frames(), {"motion_latent": torch.zeros(2)})
    manifest = open(os.path.join(store.path, "manifest.json")).read()
    fill(folder, leave_bytes=4096)
    with pytest.raises(OutputError, match="(disk is full|No space left)"):
        store.write_window(1, _frames(seed=1, n=8, h=48, w=64).repeat(4, axis=0)[:8], {"motion_latent": torch.ones(2)})
    assert open(os.path.join(store.path, "manifest.json")).read() == manifest
    os.remove(folder / "filler.bin")
    resumed = _open(folder)
    assert resumed.finished_windows == 1 and len(resumed.read_frames()) == 8


# -- a damaged window amid finished ones, in a real run's store (tiny real models, 4 windows) -------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(inputs, frames of an uninterrupted run, calls per window, where that run's store is)."""
    import resume_job

    inputs = resume_job.inputs()
    root = tmp_path_factory.mktemp("straight")
    store = resume_job.run(root, *inputs)
    return inputs, store.read_frames(), resume_job.SETTINGS.steps * resume_job.PASSES, root


def _calls(model):
    counter = {"n": 0}
    return counter, model.register_forward_pre_hook(lambda m, args: counter.__setitem__("n", counter["n"] + args[0].shape[0]))


class _StopAfter(Exception):
    pass


@pytest.mark.parametrize("case, remade", [
    ("run stopped after window 3, window 2 damaged", [1, 3]),
    ("finished run, window 2 damaged and window 1's state lost", [0, 1]),
])
def test_a_damaged_middle_window_is_made_again_alone_and_the_video_equals_an_uninterrupted_run(
        tmp_path, tiny_run, case, remade, caplog):
    import shutil

    import resume_job

    (models, embeddings, image), straight, per_window, straight_root = tiny_run
    root = tmp_path / "frames"
    if "stopped" in case:
        def stop(index, store):
            if index == 2:
                raise _StopAfter
        with pytest.raises(_StopAfter):
            resume_job.run(root, models, embeddings, image, on_window_done=stop)
    else:
        shutil.copytree(straight_root, root)
    (store_dir,) = root.iterdir()
    _flip_middle_byte(store_dir / "window_00001.mkv")  # same size: only the checksum tells
    if "state" in case:
        os.remove(store_dir / "state_00000.safetensors")

    counter, handle = _calls(models.dit)
    try:
        with caplog.at_level(logging.INFO, logger="wanvideo"):
            store = resume_job.run(root, models, embeddings, image)
    finally:
        handle.remove()
    assert "window 2 of" in caplog.text and "damaged" in caplog.text
    assert counter["n"] == len(remade) * per_window  # the intact windows are reused, not computed again
    assert store.complete and np.array_equal(store.read_frames(), straight)
    manifest = json.load(open(store_dir / "manifest.json"))
    assert sorted(int(k) for k in manifest["states"]) == [0, 1, 2]  # every window's state (the last has none)


@pytest.mark.parametrize("damage, lost_states, to_make", [
    ([], [], []),
    ([1], [], [1]),
    ([1, 3], [], [1, 3]),
    ([3], [2], [2, 3]),
    ([3], [1, 2], [1, 2, 3]),
    ([1], [1, 2], [1]),  # the damaged window's own state is not needed: it is made again
    ([0], [0], [0]),
])
def test_only_damaged_windows_and_those_whose_state_is_lost_before_them_are_made_again(
        tmp_path, damage, lost_states, to_make):
    shape = dict(SHAPE, total_frames=32, num_windows=4)
    store = _open(tmp_path, **shape)
    for i in range(4):
        store.write_window(i, _frames(seed=i), {"motion_latent": torch.full((2,), float(i))} if i < 3 else None)
    store.mark_complete()
    for i in damage:
        _flip_middle_byte(os.path.join(store.path, f"window_{i:05d}.mkv"))
    for i in lost_states:
        _flip_middle_byte(os.path.join(store.path, f"state_{i:05d}.safetensors"))  # checksummed too
    store.release()
    again = _open(tmp_path, **shape)
    assert again.windows_to_make() == to_make and again.complete == (not to_make)
    for i in to_make:
        if i and i - 1 not in to_make:  # the state it continues from is on disk and intact
            assert torch.equal(again.load_state(i - 1)["motion_latent"], torch.full((2,), float(i - 1)))
    if to_make and to_make != list(range(to_make[0], 4)):  # a hole amid windows on disk: reading says so
        with pytest.raises(FrameStoreError, match=f"window {to_make[0] + 1} of .* is not on disk"):
            again.read_frames()
    for i in to_make:
        again.write_window(i, _frames(seed=i), {"motion_latent": torch.full((2,), float(i))} if i < 3 else None)
    again.mark_complete()
    assert np.array_equal(again.read_frames(), np.concatenate([_frames(seed=i) for i in range(4)]))


def test_a_store_from_before_per_window_states_still_resumes(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(seed=0), {"motion_latent": torch.zeros(2)})
    path = os.path.join(store.path, "manifest.json")
    manifest = json.load(open(path))
    manifest["state"] = {"window": 0, "file": manifest.pop("states")["0"]["file"]}  # the old layout
    json.dump(manifest, open(path, "w"))
    store.release()
    again = _open(tmp_path)
    assert again.windows_to_make() == [1, 2] and torch.equal(again.load_state()["motion_latent"], torch.zeros(2))


_HOLD_LOCK_FOR = """
import sys, time
from wanvideo.video.run_lock import RunLock
lock = RunLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_second_run_may_wait_for_the_first_and_then_resumes(tmp_path):
    first = _open(tmp_path)
    first.write_window(0, _frames(), {"motion_latent": torch.zeros(2)})
    first.release()
    child = _child(_HOLD_LOCK_FOR, first.path, "2")
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunInProgressError, match=rf"\(pid {child.pid} on .*, running since .* UTC \(\d+ s ago\): "
                                                     r".*python.* -c .* and did not finish within 0.3 s"):
            _open(tmp_path, lock_wait=0.3)
        started = time.monotonic()
        store = _open(tmp_path, lock_wait=60)  # returns once the other process has ended
        assert time.monotonic() - started < 30 and child.poll() is not None
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert store.finished_windows == 1 and store.windows_to_make() == [1, 2]
    with pytest.raises(InputError, match="wait_for_lock must be between 0 and"):
        _open(tmp_path / "other", lock_wait=float("nan"))


_FORK_AND_HOLD = """
import os, sys, time
from wanvideo.video.run_lock import RunLock
lock = RunLock.acquire(sys.argv[1])
pid = os.fork()  # the child shares the locked file: it keeps the lock when this process dies
if pid == 0:
    time.sleep(60)
    os._exit(0)
print(pid, flush=True)
time.sleep(60)
"""


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path, caplog):
    """The run that wrote the lock was killed, but a process it forked still holds the file: stale, taken over."""
    folder = tmp_path / "store"
    child = _child(_FORK_AND_HOLD, str(folder))
    grandchild = None
    try:
        grandchild = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait()
        with caplog.at_level(logging.WARNING):
            from wanvideo.video.run_lock import RunLock

            lock = RunLock.acquire(str(folder))
        assert f"taking over the lock of {folder}: pid {child.pid} on" in caplog.text and "no longer runs" in caplog.text
        assert json.loads(open(folder / ".lock").read())["pid"] == os.getpid()
        lock.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if grandchild:
            os.kill(grandchild, signal.SIGKILL)
