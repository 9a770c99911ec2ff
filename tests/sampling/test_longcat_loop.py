"""The LongCat-Video-Avatar long-video loop on the tiny model set: segments on disk, resume, Cancel, progress."""
import numpy as np
import pytest
import torch

from wanvideo.audio.longcat_embeds import longcat_audio_embeds
from wanvideo.errors import InputError
from wanvideo.options import LongCatSettings
from wanvideo.sampling.longcat import generate_longcat, segment_windows
from wanvideo.sampling.settings import GenerationInterrupted
from wanvideo.tiny.longcat import tiny_longcat_models

SETTINGS = LongCatSettings(width=48, height=80)


@pytest.fixture(scope="module")
def tiny():
    models = tiny_longcat_models(seed=0)
    wave = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.1
    return models, longcat_audio_embeds(models.whisper, wave, 16000)


IMAGE = np.random.default_rng(1).integers(0, 255, (96, 160, 3), dtype=np.uint8)


def _run(tiny, root, **kw):
    models, audio = tiny
    return generate_longcat(models.dit, models.vae, IMAGE, audio, context=models.context,
                            context_null=models.context_null, settings=kw.pop("settings", SETTINGS),
                            store_root=str(root), **kw)


def test_segments_follow_the_official_layout():
    windows = segment_windows(413, 93, 13)
    assert [w.start for w in windows] == [0, 80, 160, 240, 320]
    assert [w.drop for w in windows] == [0, 13, 13, 13, 13]
    assert sum(w.keep for w in windows) == 413
    short = segment_windows(125, 93, 13)
    assert [(w.length, w.keep) for w in short] == [(93, 93), (93, 32)]


def test_resumed_run_equals_uninterrupted(tiny, tmp_path):
    """Cancel after the first segment, rerun: the frames equal an uninterrupted run's; progress covers each step."""
    whole = _run(tiny, tmp_path / "whole")
    assert len(whole) == tiny[1].num_frames == 125 and whole.complete
    reports, done = [], []
    with pytest.raises(GenerationInterrupted, match="resumes"):
        _run(tiny, tmp_path / "cut", on_progress=reports.append, should_stop=lambda: bool(done),
             on_window_done=lambda i, store: done.append(i))
    assert done == [0]
    assert [(p.window, p.step) for p in reports][:9] == [(1, i) for i in range(9)]
    assert reports[-1].text == "segment 2/2"
    resumed = _run(tiny, tmp_path / "cut")
    assert resumed.complete and len(resumed) == 125
    assert np.array_equal(resumed.read_frames(), whole.read_frames())


def test_max_frames_and_color_correction(tiny, tmp_path):
    base = _run(tiny, tmp_path / "a", settings=LongCatSettings(width=48, height=80, max_frames=20))
    corrected = _run(tiny, tmp_path / "b", settings=LongCatSettings(width=48, height=80, max_frames=20,
                                                                     color_correction=1.0))
    assert len(base) == 20
    assert not np.array_equal(base.read_frames(), corrected.read_frames())


def test_wrong_inputs_named_before_work(tiny, tmp_path):
    models, audio = tiny
    with pytest.raises(InputError, match="LongCat audio"):
        generate_longcat(models.dit, models.vae, IMAGE, torch.zeros(10, 5, 16), store_root=str(tmp_path))
    with pytest.raises(InputError, match="exactly 8 steps"):
        _run(tiny, tmp_path, settings=LongCatSettings(steps=4))
    with pytest.raises(InputError, match="text embeddings"):
        generate_longcat(models.dit, models.vae, IMAGE, audio, context=torch.zeros(1, 5, 7), store_root=str(tmp_path))
