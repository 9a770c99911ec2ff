"""Face-only dubbing: only the masked region changes; outside it the output is the source's pixels, the latent is
blended with the noised source at every step, the face box (the WanAnimate detector path, with the stand-in ONNX
models) follows a moving face, missing detector files and bad masks are refused early."""
import numpy as np
import pytest
import torch
from testlib.preprocess_fixtures import DETECTOR, POSE

from wanvideo.animate_preprocess import PreprocessModels
from wanvideo.audio import AudioEmbeddings
from wanvideo.errors import InputError, ModelFileError
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling import edit_mask as edit_mask_module
from wanvideo.sampling.conditioning import ReferenceFrames
from wanvideo.sampling.edit_mask import feathered, latent_mask, prepare_edit_region
from wanvideo.sampling.face_box import face_boxes, face_models_for, fill_and_smooth
from wanvideo.tiny import tiny_models

H, W = 48, 64
SOURCE_FRAMES = 20
SPEECH_FRAMES = 29  # longer than the clip: the last source frame conditions the rest, as in plain dubbing
SETTINGS = dict(width=W, height=H, frame_window=17, motion_frames=5, steps=3, cfg=1.0, audio_cfg=2.0,
                color_correction=0.0)


@pytest.fixture(scope="module")
def models():
    return tiny_models(seed=0)


def _source(frames=SOURCE_FRAMES):
    """A textured clip whose content moves, uint8 [n, H, W, 3]."""
    g = torch.Generator().manual_seed(4)
    base = torch.rand(H, W + frames, 3, generator=g)
    clip = torch.stack([base[:, i:i + W] for i in range(frames)])
    return (clip * 255).round().to(torch.uint8).numpy()


def _box_mask(frames=1):
    mask = torch.zeros(frames, H, W)
    mask[:, 12:36, 20:44] = 1.0
    return mask


def _embeds(models, frames=SPEECH_FRAMES):
    cfg = models.dit.config
    g = torch.Generator().manual_seed(3)
    return AudioEmbeddings(speakers=[torch.randn(frames, cfg["audio_layers"], cfg["audio_channels"], generator=g)],
                           fps=25.0, waveform=torch.zeros(frames * 640), sample_rate=16000)


def _run(models, root, source, model=None, **kw):
    mask = kw.pop("edit_mask", None)
    return generate(model or models.dit, models.vae, source, models.clip_fea, audio=_embeds(models),
                    context=models.context, context_null=models.context_null, store_root=str(root),
                    settings=SamplerSettings(**SETTINGS, **kw), edit_mask=mask)


def _expected_source(source, count):
    return np.stack([source[min(i, len(source) - 1)] for i in range(count)])


def test_outside_the_mask_the_output_is_the_source_inside_it_is_generated(models, tmp_path):
    source = _source()
    store = _run(models, tmp_path, source, edit_mask=_box_mask())
    out = store.read_frames()
    assert out.shape == (SPEECH_FRAMES, H, W, 3)  # as long as the new speech
    expected = _expected_source(source, SPEECH_FRAMES)
    inside = _box_mask()[0].bool().numpy()
    assert np.array_equal(out[:, ~inside], expected[:, ~inside])
    diff = np.abs(out[:, inside].astype(int) - expected[:, inside].astype(int))
    assert diff.mean() > 10  # the tiny model's (noise) picture, not the source
    # today's dubbing (no mask) changes the outside too: the mask is what keeps it
    plain = _run(models, tmp_path / "plain", source).read_frames()
    assert np.abs(plain[:, ~inside].astype(int) - expected[:, ~inside].astype(int)).mean() > 10


