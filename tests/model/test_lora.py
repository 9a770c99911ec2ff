"""LoRA: at strength s a layer's weight changes by exactly s * B @ A * alpha / rank, in every key layout."""
import pytest
import torch
from model_testutils import TINY_OVERRIDES, load_dit_fixture
from safetensors.torch import save_file

from wanvideo.errors import ModelFileError
from wanvideo.model import apply_lora, build_model, load_model, tiny_config

RANK = 4


def _pair(out_f, in_f, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(RANK, in_f, generator=g) * 0.1, torch.randn(out_f, RANK, generator=g) * 0.1


def _lora(layout: str):
    """LoRA tensors for blocks.0.self_attn.q and blocks.1.ffn.0 in one key layout; returns (tensors, {layer: (A, B, alpha)})."""
    a1, b1 = _pair(64, 64, 1)
    a2, b2 = _pair(128, 64, 2)
    layers = {"blocks.0.self_attn.q": (a1, b1), "blocks.1.ffn.0": (a2, b2)}
    diffusers_names = {"blocks.0.self_attn.q": "blocks.0.attn1.to_q", "blocks.1.ffn.0": "blocks.1.ffn.net.0.proj"}
    tensors, expect = {}, {}
    for layer, (a, b) in layers.items():
        if layout == "lora_down_up_alpha":  # kohya/musubi and lightx2v style, diffusion_model. prefix
            key = "diffusion_model." + layer
            tensors.update({key + ".lora_down.weight": a, key + ".lora_up.weight": b, key + ".alpha": torch.tensor(8.0)})
            expect[layer] = (a, b, 8.0)
        elif layout == "lora_A_B":  # PEFT names, ComfyUI prefix, no alpha (alpha = rank)
            key = "model.diffusion_model." + layer
            tensors.update({key + ".lora_A.weight": a, key + ".lora_B.weight": b})
            expect[layer] = (a, b, float(RANK))
        elif layout == "no_prefix":
            tensors.update({layer + ".lora_down.weight": a, layer + ".lora_up.weight": b, layer + ".alpha": torch.tensor(2.0)})
            expect[layer] = (a, b, 2.0)
        elif layout == "kohya":
            key = "lora_unet_" + layer.replace(".", "_")
            tensors.update({key + ".lora_down.weight": a, key + ".lora_up.weight": b, key + ".alpha": torch.tensor(4.0)})
            expect[layer] = (a, b, 4.0)
        elif layout == "diffusers":
            key = "transformer." + diffusers_names[layer]
            tensors.update({key + ".lora_A.weight": a, key + ".lora_B.weight": b})
            expect[layer] = (a, b, float(RANK))
    return tensors, expect


@pytest.fixture
def model():
    m = build_model(tiny_config())
    return m


@pytest.mark.parametrize("layout", ["lora_down_up_alpha", "lora_A_B", "no_prefix", "kohya", "diffusers"])
@pytest.mark.parametrize("strength", [1.0, 0.7, -0.5])
def test_lora_changes_weights_by_exactly_s_B_A_alpha_over_rank(model, layout, strength, tmp_path):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tensors, expect = _lora(layout)
    path = tmp_path / "lora.safetensors"
    save_file(tensors, str(path))
    assert apply_lora(model, path, strength) == 2
    after = model.state_dict()
    for layer, (a, b, alpha) in expect.items():
        want = strength * (b.double() @ a.double()) * alpha / RANK
        got = after[layer + ".weight"].double() - before[layer + ".weight"].double()
        assert torch.allclose(got, want, atol=1e-6, rtol=0), layer
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {layer + ".weight" for layer in expect}


def test_diff_and_diff_b_full_deltas(model):
    g = torch.Generator().manual_seed(3)
    tensors = {
        "diffusion_model.blocks.0.cross_attn.norm_k.diff": torch.randn(64, generator=g) * 0.01,
        "diffusion_model.blocks.0.self_attn.q.diff_b": torch.randn(64, generator=g) * 0.01,
        "diffusion_model.head.head.diff_b": torch.randn(64, generator=g) * 0.01,
        "diffusion_model.blocks.1.modulation.diff": torch.randn(1, 6, 64, generator=g) * 0.01,
        "diffusion_model.blocks.1.self_attn.o.diff": torch.randn(64, 64, generator=g) * 0.01,
    }
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, tensors, 0.5)
    after = model.state_dict()
    pairs = {"blocks.0.cross_attn.norm_k.weight": "blocks.0.cross_attn.norm_k.diff",
             "blocks.0.self_attn.q.bias": "blocks.0.self_attn.q.diff_b", "head.head.bias": "head.head.diff_b",
             "blocks.1.modulation": "blocks.1.modulation.diff", "blocks.1.self_attn.o.weight": "blocks.1.self_attn.o.diff"}
    for param, key in pairs.items():
        assert torch.allclose(after[param] - before[param], 0.5 * tensors["diffusion_model." + key], atol=1e-7)


def test_lora_on_fp8_weights_requantises(tmp_path):
    from model_testutils import write_layout
    from testlib import FIXTURES

    _, weights, _ = load_dit_fixture(FIXTURES / "dit_a_single.safetensors")
    paths = write_layout(weights, "comfyui", "fp8_e4m3fn_scaled", tmp_path)
    m = load_model(paths, dtype=torch.float32, device="cpu", config=TINY_OVERRIDES, keep_fp8=True)
    q = m.blocks[0].self_attn.q
    before = q.dequantized_weight(torch.float32).clone()
    tensors, expect = _lora("lora_down_up_alpha")
    apply_lora(m, tensors, 1.0)
    a, b, alpha = expect["blocks.0.self_attn.q"]
    want = before + b @ a * alpha / RANK
    assert q.weight.dtype == torch.float8_e4m3fn
    err = (q.dequantized_weight(torch.float32) - want).abs().max()
    assert err <= 2 ** -4 * want.abs().max()  # within e4m3fn's rounding of the merged weight


def test_lora_through_load_model_and_for_the_wrong_model(tmp_path):
    from testlib import FIXTURES

    path = FIXTURES / "dit_a_single.safetensors"
    base = load_model(path, dtype=torch.float32, device="cpu")
    tensors, expect = _lora("lora_A_B")
    lora_path = tmp_path / "lightx2v_like.safetensors"
    save_file(tensors, str(lora_path))
    merged = load_model(path, dtype=torch.float32, device="cpu", loras=[(lora_path, 0.25)])
    a, b, alpha = expect["blocks.1.ffn.0"]
    got = merged.blocks[1].ffn[0].weight - base.blocks[1].ffn[0].weight
    assert torch.allclose(got, 0.25 * b @ a * alpha / RANK, atol=1e-6)

    wrong = {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.zeros(4, 1536),
             "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.zeros(1536, 4)}
    with pytest.raises(ModelFileError, match="different model"):
        apply_lora(base, wrong, 1.0)
    with pytest.raises(ModelFileError, match="matches no layer"):
        apply_lora(base, {"diffusion_model.single_blocks.0.linear1.lora_down.weight": torch.zeros(4, 8),
                          "diffusion_model.single_blocks.0.linear1.lora_up.weight": torch.zeros(8, 4)}, 1.0)
