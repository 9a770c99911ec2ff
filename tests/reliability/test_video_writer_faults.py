"""write_video / encode_video under bad input and faults: never a silent wrong file, never a hang,
never the loss of an earlier output."""
from __future__ import annotations

import os
import time

import numpy as np
import psutil
import pytest
import torch
from reliability_utils import earlier_video, fill, frames, names, tone, unchanged
from video_testutils import probe

from wanvideo.errors import InputError, NonFiniteError, OutputError, VideoWriteError
from wanvideo.video import EncodingInterrupted, encode_video, write_video

FPS = 25


# -- frames that used to come out white, clipped or black -----------------------------------------------

def _gradient(n=6, h=32, w=48) -> np.ndarray:
    """uint8 frames with every tone from dark to light."""
    row = np.linspace(0, 255, w, dtype=np.float32)
    img = np.broadcast_to(row[None, :, None], (h, w, 3))
    return np.repeat(img[None], n, axis=0).round().astype(np.uint8)


def _decoded_mean(path) -> float:
    return float(np.mean(probe(path, keep_frames=True).decoded))


def test_float_frames_in_0_255_are_converted_not_white(tmp_path, caplog):
    ref = _gradient()
    result = encode_video(ref.astype(np.float32), tmp_path / "f.mp4", FPS)
    assert abs(_decoded_mean(result.path) - ref.mean()) < 4  # white would be ~255
    assert "read as 0..255" in caplog.text


def test_float_frames_in_minus1_1_are_converted_not_clipped(tmp_path, caplog):
    ref = _gradient()
    signed = torch.from_numpy(ref.astype(np.float32) / 127.5 - 1.0)
    result = encode_video(signed, tmp_path / "s.mp4", FPS)
    assert abs(_decoded_mean(result.path) - ref.mean()) < 4  # clipping would lose the dark half
    assert "read as -1..1" in caplog.text


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_frames_are_refused_not_black(tmp_path, bad):
    out = tmp_path / "n.mp4"
    before = earlier_video(out)
    video = _gradient().astype(np.float32) / 255
    video[0, 3, 3, 0] = bad
    with pytest.raises(NonFiniteError, match="NaN or infinite.*Refusing to write them"):
        write_video(video, out, FPS)
    assert unchanged(out, before) and names(tmp_path) == {"n.mp4"}


def test_non_finite_frames_later_in_a_stream_keep_the_frames_before(tmp_path):
    def stream():
        yield from (_gradient(5).astype(np.float32) / 255)
        yield np.full((32, 48, 3), np.nan, np.float32)

    out = tmp_path / "late.mp4"
    with pytest.raises(NonFiniteError, match="frame 5 .*NaN.*5 frames encoded before it were kept in"):
        write_video(stream(), out, FPS)
    assert probe(out).frames == 5


def test_float_frames_in_no_known_range_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"float frames range from 0 to 4000: expected 0..1"):
        write_video(np.linspace(0, 4000, 6 * 32 * 48 * 3, dtype=np.float32).reshape(6, 32, 48, 3), tmp_path / "r.mp4", FPS)
    assert names(tmp_path) == set()


# -- limits up front ------------------------------------------------------------------------------------------

def test_absurd_frame_rate_is_refused_with_the_limit(tmp_path):
    with pytest.raises(InputError, match="above the limit of 240 frames per second"):
        write_video(frames(), tmp_path / "fps.mp4", 100000, tone(1.0), 16000)
    assert names(tmp_path) == set()


def test_one_hertz_audio_is_refused_with_the_limit(tmp_path):
    with pytest.raises(InputError, match=r"outside the supported 1000\.\.768000 Hz"):
        write_video(frames(), tmp_path / "hz.mp4", FPS, np.zeros(5, np.float32), 1)
    assert names(tmp_path) == set()


def test_output_path_that_is_a_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder: give a file name"):
        write_video(frames(), tmp_path, FPS)


def test_output_name_starting_with_a_dash_is_a_file_not_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = encode_video(frames(), "-y.mp4", FPS, tone(0.5), 16000)
    assert result.writer == "ffmpeg" and os.path.isfile(tmp_path / "-y.mp4")
    assert probe(tmp_path / "-y.mp4").frames == 12


def test_read_only_folder_is_a_clear_error(read_only_folder):
    with pytest.raises(InputError, match="cannot write to the folder.*pick a writable output folder"):
        write_video(frames(), read_only_folder / "v.mp4", FPS)


