"""Block swap gives the same output as no swap, and really moves the blocks through the swap path."""
import torch
from model_testutils import call_args, load_dit_fixture

from wanvideo.model import build_model, load_model


def test_block_swap_output_equals_no_swap():
    from testlib import FIXTURES

    config, weights, tensors = load_dit_fixture(FIXTURES / "dit_b_two_speakers.safetensors")
    model = build_model(config)
    model.load_state_dict(weights)
    args = call_args(tensors, "cond")
    plain = model(**args)

    model.enable_block_swap(2)
    swapper = model.block_swap
    master = model.blocks[0].self_attn.q.weight.data
    seen = []
    hook = model.blocks[0].self_attn.q.register_forward_pre_hook(
        lambda m, a: seen.append(m.weight.data_ptr() != master.data_ptr()))
    swapped = model(**args)
    hook.remove()
    assert torch.equal(swapped, plain)
    assert seen == [True]  # block 0 ran on a copy brought to the main device, not on the offloaded master
    assert model.blocks[0].self_attn.q.weight.data_ptr() == master.data_ptr()  # and was released after
    assert swapper.loads >= 2
    loads = swapper.loads
    assert torch.equal(model(**args), plain)  # second call (prefetched block 0 from the first)
    assert swapper.loads - loads == 2


def test_load_model_with_block_swap_and_one_swapped_block():
    from testlib import FIXTURES

    path = FIXTURES / "dit_a_single.safetensors"
    _, _, tensors = load_dit_fixture(path)
    args = call_args(tensors, "drop_audio")
    plain = load_model(path, dtype=torch.float32, device="cpu")(**args)
    for count in (1, 2, 5):  # 5 > layers: every block swapped
        model = load_model(path, dtype=torch.float32, device="cpu", blocks_to_swap=count)
        assert model.block_swap is not None and len(model.block_swap.indices) == min(count, 2)
        assert torch.equal(model(**args), plain)