def test_a_mask_per_frame_follows_each_frame(models, tmp_path):
    source = _source()
    masks = torch.zeros(SOURCE_FRAMES, H, W)
    for i in range(SOURCE_FRAMES):
        masks[i, 10:30, i:i + 24] = 1.0  # the region moves right one pixel per frame
    out = _run(models, tmp_path, source, edit_mask=masks).read_frames()
    expected = _expected_source(source, SPEECH_FRAMES)
    for f in (0, 7, SOURCE_FRAMES - 1, SPEECH_FRAMES - 1):
        outside = ~masks[min(f, SOURCE_FRAMES - 1)].bool().numpy()
        assert np.array_equal(out[f][outside], expected[f][outside]), f


def test_the_latent_blend_runs_at_every_step_with_the_noised_source(models, tmp_path, monkeypatch):
    edits, inputs = [], []
    real_window = edit_mask_module.EditRegion.window
    monkeypatch.setattr(edit_mask_module.EditRegion, "window",
                        lambda self, *a, **kw: edits.append(real_window(self, *a, **kw)) or edits[-1])

    class Recording(torch.nn.Module):
        def __init__(self, dit):
            super().__init__()
            self.dit, self.config, self.main_device = dit, dit.config, dit.main_device

        def forward(self, x, t, **kwargs):
            inputs.append((x[0].clone(), float(t.reshape(-1)[0])))
            return self.dit(x, t, **kwargs)

    store = _run(models, tmp_path, _source(), model=Recording(models.dit), edit_mask=_box_mask())
    steps = SETTINGS["steps"]
    assert len(edits) == store.num_windows == 2
    for edit in edits:
        assert edit.steps_blended == list(range(steps + 1))  # before every step, and the clean end
        assert 0 < float(edit.keep.mean()) < 1
    # what the model saw at each step of window 1: outside the mask, the source latent at that step's noise level
    first = edits[0]
    for step in range(steps):
        x, t = inputs[step * 2]  # two passes per step (cond, drop_audio), one by one
        sigma = float(first.sigmas[step])
        assert abs(sigma * 1000 - t) < 1e-3
        noised = (1 - sigma) * first.source_latent + sigma * first.noise
        keep = first.keep.bool()[None].expand_as(x).clone()
        keep[:, :1] = False  # latent frame 0 is the motion latent (kept clean, as without a mask)
        assert torch.allclose(x[keep], noised[keep], atol=1e-6)
        assert not torch.allclose(x[~keep], noised[~keep], atol=1e-3) or step == 0


def test_feathered_mask_is_zero_outside_and_soft_inside():
    hard = torch.zeros(1, 40, 40)
    hard[0, 10:30, 10:30] = 1
    soft = feathered(hard, 3)
    assert torch.equal(soft[hard == 0], torch.zeros_like(soft[hard == 0]))
    assert soft[0, 20, 20] == 1 and 0 < soft[0, 10, 20] < 1
    assert torch.equal(feathered(hard, 0), hard)
    big = torch.zeros(5, 80, 80)
    big[:, 10:30, 10:30] = 1  # latent cells 1..3 (8 px each), grown by one cell: 0..4
    lat = latent_mask(big, (2, 10, 10))
    assert lat.shape == (2, 10, 10) and lat[0, :5, :5].sum() == 25 and lat[0].sum() == 25 and lat[1].sum() == 25


def test_composite_matches_the_colour_in_the_seam_band():
    hard = torch.zeros(1, 32, 32)
    hard[0, 8:24, 8:24] = 1
    src = torch.zeros(3, 1, 32, 32)
    gen = torch.full((3, 1, 32, 32), 0.3)  # a uniform colour shift inside the face
    edit = edit_mask_module.WindowEdit(hard, feathered(hard, 2), src, torch.zeros(16, 1, 4, 4),
                                       torch.zeros(16, 1, 4, 4), torch.tensor([1.0, 0.0]))
    out = edit.composite(gen)
    assert torch.equal(out[:, :, hard[0] == 0], src[:, :, hard[0] == 0])
    assert out.abs().max() < 1e-6  # the shift is matched away: no visible seam


