"""Without a usable ffmpeg program: PyAV, then cv2, then imageio still leave a playable file, and say so."""
import logging
import os

import pytest
from video_testutils import listing, moving_frames, probe, tone

from wanvideo.errors import VideoWriteError
from wanvideo.video import encode_video, ffmpeg_locate, write_video
from wanvideo.video.fallback_writers import Cv2Writer, PyAVWriter

FPS = 25


@pytest.fixture
def no_ffmpeg(monkeypatch):
    monkeypatch.setattr(ffmpeg_locate, "usable_ffmpegs", lambda: [])


@pytest.fixture
def no_pyav(monkeypatch, no_ffmpeg):
    monkeypatch.setattr(PyAVWriter, "available", staticmethod(lambda fmt, with_audio: "PyAV disabled for this test"))


@pytest.fixture
def no_cv2(monkeypatch, no_pyav):
    monkeypatch.setattr(Cv2Writer, "available", staticmethod(lambda fmt, with_audio: "cv2 disabled for this test"))


def test_pyav_takes_over_with_sound_and_metadata(tmp_path, no_ffmpeg):
    result = encode_video(moving_frames(25), tmp_path / "a.mp4", FPS, tone(2.0), 16000, metadata={"workflow": {"n": 1}})
    assert result.writer == "pyav" and result.browser_playable
    p = probe(result.path)
    assert p.video_codec == "h264" and p.pix_fmt == "yuv420p" and p.frames == 25
    assert p.audio_codec == "aac" and abs(p.audio_duration - 1.0) <= 1 / FPS
    assert "no ffmpeg program found" in result.notes[0]
    assert listing(tmp_path) == {"a.mp4"}


def test_cv2_fallback_writes_a_playable_file_and_says_it_may_not_play_in_browsers(tmp_path, no_pyav, caplog):
    with caplog.at_level(logging.INFO, logger="wanvideo.video"):
        result = encode_video(moving_frames(25), tmp_path / "c.mp4", FPS)
    assert result.writer == "cv2"
    p = probe(result.path)
    assert p.frames == 25 and p.fps == pytest.approx(FPS)
    assert "cv2" in caplog.text and "may not play in browsers" in caplog.text
    assert "imageio-ffmpeg" in caplog.text and "WANVIDEO_FFMPEG" in caplog.text  # how to fix it


def test_imageio_fallback_writes_a_playable_file(tmp_path, no_cv2, caplog):
    with caplog.at_level(logging.INFO, logger="wanvideo.video"):
        result = encode_video(moving_frames(25, h=47, w=63), tmp_path / "i.mp4", FPS)
    assert result.writer == "imageio"
    p = probe(result.path)
    assert p.frames == 25 and p.video_codec == "h264"
    assert "imageio" in caplog.text


def test_fallback_without_audio_support_keeps_silent_video_and_wav(tmp_path, no_pyav):
    with pytest.raises(VideoWriteError) as err:
        write_video(moving_frames(25), tmp_path / "s.mp4", FPS, tone(3.0), 16000)
    video, wav = str(tmp_path / "s.mp4"), str(tmp_path / "s.wav")
    assert video in str(err.value) and wav in str(err.value)
    assert listing(tmp_path) == {"s.mp4", "s.wav"}
    assert probe(video).frames == 25
    w = probe(wav)
    assert w.audio_duration == pytest.approx(1.0, abs=1e-3)  # fitted to the 25 frames written


def test_explicit_writer_choice(tmp_path):
    assert encode_video(moving_frames(10), tmp_path / "x.webm", FPS, writer="cv2").writer == "cv2"
    assert probe(tmp_path / "x.webm").video_codec == "vp9"  # cv2's VP90 WebM does play in browsers


def test_no_writer_at_all_is_a_clear_error(tmp_path, no_cv2, monkeypatch):
    from wanvideo.video.fallback_writers import ImageioWriter

    monkeypatch.setattr(ImageioWriter, "available", staticmethod(lambda fmt, with_audio: "imageio disabled"))
    with pytest.raises(VideoWriteError, match="no writer can encode h264-mp4.*imageio-ffmpeg"):
        write_video(moving_frames(5), tmp_path / "n.mp4", FPS)
    assert not os.path.exists(tmp_path / "n.mp4")
