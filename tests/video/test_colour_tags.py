"""Every MP4/WebM says how to show its colours: BT.709 matrix, primaries and transfer, limited range.

Read back from the finished file twice: PyAV's view of the stream, and the ffmpeg program's own stream
summary (what players and `ffprobe` report), for each format and for the ffmpeg and PyAV writers.
"""
import subprocess

import av
import numpy as np
import pytest
from video_testutils import moving_frames

from wanvideo.video import encode_video, ffmpeg_locate

FORMATS = [("h264-mp4", "mp4"), ("h265-mp4", "mp4"), ("vp9-webm", "webm")]
BT709, LIMITED = 1, 1  # the ISO/IEC 23091-2 code points (AVCOL_SPC/PRI/TRC_BT709, AVCOL_RANGE_MPEG)


def _tags(path):
    with av.open(str(path)) as container:
        cc = container.streams.video[0].codec_context
        return int(cc.colorspace), int(cc.color_primaries), int(cc.color_trc), int(cc.color_range)


def _ffmpeg_summary(path) -> str:
    """The 'Stream #0:0 ... Video: ...' line the ffmpeg program prints for the file."""
    exe = ffmpeg_locate.find_ffmpeg()
    out = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return next(line for line in out.splitlines() if "Video:" in line)


@pytest.mark.parametrize("writer", ["ffmpeg", "pyav"])
@pytest.mark.parametrize("fmt,ext", FORMATS)
def test_every_format_tags_bt709_matrix_primaries_transfer_and_limited_range(tmp_path, monkeypatch, fmt, ext, writer):
    if writer == "pyav":
        monkeypatch.setattr(ffmpeg_locate, "usable_ffmpegs", lambda: [])
    result = encode_video(moving_frames(6, h=64, w=64), tmp_path / f"c.{ext}", 25, format=fmt)
    assert result.writer == writer
    assert _tags(result.path) == (BT709, BT709, BT709, LIMITED)
    # ffmpeg prints "yuv420p(tv, bt709, ...)" only when matrix, primaries and transfer are all BT.709;
    # with primaries/transfer unknown it prints "bt709/unknown/unknown".
    summary = _ffmpeg_summary(result.path)
    assert "yuv420p(tv, bt709" in summary and "unknown" not in summary, summary


def test_colour_tags_match_the_pixels(tmp_path):
    """The tags describe what is stored: pure red has BT.709 limited-range luma (BT.601 would be 82)."""
    red = np.zeros((3, 32, 32, 3), np.uint8)
    red[..., 0] = 255
    result = encode_video(red, tmp_path / "red.mp4", 25)
    with av.open(str(result.path)) as c:
        luma = next(c.decode(video=0)).to_ndarray(format="yuv420p")[:32].mean()
    assert luma == pytest.approx(63, abs=1)
    assert _tags(result.path) == (BT709, BT709, BT709, LIMITED)
