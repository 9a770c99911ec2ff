"""WanAnimate on the window loop: tiny end-to-end runs of both modes over the shared driving clip (exact length
and frame rate), resume after a stop without recomputing finished clips, y assembly against the fixtures,
input checks."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sampling_fakes import FakeVAE

from wanvideo.errors import InputError
from wanvideo.sampling.animate import AnimateSettings, generate_animate, i2v_mask, latent_person_mask
from wanvideo.sampling.settings import GenerationInterrupted
from wanvideo.tiny import tiny_animate_models, tiny_models

# Small and fast: 48x80 output (about the pose video's aspect), 13-frame clips, 1 step.
FAST = dict(clip_len=13, steps=1, width=48, height=80)


@pytest.fixture(scope="module")
def tiny():
    """The tiny WanAnimate DiT with a lossless block VAE (the real tiny VAE runs in the command-line test)."""
    models = tiny_animate_models(seed=3)
    models.vae = FakeVAE(record=False)
    return models


@pytest.fixture(scope="module")
def driving(request):
    from testlib import MEDIA

    from wanvideo.app.pipeline import read_image, read_video

    out = {"image": read_image(str(MEDIA / "portrait_480x832.png"))}
    for name in ("pose", "face", "background", "mask"):
        out[name], out[name + "_fps"] = read_video(str(MEDIA / f"animate_{name}_3s.mp4"))
    return out


class CountingModel(torch.nn.Module):
    """The tiny DiT, counting its forward calls (what a resumed run must not repeat)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config, self.main_device, self.compute_dtype = model.config, model.main_device, model.compute_dtype
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def _run(tiny, driving, tmp_path, replace=False, model=None, **settings):
    extra = dict(background=driving["background"], mask=driving["mask"]) if replace else {}
    return generate_animate(model or tiny.dit, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"],
                            driving["face"], context=tiny.context, context_null=tiny.context_null,
                            settings=AnimateSettings(**{**FAST, **settings}), store_root=str(tmp_path), **extra)


@pytest.mark.parametrize("replace", [False, True], ids=["animation", "replacement"])
def test_mode_end_to_end_has_the_driving_length_rate_and_sound(tiny, driving, tmp_path, replace):
    from testlib import MEDIA

    from wanvideo.app.media import read_audio
    from wanvideo.video import write_video

    assert len(driving["pose"]) == 90 and driving["pose_fps"] == 30
    progress = []
    store = generate_animate(
        tiny.dit, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
        background=driving["background"] if replace else None, mask=driving["mask"] if replace else None,
        context=tiny.context, context_null=tiny.context_null,
        settings=AnimateSettings(**FAST, fps=driving["pose_fps"], refert_frames=5 if replace else 1),
        store_root=str(tmp_path), on_progress=progress.append)
    frames = store.read_frames()
    assert store.complete and len(store) == 90 and frames.shape == (90, 80, 48, 3)
    assert store.fps == 30.0
    assert frames.std() > 1.0  # real pictures, not a constant
    assert progress[0].text == f"clip 1/{store.num_windows}" and progress[-1].step == FAST["steps"]
    # the MP4 Video Combine writes: the driving length and rate, with the pose video's sound
    sound, rate = read_audio(str(MEDIA / "animate_pose_3s.mp4"))
    path = write_video(store.iter_frames(), str(tmp_path / "out.mp4"), store.fps, audio=sound, sample_rate=rate)
    with av.open(path) as container:
        video = container.streams.video[0]
        assert sum(1 for _ in container.decode(video)) == 90 and float(video.average_rate) == 30.0
        assert len(container.streams.audio) == 1


def test_guidance_adds_the_no_face_pass(tiny, driving, tmp_path):
    counting = CountingModel(tiny.dit)
    store = _run(tiny, driving, tmp_path, model=counting, cfg=2.0, max_frames=13)
    assert store.num_windows == 1 and counting.calls == 2 * FAST["steps"]


