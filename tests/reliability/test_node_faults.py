"""The nodes under bad input: a clear error in seconds, nothing half-written in ComfyUI's output folder,
never a white, black or silent-but-'with sound' video."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from reliability_utils import names
from video_testutils import probe
from wanvideo_infinitetalk_pack.nodes.audio_nodes import InfiniteTalkAudioEmbeds
from wanvideo_infinitetalk_pack.nodes.video_combine import InfiniteTalkVideoCombine
from wanvideo_infinitetalk_pack.wanvideo.audio.tiny import tiny_wav2vec2
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError, NonFiniteError
from wanvideo_infinitetalk_pack.wanvideo.video.frame_store import FrameStore, FrameStoreError


def _combine(**kwargs):
    args = dict(frame_rate=25.0, filename_prefix="InfiniteTalk/talk", format="h264-mp4", crf=19,
                length_policy="fit_audio_to_video", save_output=True, save_metadata=False, prompt=None,
                extra_pnginfo=None, unique_id="1")
    args.update(kwargs)
    return InfiniteTalkVideoCombine().combine(**args)


def _ramp_images(n=6, h=32, w=48) -> torch.Tensor:
    row = torch.linspace(0, 1, w)
    return row.view(1, 1, w, 1).expand(n, h, w, 3).clone()


def test_audio_node_with_a_1_hz_sample_rate_is_refused_at_once():
    encoder = tiny_wav2vec2(seed=0)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"sample rate 1 Hz is outside the supported 1000\.\.768000 Hz"):
        InfiniteTalkAudioEmbeds().embed(encoder, {"waveform": torch.rand(1, 1, 600), "sample_rate": 1})
    assert time.monotonic() - started < 5


def test_video_combine_refuses_nan_images_and_leaves_no_file(comfy_dirs):
    out, _ = comfy_dirs
    images = _ramp_images()
    images[2, 5, 5, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        _combine(images=images)
    assert names(out) == set()


def test_video_combine_float_images_in_0_255_are_not_white(comfy_dirs):
    result = _combine(images=_ramp_images() * 255)
    path = result["result"][0]
    assert abs(float(np.mean(probe(path, keep_frames=True).decoded)) - 127.5) < 5


def test_video_combine_with_a_1_hz_audio_rate_is_refused(comfy_dirs):
    out, _ = comfy_dirs
    with pytest.raises(InputError, match="outside the supported"):
        _combine(images=_ramp_images(), audio={"waveform": torch.zeros(1, 1, 5), "sample_rate": 1})
    assert names(out) == set()


def test_video_combine_reports_sound_read_back_from_the_file(comfy_dirs):
    audio = {"waveform": torch.rand(1, 1, 16000) * 0.2, "sample_rate": 16000}
    result = _combine(images=_ramp_images(25), audio=audio)
    details = result["ui"]["infinitetalk_video"][0]
    p = probe(result["result"][0])
    assert details["has_audio"] is True and p.audio_codec == "aac" and details["frames"] == p.frames == 25


def test_video_combine_with_a_damaged_frame_store_names_the_segment(comfy_dirs, tmp_path):
    out, _ = comfy_dirs
    store = FrameStore.open_for_run(str(tmp_path / "frames"), "abcdef1234", width=48, height=32, fps=25.0,
                                    total_frames=6, num_windows=1)
    store.write_window(0, (_ramp_images().numpy() * 255).astype(np.uint8))
    store.mark_complete()
    store.release()
    segment = os.path.join(store.path, "window_00000.mkv")
    with open(segment, "r+b") as f:
        f.truncate(40)
    with pytest.raises(FrameStoreError, match="window_00000.mkv (is damaged|holds fewer frames).*run the sampler again"):
        _combine(frames=FrameStore(store.path))
    assert names(out) == set()
