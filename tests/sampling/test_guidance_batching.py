"""Batched guidance: the passes of a step as rows of one forward give what separate forwards give, and what
the reference's separate calls give (shared/fixtures DiT cases, one and two speakers)."""
import sys
from pathlib import Path

import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.sampling.guidance import COND, DROP_AUDIO, DROP_TEXT, UNCOND, pass_groups, stack_pass_inputs
from wanvideo.sampling.passes import PassRunner, use_batched_passes

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from model_testutils import load_dit_fixture  # noqa: E402

CASES = ["dit_a_single", "dit_b_two_speakers"]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    from testlib import FIXTURES

    config, weights, tensors = load_dit_fixture(FIXTURES / f"{request.param}.safetensors")
    model = build_model(config)
    model.load_state_dict(weights, strict=True)
    return request.param, model, tensors


def fixture_passes(tensors, names):
    """The loop's pass arguments (the silent audio of two speakers has one speaker, as in the loop)."""
    audio, audio_null = tensors["input.audio"], tensors["input.audio_null"]
    ctx, ctx_null = tensors["input.context"][None], tensors["input.context_null"][None]
    common = dict(clip_fea=tensors["input.clip_fea"], y=tensors["input.y"], ref_target_masks=tensors["input.ref_target_masks"])
    table = {COND: (ctx, audio), DROP_TEXT: (ctx_null, audio), UNCOND: (ctx_null, audio_null),
             DROP_AUDIO: (ctx, audio_null)}
    return {n: dict(context=table[n][0], audio=table[n][1], **common) for n in names}


@pytest.mark.parametrize("names", [[COND, DROP_TEXT, UNCOND], [COND, DROP_AUDIO]])
def test_batched_passes_equal_sequential_and_the_reference(case, names):
    name, model, tensors = case
    passes = fixture_passes(tensors, names)
    x, t = tensors["input.x"][None], tensors["input.t"]
    sequential = PassRunner(model, passes, batched=False)(x, t, 0)
    runner = PassRunner(model, passes, batched=True)
    batched = runner(x, t, 0)
    speakers = tensors["input.audio"].shape[0]
    # one speaker: one forward for all passes; two: the one-speaker silent pass is a batch of its own
    assert runner.model_calls == (1 if speakers == 1 else 2)
    for n in names:
        assert (batched[n] - sequential[n]).abs().max().item() < 1e-5, f"{name} {n}"
        assert (batched[n] - tensors[f"output.{n}"]).abs().max().item() < 1e-4, f"{name} {n} vs reference"


def test_groups_split_on_speaker_count_and_shared_inputs():
    ctx = torch.zeros(1, 4, 8)
    y, clip = torch.zeros(1, 20, 2, 4, 4), torch.zeros(1, 257, 4)
    a2, a1 = torch.zeros(2, 5, 5, 2, 3), torch.zeros(1, 5, 5, 2, 3)
    passes = {COND: dict(context=ctx, audio=a2, y=y, clip_fea=clip), DROP_TEXT: dict(context=ctx, audio=a2, y=y, clip_fea=clip),
              UNCOND: dict(context=ctx, audio=a1, y=y, clip_fea=clip)}
    assert pass_groups(passes) == [[COND, DROP_TEXT], [UNCOND]]
    stacked = stack_pass_inputs([COND, DROP_TEXT], passes)
    assert stacked["audio"] is a2 and stacked["context"].shape == (2, 4, 8)  # one shared audio
    passes[DROP_TEXT]["y"] = y + 1
    assert pass_groups(passes) == [[COND], [DROP_TEXT], [UNCOND]]


def test_contexts_of_different_lengths_are_zero_padded_to_the_same_result():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    cfg = model.config
    x, t = torch.randn(1, 16, 2, 4, 4), torch.tensor([500.0])
    common = dict(clip_fea=torch.randn(1, 257, cfg["clip_dim"]), y=torch.randn(1, 20, 2, 4, 4))
    passes = {COND: dict(context=torch.randn(1, 5, cfg["text_dim"]), **common),
              UNCOND: dict(context=torch.randn(1, 3, cfg["text_dim"]), **common)}
    a = PassRunner(model, passes, batched=True)(x, t, 0)
    b = PassRunner(model, passes, batched=False)(x, t, 0)
    for n in passes:
        assert (a[n] - b[n]).abs().max() < 1e-5


def test_auto_mode_falls_back_under_block_swap_and_forced_modes_are_obeyed():
    model = build_model(tiny_config())
    passes = {COND: {}, UNCOND: {}}
    assert use_batched_passes("auto", model, passes, (2, 4, 4))
    assert not use_batched_passes("sequential", model, passes, (2, 4, 4))
    model.enable_block_swap(1)
    assert not use_batched_passes("auto", model, passes, (2, 4, 4))
    assert use_batched_passes("batched", model, passes, (2, 4, 4))
    with pytest.raises(InputError, match="cannot run the guidance passes as one batch"):
        use_batched_passes("batched", torch.nn.Identity(), passes, (2, 4, 4))
    with pytest.raises(InputError, match="guidance batching must be one of"):
        use_batched_passes("fast", model, passes, (2, 4, 4))


def test_auto_mode_asks_the_hosts_activation_estimate_for_the_extra_rows_on_a_gpu(monkeypatch):
    """One estimate (model/memory.py) for the host's room-making and the batching choice."""
    from types import SimpleNamespace

    from wanvideo.model.memory import inference_bytes
    from wanvideo.sampling import passes as passes_module

    config = tiny_config()
    model = SimpleNamespace(supports_batched_passes=True, block_swap=None, main_device="cuda:0",
                            compute_dtype=torch.bfloat16, config=config)
    three = {COND: {}, DROP_TEXT: {}, UNCOND: {}}
    shape = (16, 21, 60, 104)
    need = inference_bytes(config, shape, torch.bfloat16, batch=2) + passes_module._HEADROOM_BYTES
    free = {"bytes": need}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 << 30))
    assert use_batched_passes("auto", model, three, shape)
    free["bytes"] = need - 1
    assert not use_batched_passes("auto", model, three, shape)
    assert use_batched_passes("batched", model, three, shape)  # forcing does not ask
