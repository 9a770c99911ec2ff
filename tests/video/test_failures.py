"""Bad input gets a clear error; failures and interrupts never lose what was already encoded."""
import dataclasses
import os
import stat

import numpy as np
import psutil
import pytest
import torch
from video_testutils import listing, moving_frames, probe, tone

from wanvideo.errors import InputError, VideoWriteError
from wanvideo.video import EncodingInterrupted, encode_video, formats, write_video

FPS = 25


# -- clear errors for bad input (and no file left behind) --------------------------------------------

@pytest.mark.parametrize("frames", [
    torch.zeros(0, 48, 64, 3), np.zeros((0, 48, 64, 3), np.uint8), [], iter([]),
], ids=["tensor", "array", "list", "iterator"])
def test_zero_frames(tmp_path, frames):
    with pytest.raises(InputError, match=r"no frames to write \(0 frames\)"):
        write_video(frames, tmp_path / "z.mp4", FPS)
    assert listing(tmp_path) == set()


def test_frames_of_different_sizes_in_a_list_fail_before_encoding(tmp_path):
    frames = [np.zeros((48, 64, 3), np.uint8)] * 3 + [np.zeros((50, 64, 3), np.uint8)]
    with pytest.raises(InputError, match=r"frame 3 is 64×50 \(W×H\) but frame 0 is 64×48.*same size"):
        write_video(frames, tmp_path / "d.mp4", FPS)
    assert listing(tmp_path) == set()


def test_frames_of_different_sizes_in_a_stream_keep_the_frames_before(tmp_path):
    def frames():
        yield from moving_frames(10)
        yield np.zeros((40, 64, 3), np.uint8)

    with pytest.raises(InputError, match=r"frame 10 is 64×40.*same size.*10 frames encoded before it were kept in"):
        write_video(frames(), tmp_path / "d.mp4", FPS, tone(2.0), 16000)
    p = probe(tmp_path / "d.mp4")
    assert p.frames == 10 and abs(p.audio_duration - 0.4) <= 1 / FPS


@pytest.mark.parametrize("fps", [0, -25, float("nan"), "abc"])
def test_bad_frame_rate(tmp_path, fps):
    with pytest.raises(InputError, match="frame_rate must be"):
        write_video(moving_frames(3), tmp_path / "r.mp4", fps)
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("audio", [np.zeros(0, np.float32), np.zeros((2, 0), np.float32), torch.zeros(1, 1, 0)])
def test_empty_audio(tmp_path, audio):
    with pytest.raises(InputError, match="the audio is empty"):
        write_video(moving_frames(3), tmp_path / "e.mp4", FPS, audio, 16000)
    assert listing(tmp_path) == set()


def test_audio_without_sample_rate(tmp_path):
    with pytest.raises(InputError, match="without its sample_rate"):
        write_video(moving_frames(3), tmp_path / "e.mp4", FPS, tone(1.0), None)


def test_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot create the folder"):
        write_video(moving_frames(3), blocker / "sub" / "v.mp4", FPS)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(InputError, match="cannot write to the folder"):
            write_video(moving_frames(3), folder / "v.mp4", FPS)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_bad_crf_format_and_policy(tmp_path):
    with pytest.raises(InputError, match="crf 60 is out of range for h264-mp4: use 0..51"):
        write_video(moving_frames(3), tmp_path / "c.mp4", FPS, crf=60)
    with pytest.raises(InputError, match="unknown video format 'gif'"):
        write_video(moving_frames(3), tmp_path / "c.mp4", FPS, format="gif")
    with pytest.raises(InputError, match="length_policy must be one of"):
        write_video(moving_frames(3), tmp_path / "c.mp4", FPS, length_policy="longest")
    assert listing(tmp_path) == set()


def test_bad_frame_values(tmp_path):
    with pytest.raises(InputError, match="uint8 .* or float"):
        write_video(np.zeros((3, 8, 8, 3), np.int64), tmp_path / "v.mp4", FPS)
    with pytest.raises(InputError, match=r"\[N, H, W, 3\] batch"):
        write_video(np.zeros((8, 8, 3), np.uint8), tmp_path / "v.mp4", FPS)
    with pytest.raises(InputError, match="1, 3 or 4 channels"):
        write_video(np.zeros((3, 8, 8, 5), np.uint8), tmp_path / "v.mp4", FPS)


