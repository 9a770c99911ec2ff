"""Each unit group of the official WanAnimate preprocessing fixture, reproduced through the public API."""
import numpy as np
import pytest
from testlib.preprocess_fixtures import DETECTOR, META_KEYS, differing_fraction, load, png

from wanvideo import animate_preprocess as ap


@pytest.fixture(scope="module")
def fix():
    return load("a")


@pytest.mark.parametrize("i", range(4))
def test_detector_boxes_and_person(fix, i):
    frame = png(fix, f"input.det.frame.{i}.png")
    boxes = ap.detector_postprocess(fix[f"input.det.raw.{i}"], frame.shape[:2])
    expected = fix[f"output.det.boxes.{i}"]
    assert boxes.dtype == np.float64 and boxes.shape == expected.shape
    if len(expected):
        assert np.abs(boxes[:, :4] - expected[:, :4]).max() <= 1
        np.testing.assert_allclose(boxes[:, 4:], expected[:, 4:], atol=1e-6)
    person = ap.select_person(boxes, frame.shape[:2])
    np.testing.assert_allclose(person, fix[f"output.det.person.{i}"], atol=1e-6)
    # Through the whole path: the stand-in detector run by our own session.
    np.testing.assert_allclose(ap.detect_person(frame, str(DETECTOR)), fix[f"output.det.person.{i}"], atol=1)


def test_uniform_frame_falls_back_to_whole_frame(fix):
    frame = png(fix, "input.det.frame.3.png")
    assert ap.detect_person(frame, str(DETECTOR)).tolist() == [0, 0, frame.shape[1], frame.shape[0], -1]


def test_raw_layout_is_read_like_the_end_to_end_layout(fix):
    # The same candidates written as a raw [1,84,8400] output (cx, cy, w, h + 80 class scores).
    rows = fix["input.det.raw.0"][0]
    raw = np.zeros((1, 84, 8400), np.float32)
    raw[0, 0] = np.pad((rows[:, 0] + rows[:, 2]) / 2, (0, 8100))
    raw[0, 1] = np.pad((rows[:, 1] + rows[:, 3]) / 2, (0, 8100))
    raw[0, 2] = np.pad(rows[:, 2] - rows[:, 0], (0, 8100))
    raw[0, 3] = np.pad(rows[:, 3] - rows[:, 1], (0, 8100))
    raw[0, 4 + rows[:, 5].astype(int), np.arange(300)] = rows[:, 4]
    frame_hw = png(fix, "input.det.frame.0.png").shape[:2]
    boxes = ap.detector_postprocess(raw, frame_hw)
    expected = fix["output.det.boxes.0"]
    assert boxes.shape == expected.shape
    assert np.abs(boxes[:, :4] - expected[:, :4]).max() <= 1
    np.testing.assert_allclose(ap.select_person(boxes, frame_hw), fix["output.det.person.0"], atol=1)


def test_pose_crop(fix):
    frame = png(fix, "input.crop.frame.png")
    before = frame.copy()
    crop, center, scale = ap.pose_crop(frame, fix["input.crop.bbox"])
    assert crop.dtype == np.float32 and crop.shape == (3, 256, 192)
    np.testing.assert_allclose(crop, fix["output.crop.crop"], atol=1e-4)
    np.testing.assert_array_equal(center, fix["output.crop.center"])
    np.testing.assert_array_equal(scale, fix["output.crop.scale"])
    np.testing.assert_array_equal(frame, before)


@pytest.mark.parametrize("group,prefix", [("crop", "input.crop."), ("decode_synth", "input.decode_synth.")])
def test_decode_heatmaps(fix, group, prefix):
    if group == "crop":
        heatmaps = fix["input.crop.heatmaps"].astype(np.float32)
        center, scale = fix["input.crop.decode_center"], fix["input.crop.decode_scale"]
    else:
        heatmaps, center, scale = fix[prefix + "heatmaps"], fix[prefix + "center"], fix[prefix + "scale"]
    kept = heatmaps.copy()
    points, scores = ap.decode_heatmaps(heatmaps, center, scale)
    np.testing.assert_allclose(points, fix[f"output.{group}.points"], atol=2e-3)
    np.testing.assert_allclose(scores, fix[f"output.{group}.prob"], atol=1e-6)
    np.testing.assert_array_equal(heatmaps, kept)