# -- what is reported is read back from the file ---------------------------------------------------------------

def test_reported_facts_are_read_from_the_file(tmp_path, monkeypatch):
    from wanvideo.video import verify

    seen = []
    real = verify.read_facts
    monkeypatch.setattr("wanvideo.video.writer.verify_video",
                        lambda path, n, audio: seen.append(path) or verify.verify_video(path, n, audio))
    result = encode_video(frames(10), tmp_path / "facts.mp4", FPS, tone(0.4), 16000)
    facts = real(result.path)
    assert (result.frames, result.has_audio) == (facts.frames, facts.has_audio) == (10, True)
    assert seen and seen[-1] != result.path  # checked under the temporary name, before the rename


# -- lying and hanging ffmpeg programs ----------------------------------------------------------------------------

def test_lying_ffmpeg_is_caught_by_the_preflight(tmp_path, fake_ffmpeg):
    liar = fake_ffmpeg("lie", also_preflight=True)
    result = encode_video(frames(), tmp_path / "l.mp4", FPS, tone(0.5), 16000)
    assert probe(result.path).frames == 12 and result.has_audio
    assert any(liar in note for note in result.notes)


def test_lying_ffmpeg_on_the_real_job_falls_back(tmp_path, fake_ffmpeg):
    out = tmp_path / "l.mp4"
    before = earlier_video(out)
    fake_ffmpeg("lie")
    result = encode_video(frames(), out, FPS, tone(0.5), 16000)
    assert probe(out).frames == 12 and result.has_audio and not unchanged(out, before)
    assert any("ffmpeg writer failed" in note for note in result.notes)
    assert names(tmp_path) - {"bin/" + n for n in os.listdir(tmp_path / "bin")} == {"l.mp4"}


def test_lying_ffmpeg_on_a_stream_is_an_error_and_the_earlier_file_stays(tmp_path, fake_ffmpeg):
    out = tmp_path / "l.mp4"
    before = earlier_video(out)
    fake_ffmpeg("lie")
    with pytest.raises(VideoWriteError, match="not a readable video|holds"):
        write_video(iter(frames()), out, FPS)
    assert unchanged(out, before)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left


def test_hanging_ffmpeg_is_stopped_and_the_next_writer_used(tmp_path, fake_ffmpeg):
    fake_ffmpeg("hang", only=True)
    started = time.monotonic()
    result = encode_video(frames(200, h=96, w=128), tmp_path / "h.mp4", FPS, tone(8.0), 16000)
    assert time.monotonic() - started < 30
    assert result.writer == "pyav" and result.has_audio and probe(result.path).frames == 200
    assert any("no progress for 1 s" in note for note in result.notes)
    assert not [p for p in psutil.Process().children(recursive=True) if "sleep" in p.name()]


def test_hanging_ffmpeg_on_a_stream_fails_clearly_in_bounded_time(tmp_path, fake_ffmpeg):
    out = tmp_path / "h.mp4"
    before = earlier_video(out)
    fake_ffmpeg("hang")
    started = time.monotonic()
    with pytest.raises(VideoWriteError, match="showed no progress for 1 s and was stopped.*WANVIDEO_FFMPEG_TIMEOUT"):
        write_video(iter(frames(30)), out, FPS, tone(1.0), 16000)
    assert time.monotonic() - started < 30
    assert unchanged(out, before) and os.path.isfile(tmp_path / "h.wav")


def test_hanging_ffmpeg_at_the_preflight_is_skipped(tmp_path, fake_ffmpeg):
    hanger = fake_ffmpeg("hang", also_preflight=True)
    result = encode_video(frames(), tmp_path / "p.mp4", FPS)
    assert result.writer == "ffmpeg" and probe(result.path).frames == 12
    assert any(hanger in note and "no progress" in note for note in result.notes)


def test_audio_thread_error_is_the_runs_error(tmp_path, monkeypatch):
    from wanvideo.video import audio_track

    def broken(self, start, end):
        raise RuntimeError("audio feeder bug")

    monkeypatch.setattr(audio_track.AudioTrack, "interleaved", broken)
    monkeypatch.setenv("WANVIDEO_FFMPEG_TIMEOUT", "2")
    with pytest.raises(RuntimeError, match="audio feeder bug"):
        write_video(iter(frames(30)), tmp_path / "a.mp4", FPS, tone(1.0), 16000)
    assert not os.path.exists(tmp_path / "a.mp4")


