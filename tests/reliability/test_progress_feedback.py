"""Long steps say how far they are at least every few seconds: the speech embedding on the command line logs its
progress (before, "embedding the speech" was followed by minutes of silence)."""
from __future__ import annotations

import logging

from testlib import MEDIA

from wanvideo.app import cli
from wanvideo.progress_log import PROGRESS_EVERY_S, logged_progress


def test_progress_is_logged_every_few_seconds_and_at_the_end(caplog):
    now = [0.0]
    report = logged_progress("embedding the speech", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="wanvideo"):
        for step in range(1, 101):
            now[0] = step * 0.25  # 25 s of work in 100 steps
            report(step, 100)
    lines = [r.getMessage() for r in caplog.records if "embedding the speech" in r.getMessage()]
    assert 7 <= len(lines) <= 9  # every 3 s of 25 s, plus the end
    assert lines[-1].startswith("embedding the speech: 100%")
    assert PROGRESS_EVERY_S <= 5


def test_the_command_line_reports_the_speech_embedding(tmp_path, monkeypatch, capsys):
    import wanvideo.audio

    seen = {}

    def embed(*args, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # enough: the embedding was asked for, with a progress report

    monkeypatch.setattr(wanvideo.audio, "build_audio_embeddings", embed)
    code = cli.main(["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio",
                     str(MEDIA / "speech_en_mono16k.wav"), "--output", str(tmp_path / "o.mp4"), "--quiet",
                     "--max-frames", "9"])
    assert code == 130
    assert callable(seen.get("callback")) and seen.get("frame_limit") == 9