def _figure_frame(cx: float, h: int, w: int, present: bool = True) -> np.ndarray:
    """A drawn person (head, body) centred at x = cx on a plain background (what the stand-in detector follows)."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = (0.25, 0.35, 0.6)
    if present:
        img[(abs(xx - cx) <= h * 0.11) & (yy >= h * 0.31) & (yy <= h * 0.94)] = (0.8, 0.3, 0.2)
        img[((xx - cx) / (h * 0.08)) ** 2 + ((yy - h * 0.22) / (h * 0.1)) ** 2 <= 1] = (0.91, 0.75, 0.63)
    return (img * 255).round().astype(np.uint8)


def _moving_figure_clip(frames=8, h=160, w=256, step=20.0, absent=()):
    """uint8 [frames, h, w, 3]: the figure moving right `step` px per frame (no one in the `absent` frames)."""
    centres = [60.0 + step * i for i in range(frames)]
    return np.stack([_figure_frame(c, h, w, i not in absent) for i, c in enumerate(centres)]), centres


@pytest.fixture(scope="module")
def face_models():
    return PreprocessModels(detector=str(DETECTOR), pose=str(POSE))


class _CountingFrames(ReferenceFrames):
    """Records the order frames are read in (the face search must read each once, one at a time)."""

    def __init__(self, frames):
        super().__init__(frames)
        self.reads = []

    def rgb(self, index):
        self.reads.append(index)
        return super().rgb(index)


def test_the_face_box_follows_a_moving_face_frame_by_frame(face_models):
    clip, centres = _moving_figure_clip()
    frames, done = _CountingFrames(clip), []
    boxes = face_boxes(frames, len(clip), face_models, progress=lambda d, t: done.append((d, t, len(frames.reads))))
    assert frames.reads == list(range(len(clip)))  # each frame once, in order
    assert done == [(i + 1, len(clip), i + 1) for i in range(len(clip))]  # progress after every frame
    for (top, left, bottom, right), cx in zip(boxes, centres, strict=True):
        assert abs((left + right) / 2 - cx) <= 8, (left, right, cx)  # the box is on the head, wherever it goes
        assert top < 0.32 * 160 and bottom < 0.45 * 160 and 8 <= right - left <= 40  # the head, not the body
    settings = SamplerSettings(face_only=True, face_margin=0.25)
    region = prepare_edit_region(None, settings, ReferenceFrames(clip), 160, 256, face_models)
    first, last = region.frame_mask(0), region.frame_mask(len(clip) - 1)
    head_y = int(0.22 * 160)
    assert first[head_y, int(centres[0])] == 1 and first[head_y, int(centres[-1])] == 0
    assert last[head_y, int(centres[-1])] == 1 and last[head_y, int(centres[0])] == 0
    assert last[150, 5] == 0 and last[120, int(centres[-1])] == 0  # background and body stay outside


def test_a_frame_without_a_face_takes_the_box_between_its_neighbours(face_models):
    clip, centres = _moving_figure_clip(absent=(3, 4))
    boxes = face_boxes(ReferenceFrames(clip), len(clip), face_models)
    full, _ = _moving_figure_clip()
    expected = face_boxes(ReferenceFrames(full), len(full), face_models)
    for i in (3, 4):  # interpolated from frames 2 and 5: on the path of the head, within a few pixels
        assert abs((boxes[i, 1] + boxes[i, 3]) / 2 - centres[i]) <= 10
        assert np.abs(boxes[i] - expected[i]).max() <= 10
    assert fill_and_smooth([None, (0, 0, 10, 10), None, None, (0, 30, 10, 40), None])[:, 1].tolist() == \
        [0.0, 0.0, 10.0, 20.0, 30.0, 30.0]  # ends: the nearest face; between: linear, then the 5-frame median


def test_face_only_without_a_person_is_a_clear_error(face_models):
    grey = np.full((3, 64, 96, 3), 128, np.uint8)
    with pytest.raises(InputError, match="found no person with a face in any of the 3 source frames"):
        face_boxes(ReferenceFrames(grey), 3, face_models)


def test_missing_detector_files_are_named_before_any_model_work(models, tmp_path):
    calls = []
    handle = models.dit.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ModelFileError) as error:
            face_models_for(None, SamplerSettings(face_only=True), [str(tmp_path)])
        with pytest.raises(ModelFileError):  # the engine called without the files: the same named error
            _run(models, tmp_path, _source(), face_only=True)
    finally:
        handle.remove()
    text = str(error.value)
    assert "yolov10m.onnx" in text and "vitpose_h_wholebody.onnx" in text and "huggingface.co" in text
    assert str(tmp_path) in text and "edit_mask" in text and "needs no model file" in text
    assert not calls and not list(tmp_path.iterdir())
    # a given mask wins over face_only and needs no model file
    assert face_models_for(_box_mask(), SamplerSettings(face_only=True), []) is None


def test_face_only_run_keeps_the_source_outside_the_face(models, tmp_path, face_models):
    clip = np.stack([_figure_frame(20 + i, H, W) for i in range(SOURCE_FRAMES)])  # the figure walks right
    seen = []
    store = generate(models.dit, models.vae, clip, models.clip_fea, audio=_embeds(models), context=models.context,
                     context_null=models.context_null, store_root=str(tmp_path),
                     settings=SamplerSettings(**SETTINGS, face_only=True, face_margin=0.25),
                     face_models=face_models, on_progress=seen.append)
    faces = [p for p in seen if p.stage == "face"]
    assert [p.chunk for p in faces] == list(range(1, SOURCE_FRAMES + 1)) and faces[0].chunks == SOURCE_FRAMES
    out = store.read_frames()
    assert out.shape == (SPEECH_FRAMES, H, W, 3)
    region = prepare_edit_region(None, SamplerSettings(face_only=True, face_margin=0.25), ReferenceFrames(clip),
                                 H, W, face_models)
    expected = _expected_source(clip, SPEECH_FRAMES)
    for f in range(SPEECH_FRAMES):
        inside = region.frame_mask(f).bool().numpy()
        assert 0 < inside.sum() < inside.size / 2, f  # a face box, not the whole frame
        assert np.array_equal(out[f][~inside], expected[f][~inside]), f
        assert np.abs(out[f][inside].astype(int) - expected[f][inside].astype(int)).mean() > 10, f
    assert region.frame_mask(0)[:, 15:30].sum() > 0 and region.frame_mask(0)[:, 45:].sum() == 0


@pytest.mark.parametrize("mask, settings, frames, message", [
    (torch.ones(1, H, W + 16), {}, SOURCE_FRAMES, "80x48 but the source video is 64x48"),
    (torch.ones(3, H, W), {}, SOURCE_FRAMES, "has 3 frames"),
    (torch.zeros(H, W), {}, SOURCE_FRAMES, "empty"),
    (torch.ones(H, W), {}, 1, "is for dubbing"),
    (None, {"face_only": True}, 1, "face_only is for dubbing"),
    (torch.ones(2, 3, H, W), {}, SOURCE_FRAMES, "one mask"),
])
def test_bad_masks_are_refused_before_any_work(models, tmp_path, mask, settings, frames, message):
    source = _source()[:frames]
    calls = []
    handle = models.dit.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(InputError, match=message):
            _run(models, tmp_path, source if frames > 1 else source[0], edit_mask=mask, **settings)
    finally:
        handle.remove()
    assert not calls and not any(tmp_path.iterdir())


def test_an_all_one_mask_is_todays_full_frame_dubbing(models, tmp_path):
    source = _source()
    full = _run(models, tmp_path / "a", source, edit_mask=torch.ones(H, W))
    plain = _run(models, tmp_path / "b", source)
    assert full.path.rsplit("/", 1)[1] == plain.path.rsplit("/", 1)[1]
    assert np.array_equal(full.read_frames(), plain.read_frames())
