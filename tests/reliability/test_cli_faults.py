"""`python -m wanvideo generate` when things go wrong: exit status 2 and a message naming the fix for the
user's or the machine's fault (never a traceback), checked before any work; a bug keeps its traceback.

One tiny generation is shared (`finished_work`): later runs with the same inputs find every window on
disk and only redo the steps after it (the MP4 write), so the faults there are cheap to reach.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from reliability_utils import earlier_video, fill, names, unchanged
from testlib import MEDIA, REPO_ROOT
from video_testutils import probe

from wanvideo.app import cli

SIZE = ["--width", "32", "--height", "32", "--steps", "1", "--frame-window", "9", "--motion-frames", "5"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    data, rate = sf.read(str(MEDIA / "speech_en_mono16k.wav"), dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), data[: int(0.6 * rate)], rate)
    return path


def _args(speech, output, *extra, work=None):
    argv = ["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio", str(speech),
            f"--output={output}", "--quiet", *SIZE, *extra]
    if work is not None:
        argv += ["--work-dir", str(work), "--keep-parts"]
    return argv


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture(scope="module")
def finished_work(tmp_path_factory, speech):
    """A work folder holding every window of the shared tiny run (made once, by the real CLI path)."""
    root = tmp_path_factory.mktemp("shared")
    work = root / "work"
    assert cli.main(_args(speech, root / "first.mp4", work=work)) == 0
    return work


def _work_copy(finished_work, tmp_path):
    copy = tmp_path / "work"
    shutil.copytree(finished_work, copy)
    return copy


# -- checked before any work ----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, words", [
    (["--steps", "0"], "--steps 0: out of range, give a number from 1 to 200"),
    (["--fps", "1e9"], "--fps 1e\\+09: out of range, give a number from 1 to 120"),
    (["--fps", "nan"], "--fps nan: give a real number"),
    (["--fps", "0"], "--fps 0: out of range, give a number from 1 to 120"),
    (["--width", "100000"], "--width 100000: out of range, give a number from 0 to 4096"),
    (["--max-frames", "-3"], "--max-frames -3"),
    (["--wait-for-lock", "-5"], "--wait-for-lock -5: out of range, give a number from 0 to 604800"),
], ids=["steps0", "fps-huge", "fps-nan", "fps-zero", "width-huge", "max-frames", "wait-negative"])
def test_nonsense_numbers_are_refused_up_front(tmp_path, speech, capsys, monkeypatch, extra, words):
    import re

    monkeypatch.setattr("wanvideo.app.pipeline.read_audio", lambda *a: pytest.fail("work started before the checks"))
    code, _, err = _run(_args(speech, tmp_path / "o.mp4", *extra), capsys)
    assert code == 2 and re.search(words, err), err
    assert names(tmp_path) == set()


def test_width_without_height(tmp_path, speech, capsys):
    argv = _args(speech, tmp_path / "o.mp4")
    argv[argv.index("--height") + 1] = "0"
    code, _, err = _run(argv, capsys)
    assert code == 2 and "--width and --height go together" in err


def test_output_that_is_a_folder_is_found_before_any_work(tmp_path, speech, capsys):
    code, _, err = _run(_args(speech, tmp_path), capsys)
    assert code == 2 and "that is a folder; give a file name" in err


def test_output_in_a_read_only_folder_is_found_before_any_work(read_only_folder, speech, capsys):
    code, _, err = _run(_args(speech, read_only_folder / "talk.mp4"), capsys)
    assert code == 2 and "cannot write into" in err and "choose a writable folder" in err


def test_work_folder_that_is_a_file(tmp_path, speech, capsys):
    (tmp_path / "w").write_text("x")
    code, _, err = _run(_args(speech, tmp_path / "o.mp4", "--work-dir", str(tmp_path / "w")), capsys)
    assert code == 2 and "that is a file, not a folder" in err


def test_huge_image_is_refused_with_the_limit(tmp_path, speech, capsys):
    from test_image_inputs import _png_header_only

    big = tmp_path / "big.png"
    _png_header_only(big, 9000, 9000)
    argv = _args(speech, tmp_path / "o.mp4")
    argv[argv.index("--image") + 1] = str(big)
    code, _, err = _run(argv, capsys)
    assert code == 2 and "above the limit of 67 MP" in err


def _tiny_models_dir(tmp_path):
    """A models/ folder with a file per kind: tiny valid safetensors headers (nothing here gets loaded)."""
    from safetensors.torch import save_file

    layout = {"diffusion_models": ["wan2.1_i2v_480p_14B.safetensors", "Wan2_1-InfiniteTalk-Single.safetensors"],
              "wav2vec2": ["wav2vec2-chinese-base_fp16.safetensors"], "vae": ["wan_2.1_vae.safetensors"],
              "clip_vision": ["clip_vision_h.safetensors"], "text_encoders": ["umt5_xxl_fp16.safetensors"]}
    for folder, files in layout.items():
        (tmp_path / "models" / folder).mkdir(parents=True)
        for name in files:
            save_file({"w": torch.zeros(2)}, str(tmp_path / "models" / folder / name))
    return tmp_path / "models"


@pytest.mark.parametrize("damage", ["json-list", "truncated", "empty"])
def test_damaged_model_file_is_named_before_any_model_loads(tmp_path, speech, capsys, monkeypatch, damage):
    models = _tiny_models_dir(tmp_path)
    vae = models / "vae" / "wan_2.1_vae.safetensors"
    if damage == "json-list":
        vae.write_bytes((9).to_bytes(8, "little") + b"[1, 2, 3]")
    elif damage == "truncated":
        vae.write_bytes(vae.read_bytes()[:-4])
    else:
        vae.write_bytes(b"")
    for loader in ("wanvideo.audio.load_wav2vec", "wanvideo.model.load_model"):
        monkeypatch.setattr(loader, lambda *a, **k: pytest.fail("a model loaded before every header was checked"))
    code, _, err = _run(_args(speech, tmp_path / "o.mp4", "--models-dir", str(models)), capsys)
    assert code == 2 and "--vae" in err and "wan_2.1_vae.safetensors" in err and "re-download" in err


# -- faults of the machine: exit 2, no traceback, what was finished is kept ------------------------------------

def _fail_generation(monkeypatch, exc):
    """Make the run fail with `exc` once the checks are passed (where the exit status is decided does not
    depend on which step raises; the real faults are reached in the tests around this one)."""
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr("wanvideo.app.pipeline.read_audio", boom)


@pytest.mark.parametrize("exc, words", [
    (OSError(errno.ENOSPC, "No space left on device", "/work/window_00003.mkv"), "the disk is full"),
    (PermissionError(errno.EACCES, "Permission denied", "/work/manifest.json"), "permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/work"), "read-only file system"),
    (MemoryError(), "out of memory \\(RAM\\)"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "out of GPU memory.*--blocks-to-swap"),
], ids=["disk-full", "permission", "read-only", "ram", "vram"])
def test_machine_faults_exit_2_with_the_fix(tmp_path, speech, capsys, monkeypatch, exc, words):
    import re

    _fail_generation(monkeypatch, exc)
    code, _, err = _run(_args(speech, tmp_path / "o.mp4"), capsys)
    assert code == 2 and re.search(words, err), err


def test_a_bug_keeps_its_traceback(tmp_path, speech, monkeypatch):
    _fail_generation(monkeypatch, ZeroDivisionError("a real bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(_args(speech, tmp_path / "o.mp4"))


def test_full_disk_while_writing_the_mp4(finished_work, small_disk, speech, tmp_path, capsys, fake_ffmpeg):
    folder, real = small_disk(512)
    out = folder / "talk.mp4"
    before = earlier_video(out)
    if real:
        fill(folder, leave_bytes=8_000)
    else:
        fake_ffmpeg("disk-full", only=True)
    work = _work_copy(finished_work, tmp_path)
    kept = names(work)
    code, _, err = _run(_args(speech, out, work=work), capsys)
    assert code == 2 and "no space left on device" in err and "left as it was" in err
    assert unchanged(out, before)
    assert names(work) == kept  # the finished windows are kept: the same command finishes once there is space


def test_hanging_ffmpeg_does_not_hang_the_command(finished_work, speech, tmp_path, capsys, fake_ffmpeg):
    fake_ffmpeg("hang", only=True)
    code, out, err = _run(_args(speech, tmp_path / "talk.mp4", work=_work_copy(finished_work, tmp_path)), capsys)
    assert code == 0 and "with sound" in out
    assert probe(tmp_path / "talk.mp4").audio_codec == "aac"


def test_lying_ffmpeg_is_not_reported_as_saved(finished_work, speech, tmp_path, capsys, fake_ffmpeg):
    fake_ffmpeg("lie", only=True)
    code, out, _ = _run(_args(speech, tmp_path / "talk.mp4", work=_work_copy(finished_work, tmp_path)), capsys)
    assert code == 0 and "with sound" in out
    p = probe(tmp_path / "talk.mp4")
    assert p.frames > 0 and p.audio_codec == "aac"  # PyAV wrote it after the lie was caught


def test_output_name_starting_with_a_dash(finished_work, speech, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(_args(speech, "-talk.mp4", work=_work_copy(finished_work, tmp_path)), capsys)
    assert code == 0 and os.path.isfile(tmp_path / "-talk.mp4") and probe(tmp_path / "-talk.mp4").frames > 0


def test_earlier_output_survives_a_failed_write_and_is_replaced_by_a_good_one(finished_work, speech, tmp_path,
                                                                           capsys, fake_ffmpeg, monkeypatch):
    from wanvideo.video import fallback_writers

    out = tmp_path / "talk.mp4"
    before = earlier_video(out)
    work = _work_copy(finished_work, tmp_path)
    fake_ffmpeg("disk-full", only=True)
    monkeypatch.setattr(fallback_writers.PyAVWriter, "available", staticmethod(lambda fmt, with_audio: "disabled"))
    code, _, err = _run(_args(speech, out, work=work), capsys)
    assert code == 2 and unchanged(out, before) and "no space left on device" in err
    monkeypatch.undo()  # the fault is gone: the same command again
    code, _, _ = _run(_args(speech, out, work=work), capsys)
    assert code == 0 and not unchanged(out, before) and probe(out).audio_codec == "aac"


def test_two_identical_commands_at_once(finished_work, speech, tmp_path, capsys):
    work = _work_copy(finished_work, tmp_path)
    (store,) = [p for p in work.iterdir() if p.is_dir()]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom wanvideo.video.run_lock import RunLock\n"
         "RunLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(store)],
        cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = _run(_args(speech, tmp_path / "talk.mp4", work=work), capsys)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and "already working in" in err and f"(pid {holder.pid} on " in err and "running since" in err
    assert "--wait-for-lock" in err and not os.path.exists(tmp_path / "talk.mp4")


def test_wait_for_lock_waits_for_the_other_command_then_reuses_its_windows(finished_work, speech, tmp_path, capsys):
    work = _work_copy(finished_work, tmp_path)
    (store,) = [p for p in work.iterdir() if p.is_dir()]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom wanvideo.video.run_lock import RunLock\n"
         "RunLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(2)", str(store)],
        cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, _ = _run(_args(speech, tmp_path / "talk.mp4", "--wait-for-lock", "120", work=work), capsys)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert code == 0 and "wrote" in out and os.path.exists(tmp_path / "talk.mp4")


def test_no_traceback_from_the_real_command(read_only_folder, speech):
    """The process itself, as a user runs it."""
    cmd = [sys.executable, "-m", "wanvideo", *_args(speech, read_only_folder / "talk.mp4")]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "cannot write into" in done.stderr


def test_sixteen_bit_grey_portrait_is_read_as_shown(tmp_path):
    from PIL import Image

    from wanvideo.app.media import read_image

    Image.fromarray(np.full((16, 16), 30000, np.uint16)).save(tmp_path / "g.png")
    assert abs(float(read_image(str(tmp_path / "g.png")).mean()) - 30000 / 65535) < 0.01