# -- failures while encoding -------------------------------------------------------------------------

def test_mux_failure_keeps_silent_video_and_wav_and_names_both(tmp_path, monkeypatch):
    broken = dataclasses.replace(formats.FORMATS["h264-mp4"], audio_encoder="no_such_audio_encoder")
    monkeypatch.setitem(formats.FORMATS, "h264-mp4", broken)
    with pytest.raises(VideoWriteError) as err:
        write_video(moving_frames(25), tmp_path / "m.mp4", FPS, tone(3.0), 16000)
    video, wav = str(tmp_path / "m.mp4"), str(tmp_path / "m.wav")
    assert video in str(err.value) and wav in str(err.value)
    assert listing(tmp_path) == {"m.mp4", "m.wav"}
    p = probe(video)
    assert p.video_codec == "h264" and p.frames == 25 and p.audio_codec is None
    assert probe(wav).audio_duration == pytest.approx(1.0, abs=1e-3)


def _ffmpeg_killer(at_frame):
    me = psutil.Process()

    def kill_ffmpeg(done, total):
        if done == at_frame:
            for child in me.children():
                if "ffmpeg" in child.name():
                    child.kill()
    return kill_ffmpeg


def test_encoder_crash_mid_way_on_a_stream_keeps_the_audio_and_no_broken_video(tmp_path):
    """A one-shot stream cannot be encoded again: a clear error, the audio kept, no unplayable file."""
    frames = iter(moving_frames(200, h=96, w=128))
    with pytest.raises(VideoWriteError) as err:
        write_video(frames, tmp_path / "k.mp4", FPS, tone(8.0), 16000, progress=_ffmpeg_killer(10))
    message = str(err.value)
    assert "ffmpeg stopped while receiving frame" in message
    wav = str(tmp_path / "k.wav")
    assert wav in message and os.path.isfile(wav)  # the audio is never lost
    assert listing(tmp_path) == {"k.wav"}  # the unfinished MP4 was a temporary: nothing half-written is left


def test_encoder_crash_mid_way_falls_back_to_the_next_writer(tmp_path):
    """Frames that can be read again are encoded again with the next writer; the note says why."""
    result = encode_video(moving_frames(60, h=96, w=128), tmp_path / "k.mp4", FPS, tone(8.0), 16000,
                          progress=_ffmpeg_killer(10))
    assert result.writer != "ffmpeg" and any("ffmpeg writer failed" in n for n in result.notes)
    p = probe(result.path)
    assert p.frames == 60 and p.audio_codec == "aac" and result.has_audio
    assert listing(tmp_path) == {"k.mp4"}


def test_interrupt_keeps_a_playable_file_of_the_frames_so_far(tmp_path):
    checks = []

    def interrupt():
        checks.append(1)
        return len(checks) > 20

    with pytest.raises(EncodingInterrupted) as err:
        write_video(moving_frames(50), tmp_path / "i.mp4", FPS, tone(3.0), 16000, interrupt=interrupt)
    assert err.value.frames == 20 and err.value.path == str(tmp_path / "i.mp4")
    assert "interrupted after 20 frames" in str(err.value)
    p = probe(err.value.path)
    assert p.frames == 20 and p.video_codec == "h264"
    assert abs(p.audio_duration - 20 / FPS) <= 1 / FPS  # the audio stops with the video
    assert listing(tmp_path) == {"i.mp4"}


def test_host_interrupt_exception_is_reraised_after_saving(tmp_path):
    class HostInterrupt(Exception):
        pass

    count = [0]

    def interrupt():
        count[0] += 1
        if count[0] > 5:
            raise HostInterrupt()
        return False

    with pytest.raises(HostInterrupt):
        write_video(moving_frames(30), tmp_path / "h.mp4", FPS, interrupt=interrupt)
    assert probe(tmp_path / "h.mp4").frames == 5


def test_interrupt_before_the_first_frame_leaves_nothing(tmp_path):
    with pytest.raises(EncodingInterrupted) as err:
        write_video(moving_frames(5), tmp_path / "n.mp4", FPS, interrupt=lambda: True)
    assert err.value.path is None and err.value.frames == 0
    assert listing(tmp_path) == set()