def test_stopped_run_resumes_without_recomputing_finished_clips(tiny, driving, tmp_path):
    reference = _run(tiny, driving, tmp_path / "whole", max_frames=25).read_frames()  # 2 clips of 13 (refert 1)
    counting = CountingModel(tiny.dit)
    stop_after = {"clips": 0}

    def done(index, store):
        stop_after["clips"] += 1

    with pytest.raises(GenerationInterrupted, match="clip 2/2"):
        generate_animate(counting, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
                         context=tiny.context, context_null=tiny.context_null,
                         settings=AnimateSettings(**FAST, max_frames=25), store_root=str(tmp_path / "run"),
                         should_stop=lambda: stop_after["clips"] >= 1, on_window_done=done)
    assert counting.calls == FAST["steps"]
    counting.calls = 0
    store = generate_animate(counting, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
                             context=tiny.context, context_null=tiny.context_null,
                             settings=AnimateSettings(**FAST, max_frames=25), store_root=str(tmp_path / "run"))
    assert counting.calls == FAST["steps"]  # clip 2 only
    np.testing.assert_array_equal(store.read_frames(), reference)


def test_a_damaged_middle_clip_is_made_again_alone_from_the_refert_frames_kept_before_it(tiny, driving, tmp_path):
    import os

    counting = CountingModel(tiny.dit)  # (the same model object both times: the same run key)
    first = _run(tiny, driving, tmp_path, model=counting, max_frames=37)  # 3 clips of 13 (refert 1)
    reference = first.read_frames()
    assert first.num_windows == 3 and counting.calls == 3 * FAST["steps"]
    segment = os.path.join(first.path, "window_00001.mkv")
    with open(segment, "r+b") as f:  # one byte flipped: same size, only the checksum tells
        f.seek(os.path.getsize(segment) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    counting.calls = 0
    store = _run(tiny, driving, tmp_path, model=counting, max_frames=37)
    assert counting.calls == FAST["steps"]  # clip 2 only: clips 1 and 3 are reused
    np.testing.assert_array_equal(store.read_frames(), reference)


def test_y_mask_assembly_matches_the_fixture(fixtures_dir):
    t = load_file(str(fixtures_dir / "animate_b.safetensors"))
    lat_mask = latent_person_mask(t["aux.mask_images"].float() / 255.0)
    torch.testing.assert_close(lat_mask, t["aux.latent_mask"][0])
    lat_t, lat_h, lat_w = t["aux.y_reft_latent"].shape[1:]
    torch.testing.assert_close(i2v_mask(lat_t, lat_h, lat_w, 5, lat_mask), t["input.y"][:4, 1:])
    a = load_file(str(fixtures_dir / "animate_a.safetensors"))
    lat_t, lat_h, lat_w = a["aux.y_reft_latent"].shape[1:]
    torch.testing.assert_close(i2v_mask(lat_t, lat_h, lat_w, 0), a["input.y"][:4, 1:])


def test_input_problems_are_explained(tiny, driving, tmp_path, caplog):
    i2v = tiny_models(seed=0).dit
    with pytest.raises(InputError, match="not Wan2.2-Animate"):
        generate_animate(i2v, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
                         store_root=str(tmp_path))
    with pytest.raises(InputError, match="both the background video and the person mask"):
        generate_animate(tiny.dit, tiny.vae, driving["image"], tiny.clip_fea, driving["pose"], driving["face"],
                         background=driving["background"], store_root=str(tmp_path))
    with pytest.raises(InputError, match="the driving videos differ in length \\(pose 90, face 20"):
        _run(tiny, {**driving, "face": driving["face"][:20]}, tmp_path)
    with pytest.raises(InputError, match="the face video is .*, not square"):
        _run(tiny, {**driving, "face": driving["face"][:, :, :400]}, tmp_path)
    with caplog.at_level(logging.WARNING):  # one frame apart: a rounding of the preprocessing, the shortest is used
        store = _run(tiny, {**driving, "face": driving["face"][:-1]}, tmp_path)
    assert len(store) == len(driving["pose"]) - 1 and "differ in length" in caplog.text
