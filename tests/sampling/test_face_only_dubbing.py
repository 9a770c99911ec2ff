"""Face-only dubbing: only the masked region changes; outside it the output is the source's pixels, the latent is
blended with the noised source at every step, the face box follows a moving face, bad masks are refused early."""
import numpy as np
import pytest
import torch

from wanvideo.audio import AudioEmbeddings
from wanvideo.errors import InputError
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling import edit_mask as edit_mask_module
from wanvideo.sampling.conditioning import ReferenceFrames
from wanvideo.sampling.edit_mask import feathered, latent_mask, prepare_edit_region
from wanvideo.sampling.face_box import face_boxes
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


def _moving_face_clip(frames=12, h=96, w=160):
    """A drawn face (skin ellipse with eyes and mouth) moving right over a blue background; its centre per frame."""
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    clip, centres = [], []
    for i in range(frames):
        cx, cy = 40.0 + 6 * i, 44.0 + (i % 3)
        img = torch.empty(h, w, 3)
        img[:] = torch.tensor([0.25, 0.35, 0.6])
        face = ((xx - cx) / 16) ** 2 + ((yy - cy) / 21) ** 2 <= 1
        img[face] = torch.tensor([0.91, 0.75, 0.63])
        for ex in (cx - 6, cx + 6):
            img[((xx - ex) ** 2 + (yy - cy + 5) ** 2) <= 4] = torch.tensor([0.2, 0.3, 0.15])
        img[(abs(xx - cx) <= 6) & (abs(yy - cy - 10) <= 1)] = torch.tensor([0.7, 0.2, 0.25])
        clip.append(img)
        centres.append((cy, cx))
    return torch.stack(clip), centres


def test_the_face_box_follows_a_moving_face():
    clip, centres = _moving_face_clip()
    boxes = face_boxes(ReferenceFrames(clip), len(clip))
    for (top, left, bottom, right), (cy, cx) in zip(boxes, centres, strict=True):
        assert abs((left + right) / 2 - cx) <= 3 and abs((top + bottom) / 2 - cy) <= 3
        assert 24 <= right - left <= 40 and 34 <= bottom - top <= 50
    settings = SamplerSettings(face_only=True, face_margin=0.25)
    region = prepare_edit_region(None, settings, ReferenceFrames(clip), 96, 160)
    first, last = region.frame_mask(0), region.frame_mask(len(clip) - 1)
    (cy0, cx0), (cy1, cx1) = centres[0], centres[-1]
    assert first[int(cy0), int(cx0)] == 1 and first[int(cy1), int(cx1)] == 0
    assert last[int(cy1), int(cx1)] == 1 and last[int(cy0), int(cx0) - 12] == 0
    assert last[5, 5] == 0 and last[90, 150] == 0  # the background stays outside


def test_face_only_without_a_face_is_a_clear_error():
    with pytest.raises(InputError, match="no face"):
        face_boxes(ReferenceFrames(torch.full((3, 32, 32, 3), 0.2)), 3)


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