def test_pose_metas_reuse_previous_body(fix):
    kp2ds = fix["input.metas.kp2ds"]
    metas = ap.pose_metas_from_keypoints(kp2ds, 480, 832)
    for key in META_KEYS:
        np.testing.assert_allclose(np.stack([m[key] for m in metas]), fix[f"output.metas.{key}"], atol=1e-5)
    assert metas[0]["width"] == 480 and metas[0]["height"] == 832
    np.testing.assert_array_equal(metas[1]["keypoints_body"], metas[0]["keypoints_body"])


@pytest.mark.parametrize("i", range(2))
def test_render_pose(fix, i):
    height, width = (int(v) for v in fix[f"input.render.{i}.size_hw"])
    meta = {k: fix[f"input.render.{i}.{k}"] for k in META_KEYS}
    meta.update(width=width, height=height)
    image = ap.render_pose(meta, height, width)
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)
    assert differing_fraction(image, png(fix, f"output.render.{i}.png")) <= 1e-3
    assert image.any()


SETTINGS = [(7, 3, 1, 1), (7, 3, 2, 3), (5, 1, 1, 1)]


@pytest.mark.parametrize("j", range(3))
@pytest.mark.parametrize("i", range(2))
def test_replacement_masks(fix, i, j):
    k, iterations, w_len, h_len = SETTINGS[j]
    mask = png(fix, f"input.mask.mask.{i}.png")
    kept = mask.copy()
    dilated = ap.mask_body(mask, k, iterations)
    assert differing_fraction(dilated, png(fix, f"output.mask.{j}.{i}.dilated.png")) <= 1e-3
    aug = ap.replacement_mask(mask, k, iterations, w_len, h_len)
    assert differing_fraction(aug, png(fix, f"output.mask.{j}.{i}.aug.png")) <= 1e-3
    np.testing.assert_array_equal(ap.aug_mask(dilated, w_len, h_len), aug)
    np.testing.assert_array_equal(mask, kept)
    if i == 0:
        frame = png(fix, "input.mask.frame.png")
        assert differing_fraction(frame * (1 - aug[:, :, None]), png(fix, f"output.mask.{j}.{i}.bg.png")) <= 1e-3


def test_iterations_zero_keeps_the_mask(fix):
    mask = png(fix, "input.mask.mask.0.png")
    np.testing.assert_array_equal(ap.replacement_mask(mask, iterations=0, w_len=3, h_len=3), mask)


def test_sam2_prompts(fix):
    body, size_wh = fix["input.sam2_prompts.keypoints_body"], fix["input.sam2_prompts.size_wh"]
    metas = [{"keypoints_body": body[t], "width": int(size_wh[t][0]), "height": int(size_wh[t][1])}
             for t in range(len(body))]
    prompts = ap.sam2_prompts(metas)
    assert len(prompts) == 1
    frame_idx, points = prompts[0]
    assert frame_idx.dtype == np.int64 and points.dtype == np.int32
    np.testing.assert_array_equal(frame_idx, fix["output.sam2_prompts.0.frame_idx"])
    np.testing.assert_array_equal(points, fix["output.sam2_prompts.0.points"])


@pytest.mark.parametrize("n,expected", [
    (403, [[0, 100, 200, 300], [0]]),      # second chunk of 3 frames: one key frame
    (400, [[0, 100, 200, 300]]),           # an empty second chunk is skipped
    (21, [[0, 5, 10, 15, 20]]),            # 21 // 4 = 5 does not divide 21: five key frames
    (4, [[0]]),
])
def test_sam2_prompt_chunks(n, expected):
    body = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    metas = [{"keypoints_body": body, "width": 64, "height": 48} for _ in range(n)]
    assert [p[0].tolist() for p in ap.sam2_prompts(metas)] == expected
