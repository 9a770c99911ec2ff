"""What a user checks on the saved file: codec, pixel format, frame count, duration, sound, metadata."""
import logging

import numpy as np
import pytest
import torch
from video_testutils import comfy_metadata_mp4, comfy_metadata_webm, listing, moving_frames, probe, psnr, tone

from wanvideo.video import encode_video, write_video

FPS = 25
FRAME = 1 / FPS


def test_h264_mp4_with_sound_is_one_browser_ready_file(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = listing(out_dir)
    frames = moving_frames(50)
    workflow = {"last_node_id": 3, "nodes": [{"id": 1, "type": "LoadImage"}], "extra": {"note": "x=y;z#\\\n"}}
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}
    path = write_video(frames, out_dir / "talk.mp4", FPS, tone(3.0), 16000,
                       metadata={"workflow": workflow, "prompt": prompt})

    assert listing(out_dir) - before == {"talk.mp4"}  # exactly one new file, no intermediate left
    assert listing(out_dir) == {"talk.mp4"}
    p = probe(path)
    assert p.video_codec == "h264" and p.codec_tag == "avc1"
    assert p.pix_fmt == "yuv420p"
    assert (p.width, p.height) == (64, 48)
    assert p.frames == 50
    assert p.video_duration == pytest.approx(50 / FPS)
    assert p.audio_codec == "aac"
    assert abs(p.audio_duration - p.video_duration) <= FRAME  # 3 s of speech cut to the 2 s video
    # +faststart: the index (moov) comes before the media data, so a browser starts playing at once.
    data = open(path, "rb").read()
    assert data.find(b"moov") < data.find(b"mdat")
    # What ComfyUI's front end reads from a dropped MP4.
    assert comfy_metadata_mp4(path) == {"workflow": workflow, "prompt": prompt}


def test_short_audio_is_padded_to_the_video(tmp_path):
    p = probe(write_video(moving_frames(50), tmp_path / "a.mp4", FPS, tone(0.7), 16000))
    assert p.frames == 50
    assert abs(p.audio_duration - 2.0) <= FRAME


def test_float_tensor_frames_keep_their_colours(tmp_path):
    src = moving_frames(25)
    images = torch.from_numpy(src).float() / 255.0  # ComfyUI IMAGE: float32 [N,H,W,3] in 0..1
    p = probe(write_video(images, tmp_path / "f.mp4", FPS, crf=12), keep_frames=True)
    assert p.frames == 25
    quality = np.mean([psnr(a, b) for a, b in zip(p.decoded, src, strict=False)])
    # ~34-35 dB is the ceiling here (4:2:0 chroma on 64×48 frames); a wrong colour matrix or a
    # truncating float conversion costs several dB.
    assert quality > 32, f"decoded frames differ from the source (PSNR {quality:.1f} dB)"


def test_colours_are_bt709_and_tagged_so_browsers_show_them_right(tmp_path):
    import av

    red = np.zeros((3, 32, 32, 3), np.uint8)
    red[..., 0] = 255
    with av.open(str(write_video(red, tmp_path / "red.mp4", FPS))) as c:
        frame = next(c.decode(video=0))
        luma = frame.to_ndarray(format="yuv420p")[:32].mean()
        assert int(frame.colorspace) == 1 and int(frame.color_range) == 1  # BT.709, limited range
    assert luma == pytest.approx(63, abs=1)  # BT.709 limited-range Y of pure red (BT.601 would be 82)


def test_a_stream_of_unknown_length_gets_exact_audio(tmp_path):
    src = moving_frames(37)
    calls = []

    def frames():
        for f in src:
            yield f

    p = probe(write_video(frames(), tmp_path / "g.mp4", FPS, tone(5.0, 22050, 2), 22050,
                          progress=lambda done, total: calls.append((done, total))))
    assert p.frames == 37
    assert calls == [(i, None) for i in range(1, 38)]
    assert p.audio_channels == 2
    assert abs(p.audio_duration - 37 / FPS) <= FRAME


def test_trim_video_to_audio(tmp_path):
    p = probe(write_video(moving_frames(50), tmp_path / "t.mp4", FPS, tone(1.0), 16000,
                          length_policy="trim_video_to_audio"))
    assert p.frames == 25
    assert abs(p.audio_duration - 1.0) <= FRAME


def test_odd_size_is_padded_to_even_and_logged(tmp_path, caplog):
    frames = moving_frames(10, h=47, w=63)
    with caplog.at_level(logging.INFO, logger="wanvideo.video"):
        result = encode_video(frames, tmp_path / "odd.mp4", FPS)
    p = probe(result.path, keep_frames=True)
    assert (p.width, p.height) == (64, 48) == (result.width, result.height)
    assert "padded to 64×48" in caplog.text
    assert psnr(p.decoded[0][:47, :63], frames[0]) > 25  # the picture itself is kept (not scaled)


