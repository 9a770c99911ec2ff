"""audio_scale: the audio cross-attention's output multiplied in every block (1 = the reference's numbers)."""
import pytest
import torch
from model_testutils import call_args, load_dit_fixture

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.sampling.guidance import pass_groups, stack_pass_inputs

CASES = ["dit_a_single", "dit_b_two_speakers"]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    from testlib import FIXTURES

    config, weights, tensors = load_dit_fixture(FIXTURES / f"{request.param}.safetensors")
    model = build_model(config)
    model.load_state_dict(weights, strict=True)
    return request.param, model, tensors


def test_scale_one_is_the_reference_output(case):
    name, model, tensors = case
    out = model(**call_args(tensors, "cond"), audio_scale=1.0)
    assert (out - tensors["output.cond"]).abs().max() < 1e-4
    assert torch.equal(out, model(**call_args(tensors, "cond")))


def test_scale_zero_equals_the_no_audio_path_through_the_same_blocks(case):
    name, model, tensors = case
    args = call_args(tensors, "cond")
    silent = model(**args, audio_scale=0.0)
    args["audio"] = None
    assert torch.equal(silent, model(**args))
    assert (silent - tensors["output.cond"]).abs().max() > 1e-3  # the audio did matter at 1


def _hand_block(block, x, e0, state, scale):
    """One block written out step by step: self-attention, text/image cross-attention, `scale` x the audio
    cross-attention's output, FFN (the reference block with the audio term multiplied)."""
    dtype = x.dtype
    shift1, scale1, gate1, shift2, scale2, gate2 = (block.modulation.float() + e0).unsqueeze(2).unbind(1)
    y, q, k = block.self_attn((block.norm1(x).float() * (1 + scale1) + shift1).to(dtype), state)
    x = (x + y * gate1).to(dtype)
    x = x + block.cross_attn(block.norm3(x), state)
    audio = block.audio_residual(x, q, k, state)
    x = x + scale * audio
    y = block.ffn((block.norm2(x).float() * (1 + scale2) + shift2).to(dtype))
    return (x + y * gate2).to(dtype), audio


@pytest.mark.parametrize("scale", [2.0, 0.5, -1.0])
def test_scale_multiplies_only_the_audio_term_of_each_block(case, scale):
    name, model, tensors = case
    h, _, e0, state = model.embed(**call_args(tensors, "cond"), audio_scale=scale)
    assert state.audio_scale == scale
    for block in model.blocks:
        expected, audio = _hand_block(block, h, e0, state, scale)
        got = block(h, e0, state)
        assert (got - expected).abs().max() < 1e-5
        reference, _ = _hand_block(block, h, e0, state, 1.0)
        assert (got - reference).abs().max() > 1e-4  # the scale changed the block's output
        assert audio.abs().max() > 1e-3  # a real audio term, not zeros scaled
        h = got


def test_scale_changes_the_model_output_monotonically_in_the_audio_direction(case):
    """The whole model at 2.0 moves further from the no-audio output than at 1.0 (the audio's effect grows)."""
    name, model, tensors = case
    args = call_args(tensors, "cond")
    one, two = model(**args), model(**args, audio_scale=2.0)
    args["audio"] = None
    plain = model(**args)
    assert (two - plain).norm() > (one - plain).norm()


def test_batched_guidance_rows_take_the_scale_like_single_calls(case):
    """The guidance passes stacked as one batch (the sampler's own stacking) with the scale: each row equals its
    pass run alone with the scale."""
    name, model, tensors = case
    passes = {}
    for pass_name in ("cond", "drop_text", "uncond"):
        args = call_args(tensors, pass_name)
        args.pop("x"), args.pop("t")
        passes[pass_name] = dict(args, audio_scale=1.7)
    groups = pass_groups(passes)
    assert any(len(g) > 1 for g in groups)
    x, t = call_args(tensors, "cond")["x"], call_args(tensors, "cond")["t"]
    for names in groups:
        rows = model(x.expand(len(names), *x.shape[1:]), t, **stack_pass_inputs(names, passes))
        for row, pass_name in enumerate(names):
            alone = model(x, t, **passes[pass_name])[0]
            assert (rows[row] - alone).abs().max() < 1e-4, (names, pass_name)
            if pass_name == "cond":
                assert (alone - tensors["output.cond"]).abs().max() > 1e-3  # 1.7 is not the reference's 1


def test_non_finite_scale_is_refused(case):
    name, model, tensors = case
    with pytest.raises(InputError, match="audio_scale"):
        model(**call_args(tensors, "cond"), audio_scale=float("nan"))


def test_fp8_and_gguf_weights_scale_the_same_audio_term(tmp_path):
    from test_compile_fp8 import inputs, quantize_blocks

    from wanvideo.model import load_model
    from wanvideo.model.quant.gguf_write import write_gguf

    torch.manual_seed(0)
    model = build_model(tiny_config())
    written = tmp_path / "tiny-Q8_0.gguf"
    write_gguf(written, model.state_dict(), "Q8_0")
    packed = load_model(written, dtype=torch.float32, device="cpu", config=dict(model.config))
    quantize_blocks(model)
    for m in (model, packed):
        args = inputs(m)
        silent = m(**args, audio_scale=0.0)
        assert torch.equal(silent, m(**dict(args, audio=None)))
        assert (m(**args, audio_scale=2.0) - m(**args)).abs().max() > 1e-4
