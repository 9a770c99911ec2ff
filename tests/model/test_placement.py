"""Weight placement for a host's model manager: sizes as stored, partial loads that stream the first blocks,
unloads, the user's block swap as the floor -- and the same output whatever the placement."""
import torch
from model_testutils import call_args, load_dit_fixture

from wanvideo.model import build_model, load_model, normalize_config
from wanvideo.model.memory import inference_bytes, video_tokens
from wanvideo.model.placement import WeightPlacement, tensor_bytes


def _fixture_model():
    from testlib import FIXTURES

    config, weights, tensors = load_dit_fixture(FIXTURES / "dit_b_two_speakers.safetensors")
    model = build_model(config)
    model.load_state_dict(weights)
    return model, call_args(tensors, "cond")


def test_sizes_are_the_stored_bytes_of_every_tensor_once():
    model, _ = _fixture_model()
    expected = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert tensor_bytes(model) == expected
    placement = WeightPlacement(model, "cpu")
    assert placement.core_size + sum(placement.block_sizes) == expected
    assert placement.managed_bytes == expected and placement.loaded_bytes == 0
    half = build_model(model.config, dtype=torch.bfloat16)
    assert tensor_bytes(half) == expected // 2  # bytes as stored: a bf16 model holds half


def test_partial_load_streams_the_first_blocks_and_gives_the_same_output():
    model, args = _fixture_model()
    plain = model(**args)
    placement = WeightPlacement(model, "cpu")
    core, sizes = placement.core_size, placement.block_sizes
    n = len(sizes)
    assert placement.load(core + sum(sizes[1:])) == core + sum(sizes[1:])  # all but one block fit
    assert placement.streamed == 1 and model.block_swap.indices == [0]
    assert torch.equal(model(**args), plain)
    assert placement.load(sizes[0]) == sizes[0]  # more room: the streamed block joins the others
    assert placement.streamed == 0 and model.block_swap is None
    assert placement.unload_blocks(1) == sizes[0]  # the host needs a little room: one block streams again
    assert placement.streamed == 1 and torch.equal(model(**args), plain)
    assert placement.unload() == core + sum(sizes[1:]) and placement.loaded_bytes == 0
    assert placement.load(0) == core and placement.streamed == n  # no room: the core, every block streamed
    assert torch.equal(model(**args), plain)


def test_user_block_swap_is_the_floor_and_not_host_memory():
    from testlib import FIXTURES

    path = FIXTURES / "dit_a_single.safetensors"
    _, _, tensors = load_dit_fixture(path)
    args = call_args(tensors, "drop_audio")
    plain = load_model(path, dtype=torch.float32, device="cpu")(**args)
    model = load_model(path, dtype=torch.float32, device="cpu", initial_device="cpu", blocks_to_swap=1)
    placement = WeightPlacement(model, "cpu")
    assert placement.min_streamed == 1
    assert placement.managed_bytes == tensor_bytes(model) - placement.block_sizes[0]
    placement.load(float("inf"))
    assert placement.loaded_bytes == placement.managed_bytes and model.block_swap.indices == [0]
    assert torch.equal(model(**args), plain)


def test_activation_estimate_follows_the_window():
    config = normalize_config({"dim": 5120, "ffn_dim": 13824, "num_heads": 40, "num_layers": 40})
    shape = (1, 16, 21, 60, 104)  # an 81-frame 480x832 window
    assert video_tokens(config, shape) == 21 * 30 * 52
    gb = inference_bytes(config, shape) / 1024**3
    assert 3 < gb < 6  # a few GB at 480p, as the README says
    assert inference_bytes(config, (1, 16, 21, 90, 160)) > 2 * inference_bytes(config, shape)  # 720p
    assert inference_bytes(config, shape, torch.float32) > inference_bytes(config, shape)