def test_audio_cleanup_nan_and_many_channels_any_rate(tmp_path, caplog):
    audio = tone(2.0, 11025, channels=4)
    audio[1, 100:200] = np.nan
    audio[2, 5] = np.inf
    with caplog.at_level(logging.INFO, logger="wanvideo.video"):
        p = probe(write_video(moving_frames(25), tmp_path / "n.mp4", FPS, audio, 11025))
    assert "101 NaN/Inf samples" in caplog.text
    assert "downmixed to mono" in caplog.text
    assert p.audio_codec == "aac" and p.audio_channels == 1
    assert abs(p.audio_duration - 1.0) <= FRAME


def test_int16_audio_and_60fps(tmp_path):
    audio = (tone(1.0, 8000) * 32767).astype(np.int16)
    p = probe(write_video(moving_frames(30), tmp_path / "i.mp4", 60, audio, 8000))
    assert p.frames == 30 and p.fps == pytest.approx(60)
    assert abs(p.audio_duration - 0.5) <= 1 / 60


def test_h265_mp4(tmp_path):
    # (x265 needs 64x64 at least: tests/reliability/test_video_writer_faults.py)
    p = probe(write_video(moving_frames(25, h=64), tmp_path / "h.mp4", FPS, tone(1.0), 16000, format="h265-mp4",
                          metadata={"workflow": {"nodes": []}}))
    assert p.video_codec == "hevc" and p.codec_tag == "hvc1"  # hvc1: the tag Safari/Chrome need for HEVC in MP4
    assert p.pix_fmt == "yuv420p" and p.frames == 25
    assert p.audio_codec == "aac" and abs(p.audio_duration - 1.0) <= FRAME
    assert comfy_metadata_mp4(tmp_path / "h.mp4") == {"workflow": {"nodes": []}}


def test_vp9_webm_with_opus_and_workflow(tmp_path):
    workflow = {"nodes": [{"id": 7}], "links": []}
    path = write_video(moving_frames(25), tmp_path / "w.webm", FPS, tone(2.0, 44100), 44100, crf=30,
                       metadata={"workflow": workflow, "prompt": {"7": {}}})
    p = probe(path)
    assert p.container.startswith("matroska") and p.video_codec == "vp9" and p.pix_fmt == "yuv420p"
    assert p.frames == 25
    assert p.audio_codec == "opus" and abs(p.audio_duration - 1.0) <= FRAME
    assert comfy_metadata_webm(path) == {"workflow": workflow, "prompt": {"7": {}}}


def test_big_workflow_goes_through_a_pipe_not_the_command_line(tmp_path):
    # ~400 KB: far past Linux's 128 KB limit for one command-line argument.
    workflow = {"nodes": [{"id": i, "widgets_values": ["x" * 200]} for i in range(2000)]}
    path = write_video(moving_frames(5), tmp_path / "big.mp4", FPS, metadata={"workflow": workflow})
    assert comfy_metadata_mp4(path)["workflow"] == workflow


def test_temp_file_mode_for_hosts_without_inherited_pipes(tmp_path):
    temp = tmp_path / "temp"
    path = write_video(moving_frames(40), tmp_path / "win.mp4", FPS, tone(3.0), 16000, use_fd_pipes=False,
                       temp_dir=str(temp), metadata={"workflow": {"a": 1}})
    p = probe(path)
    assert p.frames == 40 and abs(p.audio_duration - 1.6) <= FRAME
    assert comfy_metadata_mp4(path) == {"workflow": {"a": 1}}
    assert listing(temp) == set()  # its temp audio/metadata files were removed


@pytest.mark.parametrize("make", [np.asarray, torch.tensor], ids=["numpy", "torch"])
def test_float_frames_are_rounded_and_saturated(make):
    from wanvideo.video.frames import FramesToEncode

    # small overshoots (resampling, rounding) are clipped; far-off ranges are detected (tests/reliability)
    values = [-0.03, 0.0, 0.2, 0.5, 1.0, 1.04]
    frame = np.array(values * 6, np.float32).reshape(1, 6, 6, 1).repeat(3, axis=-1)
    out = next(FramesToEncode(make(frame)).frames())
    assert out.dtype == np.uint8 and out.shape == (6, 6, 3) and out.flags.c_contiguous
    assert out[0, :6, 0].tolist() == [0, 0, 51, 128, 255, 255]


def test_grayscale_and_rgba_frames(tmp_path):
    gray = [np.full((16, 16), 200, np.uint8)] * 3
    rgba = np.zeros((3, 16, 16, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 7
    p = probe(write_video(gray, tmp_path / "g.mp4", FPS), keep_frames=True)
    assert p.frames == 3 and abs(int(p.decoded[0][8, 8, 0]) - 200) <= 3
    p = probe(write_video(rgba, tmp_path / "a.mp4", FPS), keep_frames=True)
    assert p.frames == 3 and abs(int(p.decoded[0][8, 8, 1]) - 200) <= 4 and p.decoded[0][8, 8, 0] < 10
