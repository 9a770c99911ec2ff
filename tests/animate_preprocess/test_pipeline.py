"""The preprocessing runs: the official end-to-end fixture, frame rates, missing person/face, bad inputs."""
import copy
import logging

import numpy as np
import pytest
from PIL import Image
from testlib import MEDIA
from testlib.preprocess_fixtures import DETECTOR, META_KEYS, POSE, differing_fraction, load, png
from testlib.synthetic_person import person_clip, person_frame

from wanvideo import animate_preprocess as ap
from wanvideo.animate_preprocess.pipeline import preprocess_animate, preprocess_replace
from wanvideo.errors import InputError

DET, PO = str(DETECTOR), str(POSE)


@pytest.fixture(scope="module")
def e2e():
    fix = load("b")
    frames = [png(fix, f"input.e2e.src_frame.{i}.png") for i in range(17)]
    character = png(fix, "input.e2e.character.png")
    return fix, frames, character, preprocess_animate(frames, 25.0, character, DET, PO)


def test_end_to_end_animation_matches_official(e2e):
    fix, _, _, out = e2e
    np.testing.assert_array_equal(out["frame_indices"], fix["output.e2e.frame_indices"])
    assert differing_fraction(out["character"], png(fix, "output.e2e.character_resized.png")) <= 1e-3
    for key in META_KEYS:
        np.testing.assert_allclose(out["character_meta"][key], fix[f"output.e2e.character_meta.{key}"], atol=1e-5)
        np.testing.assert_allclose(np.stack([m[key] for m in out["metas"]]), fix[f"output.e2e.metas.{key}"],
                                   atol=1e-5)
    boxes = np.array([ap.face_bbox(m, (832, 480)) for m in out["metas"]])
    np.testing.assert_array_equal(boxes, fix["output.e2e.face_bbox"])
    assert out["face"].shape == (20, 512, 512, 3) and out["pose"].shape == (20, 1248, 720, 3)
    for t in range(20):
        assert differing_fraction(out["face"][t], png(fix, f"output.e2e.face.{t}.png")) <= 1e-3
        assert differing_fraction(out["pose"][t], png(fix, f"output.e2e.pose.{t}.png")) <= 1e-3


def test_retarget_matches_official_and_leaves_arguments(e2e):
    fix, _, _, out = e2e
    metas, character_meta = out["metas"], out["character_meta"]
    kept = copy.deepcopy((metas, character_meta))
    poses = ap.retarget_pose(metas[0], character_meta, metas)
    for key in ("kps_body", "kps_lhand", "kps_rhand"):
        got, want = np.stack([p[key] for p in poses]), fix[f"output.e2e.retarget.{key}"]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), atol=2e-3)
    for key in ("kps_body_p", "kps_lhand_p", "kps_rhand_p", "size_wh"):
        np.testing.assert_allclose(np.stack([p[key] for p in poses]), fix[f"output.e2e.retarget.{key}"], atol=1e-6)
    for before, after in zip(kept[0] + [kept[1]], metas + [character_meta], strict=True):
        for key in META_KEYS:
            np.testing.assert_array_equal(before[key], after[key])
    image = ap.render_retargeted(poses[3], 1248, 720)
    assert differing_fraction(image, png(fix, "output.e2e.pose.3.png")) <= 1e-3


@pytest.mark.parametrize("video_fps,frames,expected", [(25.0, 20, 24), (60.0, 30, 15)])
def test_driving_fps_resampled_to_30(video_fps, frames, expected):
    clip = person_clip(frames)
    out = preprocess_animate(clip, video_fps, person_frame(0), DET, PO, resolution_area=(128, 224))
    idx = out["frame_indices"]
    assert len(idx) == expected and out["fps"] == 30
    np.testing.assert_array_equal(idx, np.round(np.arange(expected) / 30 * video_fps).astype(int))
    if video_fps == 60:
        np.testing.assert_array_equal(idx, np.arange(0, 30, 2))
    assert out["pose"].shape[0] == out["face"].shape[0] == expected
    assert out["pose"].shape[1:] == out["character"].shape and out["pose"].any()