# -- interrupts and full disks never destroy an earlier output ------------------------------------------------

def test_interrupt_keeps_the_earlier_file_and_puts_the_partial_beside_it(tmp_path):
    out = tmp_path / "i.mp4"
    before = earlier_video(out)
    asked = []
    with pytest.raises(EncodingInterrupted) as err:
        write_video(frames(30), out, FPS, interrupt=lambda: asked.append(1) or len(asked) > 10)
    assert unchanged(out, before)
    assert err.value.path == str(tmp_path / "i.partial.mp4") and probe(err.value.path).frames == 10


def test_full_disk_keeps_the_earlier_output_and_leaves_no_broken_file(small_disk, fake_ffmpeg):
    folder, real = small_disk(400)
    out = folder / "talk.mp4"
    before = earlier_video(out)
    if real:
        fill(folder, leave_bytes=20_000)
    else:
        fake_ffmpeg("disk-full", only=True)
    noisy = np.random.default_rng(0).integers(0, 255, (60, 96, 128, 3), dtype=np.uint8)  # does not compress
    with pytest.raises(OutputError, match="no space left on device.*earlier file of the same name was left"):
        write_video(noisy, out, FPS, tone(2.4), 16000)
    assert unchanged(out, before)
    left = names(folder) - {"filler.bin"}
    assert left == {"talk.mp4"} or (left == {"talk.mp4", "talk.wav"} and os.path.getsize(folder / "talk.wav") > 44)


_WRITE_MP4 = """
import sys
import numpy as np
from wanvideo.video import write_video
kill_at = int(sys.argv[2])
rng = np.random.default_rng(0)
def frames():
    for i in range(400):
        if i == kill_at:
            print("now", flush=True)
        yield rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
write_video(frames(), sys.argv[1], 25, np.zeros(16000 * 16, np.float32), 16000)
"""


def test_sigkill_mid_mp4_write_keeps_the_earlier_file_and_a_rerun_completes(tmp_path):
    import random
    import signal
    import subprocess
    import sys

    from testlib import REPO_ROOT

    out = tmp_path / "talk.mp4"
    before = earlier_video(out)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    kill_at = random.Random(11).randint(5, 300)
    child = subprocess.Popen([sys.executable, "-c", _WRITE_MP4, str(out), str(kill_at)], env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "now"
    encoders = [p for p in psutil.Process(child.pid).children() if "ffmpeg" in p.name()]
    child.send_signal(signal.SIGKILL)  # Python dies; its ffmpeg sees the end of its input and finishes
    child.wait()
    psutil.wait_procs(encoders, timeout=30)
    assert unchanged(out, before)  # never a third of the video under the user's name
    temps = [n for n in os.listdir(tmp_path) if n.startswith(".talk.wv-")]
    assert len(temps) <= 1
    result = encode_video(frames(20), out, FPS, tone(0.8), 16000)  # the rerun
    assert probe(out).frames == 20 and result.has_audio
    assert names(tmp_path) == {"talk.mp4"}  # the dead run's temporary was cleared


_H265_SMALL = """
import sys
import numpy as np
from wanvideo.errors import InputError
from wanvideo.video import write_video
width, height = int(sys.argv[2]), int(sys.argv[3])
frames = np.random.default_rng(0).integers(0, 256, (10, height, width, 3), dtype=np.uint8)
try:
    write_video(frames, sys.argv[1], 25, format="h265-mp4", writer="pyav")
except InputError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("size", [(48, 16), (48, 32)])
def test_h265_on_frames_x265_cannot_take_is_refused_not_an_aborted_process(tmp_path, size):
    """x265 corrupts its heap on such frames: through PyAV that was SIGABRT of the caller (ComfyUI itself)."""
    import subprocess
    import sys

    from testlib import REPO_ROOT

    out = tmp_path / "small.mp4"
    done = subprocess.run([sys.executable, "-c", _H265_SMALL, str(out), *map(str, size)], cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-500:]}"
    assert f"refused: h265-mp4 cannot encode {size[0]}x{size[1]} frames" in done.stdout
    assert "at least 64 pixels on each side" in done.stdout and "h264-mp4" in done.stdout
    assert not os.path.exists(out) and names(tmp_path) == set()
