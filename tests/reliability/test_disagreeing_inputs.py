"""WanAnimate inputs that disagree are refused before any model call (or, for frame rates, resampled to the pose
video's and said so), never silently combined: a face video at another rate or length, an empty or full person
mask, a mask of another size, a face video that is not square, NaN/Inf pixels."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from sampling_fakes import FakeVAE

from wanvideo.errors import InputError, NonFiniteError
from wanvideo.sampling.animate import AnimateSettings, generate_animate
from wanvideo.sampling.animate_checks import resample_to_rate
from wanvideo.tiny import tiny_animate_models

N, H, W = 17, 64, 48


class CountingModel(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config, self.main_device, self.compute_dtype = model.config, model.main_device, model.compute_dtype
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


@pytest.fixture(scope="module")
def tiny():
    models = tiny_animate_models(seed=3)
    models.vae = FakeVAE(record=False)
    return models


def _inputs(**changes):
    rng = np.random.default_rng(0)
    person = np.zeros((N, H, W, 3), np.float32)
    person[:, 16:48, 12:36] = 1.0
    out = dict(image=torch.rand(1, H, W, 3), pose=torch.rand(N, H, W, 3), face=torch.rand(N, 32, 32, 3),
               background=torch.from_numpy(rng.random((N, H, W, 3), dtype=np.float32)),
               mask=torch.from_numpy(person))
    out.update(changes)
    return out


def _run(tiny, tmp_path, replace=True, **changes):
    given = _inputs(**changes)
    model = CountingModel(tiny.dit)
    extra = dict(background=given["background"], mask=given["mask"]) if replace else {}
    try:
        generate_animate(model, tiny.vae, given["image"], tiny.clip_fea, given["pose"], given["face"],
                         context=tiny.context, context_null=tiny.context_null,
                         settings=AnimateSettings(clip_len=13, steps=1, width=48, height=64),
                         store_root=str(tmp_path), **extra)
    finally:
        assert model.calls == 0 or not changes  # a refused input never reached the model


@pytest.mark.parametrize("what, change, error, words", [
    ("empty mask", dict(mask=torch.zeros(N, H, W, 3)), InputError, "the person mask is empty"),
    ("full mask", dict(mask=torch.ones(N, H, W, 3)), InputError, "the person mask is full"),
    ("mask of another size", dict(mask=torch.ones(N, H // 2, W // 2, 3) * 0.5), InputError,
     "the person mask is 24x32 but the background video is 48x64"),
    ("face not square", dict(face=torch.rand(N, 32, 24, 3)), InputError, "the face video is 24x32, not square"),
    ("face shorter", dict(face=torch.rand(N // 2, 32, 32, 3)), InputError, "the driving videos differ in length"),
    ("NaN face", dict(face=torch.full((N, 32, 32, 3), float("nan"))), NonFiniteError, "the face video holds"),
    ("Inf pose", dict(pose=torch.full((N, H, W, 3), float("inf"))), NonFiniteError, "the pose video holds"),
    ("NaN image", dict(image=torch.full((1, H, W, 3), float("nan"))), NonFiniteError, "the character image holds"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_disagreeing_inputs_are_refused_before_any_model_call(tiny, tmp_path, what, change, error, words):
    with pytest.raises(error, match=words):
        _run(tiny, tmp_path, **change)
    assert not any(tmp_path.iterdir())


def test_a_face_video_at_half_the_pose_rate_is_resampled_to_it(caplog):
    face_15 = torch.arange(45).float().view(45, 1, 1, 1).expand(45, 4, 4, 3)  # 3 s at 15 fps
    with caplog.at_level(logging.WARNING):
        face_30 = resample_to_rate(face_15, 15.0, 30.0, "face")
    assert len(face_30) == 90  # 3 s at 30 fps: the face keeps time with the pose
    assert face_30[:, 0, 0, 0].tolist()[:6] == [0, 0, 1, 1, 2, 2]
    assert "the face video is at 15 fps, the pose video at 30 fps: resampled" in caplog.text
    same = resample_to_rate(face_15, 30.0, 30.0, "face")
    assert same is face_15


def test_the_command_line_resamples_a_face_video_at_another_rate(tmp_path):
    from testlib import MEDIA

    from wanvideo.app.animate_pipeline import _at_pose_rate
    from wanvideo.app.media import read_video
    from wanvideo.video import write_video

    face, fps = read_video(str(MEDIA / "animate_face_3s.mp4"))
    slow = tmp_path / "face_15.mp4"
    write_video(face[::2], str(slow), fps / 2, writer="pyav")
    frames = _at_pose_rate(str(slow), fps, "face")
    assert len(frames) == len(face)
