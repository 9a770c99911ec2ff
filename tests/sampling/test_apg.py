"""Adaptive projected guidance: the reference's update on hand-computed tensors."""
import torch

from wanvideo.sampling.apg import APGState, apg_direction, combine_apg, project
from wanvideo.sampling.guidance import COND, DROP_AUDIO, DROP_TEXT, UNCOND, combine


def t(*values):
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, len(values))  # [C, T, H, W]-shaped


def test_projection_splits_along_the_conditional_prediction():
    parallel, orthogonal = project(t(3.0, 4.0), t(2.0, 0.0))
    assert torch.allclose(parallel, t(3.0, 0.0)) and torch.allclose(orthogonal, t(0.0, 4.0))


def test_norm_cap_and_momentum_by_hand():
    state = APGState(momentum=-0.5, norm_threshold=2.0)
    cond = t(1.0, 0.0)
    # diff (0, 4): norm 4 capped to 2 -> (0, 2); orthogonal to cond: all of it
    assert torch.allclose(apg_direction(t(0.0, 4.0), cond, state.text, 2.0), t(0.0, 2.0))
    # next diff (0, 1): running average = (0, 1) + (-0.5)*(0, 4) = (0, -1); norm 1 < 2; orthogonal: (0, -1)
    assert torch.allclose(apg_direction(t(0.0, 1.0), cond, state.text, 2.0), t(0.0, -1.0))
    # a diff along cond is removed entirely (eta 0)
    fresh = APGState(momentum=0.0, norm_threshold=0.0)
    assert torch.allclose(apg_direction(t(5.0, 0.0), cond, fresh.text, 0.0), t(0.0, 0.0))


def test_three_pass_apg_without_cap_or_momentum_is_cfg_minus_the_parallel_parts():
    preds = {COND: t(1.0, 0.0, 0.0), DROP_TEXT: t(1.0, -2.0, 0.0), UNCOND: t(0.0, -2.0, 3.0)}
    # text diff (0, 2, 0), audio diff (1, 0, -3): their parts orthogonal to cond (1, 0, 0): (0, 2, 0), (0, 0, -3)
    out = combine_apg(preds, 5.0, 4.0, True, APGState(momentum=0.0, norm_threshold=0.0))
    assert torch.allclose(out, t(1.0, 4 * 2.0, 3 * -3.0))
    # for comparison, plain CFG keeps the parallel part and scales from uncond
    assert not torch.allclose(out, combine(preds, 5.0, 4.0, True))


def test_audio_only_and_plain_i2v_forms():
    cond, other = t(2.0, 0.0), t(2.0, -1.0)
    state = APGState(momentum=0.0, norm_threshold=0.0)
    assert torch.allclose(combine_apg({COND: cond, DROP_AUDIO: other}, 1.0, 3.0, True, state), t(2.0, 2.0))
    assert torch.allclose(combine_apg({COND: cond, UNCOND: other}, 4.0, 1.0, False, state), t(2.0, 3.0))
    assert torch.equal(combine_apg({COND: cond}, 1.0, 1.0, True, state), cond)
