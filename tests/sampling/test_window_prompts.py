"""A prompt per window: the recorded contexts per window, the run key, and a resume after changing one prompt."""
import json
import logging

import numpy as np
import pytest
import torch
from sampling_fakes import CONFIG, FakeDiT, FakeVAE, row_embeddings, row_target_velocity

from wanvideo.errors import InputError
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.window_prompts import split_prompts

H, W = 32, 48
FRAMES = 41  # frame_window 17, motion 9: windows start at 0, 8, 16, 24 -> 4 windows


def _settings(**kw):
    base = dict(frame_window=17, motion_frames=9, steps=2, shift=7.0, cfg=5.0, audio_cfg=4.0, width=W, height=H,
                color_correction=0.0)
    base.update(kw)
    return SamplerSettings(**base)


def _prompt(value: float):
    """A text embedding whose every number is `value` (so a recorded context says which prompt it is)."""
    return torch.full((1, 4, CONFIG["text_dim"]), float(value))


NEGATIVE = torch.full((1, 3, CONFIG["text_dim"]), -1.0)


def _velocity():
    """The row-coding velocity, shifted by the prompt: a window's pixels depend on its prompt."""
    rows = row_target_velocity()

    def velocity(x, t, context, clip_fea, y, audio, masks):
        shift = 0.05 * context[:, :1, :1].float().mean()
        return rows(x, t, context, clip_fea, y, audio, masks) - shift / (t.float().view(-1, 1, 1, 1, 1) / 1000.0)

    return velocity


def _run(root, prompts, model=None, **kw):
    model = model or FakeDiT(_velocity())
    image = torch.full((1, H, W, 3), 0.4)
    store = generate(model, FakeVAE(record=False), image, torch.zeros(1, 257, CONFIG["clip_dim"]),
                     audio=row_embeddings(FRAMES), context=prompts, context_null=NEGATIVE,
                     settings=_settings(**kw), store_root=str(root))
    return store, model


def _cond_prompt_per_window(model, steps=2, passes=3):
    """The value of the cond pass's context (which prompt) in each window, from the recorded calls."""
    calls = [c for i, c in enumerate(model.calls) if i % passes == 0]  # cond is the first pass of each step
    per_step = [float(c["context"].mean()) for c in calls]
    return [per_step[i] for i in range(0, len(per_step), steps)], per_step


def test_split_prompts():
    assert split_prompts("a calm face | smiles |turns to the camera ") == ["a calm face", "smiles",
                                                                         "turns to the camera"]
    assert split_prompts("one prompt") == ["one prompt"]
    assert split_prompts(None) is None and split_prompts("  ") is None
    with pytest.raises(InputError, match=r"prompt 2 of 3 .* is empty"):
        split_prompts("a || c")


def test_prompt_k_conditions_window_k_and_the_last_the_windows_after(tmp_path):
    store, model = _run(tmp_path, [_prompt(1), _prompt(2)])
    assert store.num_windows == 4 and store.complete
    per_window, per_step = _cond_prompt_per_window(model)
    assert per_window == [1.0, 2.0, 2.0, 2.0]
    assert per_step == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # every step of a window, not only the first
    # the passes without the positive prompt keep the negative one in every window
    others = [float(c["context"].mean()) for i, c in enumerate(model.calls) if i % 3]
    assert others and all(v == -1.0 for v in others)


def test_more_prompts_than_windows_uses_the_first_ones(tmp_path):
    store, model = _run(tmp_path, [_prompt(v) for v in (1, 2, 3, 4, 5, 6)])
    assert _cond_prompt_per_window(model)[0] == [1.0, 2.0, 3.0, 4.0]


def test_one_prompt_in_a_list_is_todays_run(tmp_path):
    single, _ = _run(tmp_path / "a", _prompt(1))
    listed, model = _run(tmp_path / "b", [_prompt(1)])
    assert single.path.rsplit("/", 1)[1] == listed.path.rsplit("/", 1)[1]  # the same run key
    assert np.array_equal(single.read_frames(), listed.read_frames())
    manifest = json.loads(open(f"{listed.path}/manifest.json").read())
    assert "window_keys" not in manifest


def test_changing_prompt_3_reuses_windows_1_2_and_regenerates_from_3(tmp_path, caplog):
    root = tmp_path / "run"
    first, _ = _run(root, [_prompt(1), _prompt(2), _prompt(3)])
    before = first.read_frames()
    windows = json.loads(open(f"{first.path}/manifest.json").read())["windows"]
    kept = windows[0]["frames"] + windows[1]["frames"]

    with caplog.at_level(logging.INFO, logger="wanvideo"):
        again, model = _run(root, [_prompt(1), _prompt(2), _prompt(7)])
    assert again.path == first.path  # the same store: resumed, not started afresh
    assert "the prompt of window 3 changed: windows 1-2 are reused" in caplog.text
    assert _cond_prompt_per_window(model)[0] == [7.0, 7.0]  # only windows 3 and 4 were made
    after = again.read_frames()
    assert np.array_equal(after[:kept], before[:kept])
    assert not np.array_equal(after[kept:], before[kept:])
    straight, _ = _run(tmp_path / "straight", [_prompt(1), _prompt(2), _prompt(7)])
    assert np.array_equal(after, straight.read_frames())  # what an uninterrupted run with the new prompts makes

    # the same prompts again: nothing to do
    done, model = _run(root, [_prompt(1), _prompt(2), _prompt(7)])
    assert model.num_calls == 0 and np.array_equal(done.read_frames(), after)


def test_changing_the_first_prompt_remakes_everything_and_other_inputs_start_afresh(tmp_path):
    root = tmp_path / "run"
    first, _ = _run(root, [_prompt(1), _prompt(2)])
    again, model = _run(root, [_prompt(5), _prompt(2)])
    assert again.path == first.path and _cond_prompt_per_window(model)[0] == [5.0, 2.0, 2.0, 2.0]
    other, model = _run(root, [_prompt(5), _prompt(2)], seed=9)  # another seed: another run key
    assert other.path != first.path and model.num_calls == 4 * 2 * 3


def test_bad_prompt_lists_are_refused_before_any_work(tmp_path):
    model = FakeDiT(_velocity())
    with pytest.raises(InputError, match="empty list"):
        _run(tmp_path, [], model=model)
    with pytest.raises(InputError, match="positive prompt 2"):
        _run(tmp_path, [_prompt(1), torch.zeros(1, 4, CONFIG["text_dim"] + 1)], model=model)
    assert model.num_calls == 0 and not any(tmp_path.iterdir())