def test_frames_are_streamed_to_a_sink():
    seen = []
    out = preprocess_animate(person_clip(6), 30.0, person_frame(0), DET, PO, resolution_area=(128, 224),
                             sink=lambda name, t, image: seen.append((name, t, image.shape)))
    assert "pose" not in out and "face" not in out
    assert [t for n, t, _ in seen if n == "face"] == list(range(6))
    assert [t for n, t, _ in seen if n == "pose"] == list(range(6))


def test_no_person_in_the_clip_is_a_clear_error():
    clip = np.stack([person_frame(t, present=False) for t in range(5)])
    with pytest.raises(InputError, match="No person was found"):
        preprocess_animate(clip, 30.0, person_frame(0), DET, PO, resolution_area=(128, 224))


def test_frames_without_a_person_are_logged(caplog):
    clip = person_clip(6)
    clip[2] = person_frame(2, present=False)
    with caplog.at_level(logging.WARNING, logger="wanvideo"):
        out = preprocess_animate(clip, 30.0, person_frame(0), DET, PO, resolution_area=(128, 224))
    assert out["pose"].shape[0] == 6
    assert "no person detected in 1 of 6 frames" in caplog.text


def test_missing_face_reuses_the_last_box_and_says_so(caplog):
    clip = person_clip(3)
    metas = ap.estimate_poses(clip, DET, PO)
    broken = copy.deepcopy(metas)
    broken[1]["keypoints_face"][:, :2] = 0.5  # every face point in one place: an empty box
    assert ap.face_bbox(broken[1], clip.shape[1:3]) == (0, 0, 0, 0)  # the official code fails here
    with caplog.at_level(logging.WARNING, logger="wanvideo"):
        crops = ap.face_crops(clip, broken)
    assert "no face found in 1 of 3 frames" in caplog.text
    assert crops.shape == (3, 512, 512, 3)
    box = ap.face_bbox(metas[0], clip.shape[1:3])
    np.testing.assert_array_equal(crops[1], ap.face_crops([clip[1]], [metas[0]])[0])
    assert box[1] > box[0]


def test_character_with_alpha_is_used_as_rgb(caplog):
    rgba = np.asarray(Image.open(MEDIA / "portrait_rgba_641x641.png"))
    assert rgba.shape[2] == 4
    with caplog.at_level(logging.INFO, logger="wanvideo"):
        out = preprocess_animate(person_clip(3), 30.0, rgba, DET, PO, resolution_area=(256, 256))
    assert "alpha channel is ignored" in caplog.text
    assert out["character"].shape == (256, 256, 3) and out["pose"].shape == (3, 256, 256, 3)


def test_mismatched_frame_sizes_are_a_clear_error():
    frames = [person_frame(0), person_frame(1, height=160, width=96)]
    with pytest.raises(InputError, match="all frames of a clip must have one size"):
        preprocess_animate(frames, 30.0, person_frame(0), DET, PO, resolution_area=(128, 224))


def test_replacement_with_the_pose_hull_fallback(caplog):
    clip = person_clip(5)
    with caplog.at_level(logging.WARNING, logger="wanvideo"):
        out = preprocess_replace(clip, 30.0, person_frame(0), DET, PO, resolution_area=(128, 224))
    assert "replacement masks are pose hulls" in caplog.text
    t, h, w = out["mask"].shape[:3]
    assert (t, h % 16, w % 16) == (5, 0, 0)
    assert out["background"].shape == out["pose"].shape == out["mask"].shape == (5, h, w, 3)
    assert out["character"].shape == (h, w, 3)
    assert set(np.unique(out["mask"])) == {0, 255}
    person = out["mask"][..., 0] > 0
    assert 0.02 < person.mean() < 0.9
    assert not out["background"][person].any()  # the person is blacked out of the background


def test_hull_mask_follows_the_points():
    meta = ap.estimate_poses([person_frame(0)], DET, PO)[0]
    mask = ap.pose_hull_mask(meta, 208, 120)
    assert mask.shape == (208, 120) and mask.dtype == np.uint8 and mask.sum() > 100
    ys, xs = np.nonzero(mask)
    assert 20 < xs.mean() < 100
