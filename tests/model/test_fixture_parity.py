"""Our model, loading the official weights by name, reproduces the official outputs (shared/fixtures)."""
import pytest
import torch
from model_testutils import CALLS, call_args, load_dit_fixture

from wanvideo.model import build_model
from wanvideo.model.audio_adapter import reference_attention_map, token_masks_from

CASES = ["dit_a_single", "dit_b_two_speakers"]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    from testlib import FIXTURES

    config, weights, tensors = load_dit_fixture(FIXTURES / f"{request.param}.safetensors")
    model = build_model(config)
    result = model.load_state_dict(weights, strict=True)  # raises on any missing/unexpected key
    assert not result.missing_keys and not result.unexpected_keys
    return request.param, model, tensors


@pytest.mark.parametrize("output_name", list(CALLS))
def test_all_four_guidance_calls_match_the_reference(case, output_name):
    name, model, tensors = case
    out = model(**call_args(tensors, output_name))
    ref = tensors[f"output.{output_name}"]
    assert out.dtype == torch.float32 and out.shape == ref.shape
    err = (out - ref).abs().max().item()
    assert err < 1e-4, f"{name} {output_name}: max abs error {err:.2e}"


def test_per_block_intermediates_match(case):
    """Localises a mismatch: every block's output and the two-speaker attention map match the debug tensors."""
    name, model, tensors = case
    seen = {}
    hooks = []
    for i, block in enumerate(model.blocks):
        hooks.append(block.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(f"block{i}.out", o)))
        hooks.append(block.self_attn.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(f"block{i}.qk", o[1:])))
    try:
        model(**call_args(tensors, "cond"))
    finally:
        for h in hooks:
            h.remove()
    for i in range(len(model.blocks)):
        assert (seen[f"block{i}.out"] - tensors[f"debug.cond.block{i}.out"]).abs().max() < 1e-4
        q, k = seen[f"block{i}.qk"]
        grid = (tensors["input.x"].shape[1], tensors["input.x"].shape[2] // 2, tensors["input.x"].shape[3] // 2)
        masks = token_masks_from(tensors["input.ref_target_masks"], grid)
        attn_map = reference_attention_map(q, k, grid, masks)[0]
        assert (attn_map - tensors[f"debug.cond.block{i}.x_ref_attn_map"]).abs().max() < 1e-5


def test_audio_changes_the_output_and_none_skips_the_adapter(case):
    name, model, tensors = case
    args = call_args(tensors, "cond")
    with_audio = model(**args)
    args["audio"] = None
    plain = model(**args)
    assert (with_audio - plain).abs().max() > 1e-3
    # audio=None is not the same as the loop's zero audio: the adapter still runs on zeros
    assert (plain - tensors["output.drop_audio"]).abs().max() > 1e-3


def test_batched_call_equals_separate_calls(case):
    """The sampler may batch guidance calls that share the audio: each batch row equals its own call."""
    name, model, tensors = case
    a = call_args(tensors, "cond")
    b = call_args(tensors, "drop_text")
    ctx_len = max(a["context"].shape[1], b["context"].shape[1])
    def pad(c):
        return torch.nn.functional.pad(c, (0, 0, 0, ctx_len - c.shape[1]))  # zero padding = the reference's
    batched = dict(a, x=torch.cat([a["x"], a["x"]]), t=torch.cat([a["t"], a["t"]]),
                   context=torch.cat([pad(a["context"]), pad(b["context"])]))
    out = model(**batched)
    assert (out[0] - tensors["output.cond"]).abs().max() < 1e-4
    assert (out[1] - tensors["output.drop_text"]).abs().max() < 1e-4


def test_swapping_the_speakers_masks_changes_the_two_speaker_output(case):
    name, model, tensors = case
    if name != "dit_b_two_speakers":
        pytest.skip("two-speaker routing only")
    args = call_args(tensors, "cond")
    args["ref_target_masks"] = args["ref_target_masks"][[1, 0, 2]]
    assert (model(**args) - tensors["output.cond"]).abs().max() > 1e-3
