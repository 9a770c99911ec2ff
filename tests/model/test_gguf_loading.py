"""load_model from GGUF files: the tiny DiT written as F16 / Q8_0 / Q6_K gives the safetensors model's output within
the quantisation's error, weights stay packed in memory, LoRAs and block swap work on top, wrong files are named.

Bound used for the quantised outputs: the output's relative error may be at most 8x the weights' own relative
(RMS) quantisation error, measured on the file. A two-block DiT passes a weight error through a few matmuls
whose errors are independent and partly average out, so the output error stays of the order of the weight
error: measured on the fixture model, the ratio is 2-6 for F16, Q8_0, Q5_1 and Q4_0 (6 where the audio
path, whose small layers quantise worst, is active). 8x leaves room for that without letting a wrong
dequantisation through (a wrong scale or bit order gives errors of order 1). Besides the bound, each test
checks the loaded model equals, to float rounding, the model holding the gguf package's dequantised weights.
"""
import gguf
import numpy as np
import pytest
import torch
from gguf_testutils import gguf_state_dict, relative_error
from model_testutils import TINY_OVERRIDES, call_args, is_adapter_key, load_dit_fixture
from safetensors.torch import save_file

from wanvideo.errors import ModelFileError
from wanvideo.model import apply_lora, build_model, load_model, tiny_config
from wanvideo.model.layers import Linear
from wanvideo.model.quant.gguf_file import GGUFSource
from wanvideo.model.quant.gguf_write import write_gguf
from wanvideo.model.quant.quantized import is_packed, weight_shape


@pytest.fixture(scope="module")
def reference():
    from testlib import FIXTURES

    return load_dit_fixture(FIXTURES / "dit_b_two_speakers.safetensors")


def _load(paths, **kw):
    kw.setdefault("dtype", torch.float32)
    kw.setdefault("device", "cpu")
    kw.setdefault("config", TINY_OVERRIDES)
    return load_model(paths, **kw)


def _write_split(weights, qtype, root, prefix=""):
    """The Wan model and the InfiniteTalk adapter as two GGUF files, as they are published."""
    wan = root / f"wan2.1-i2v-14b-480p-{qtype}.gguf"
    adapter = root / f"Wan2_1-InfiniteTalk_Single_{qtype}.gguf"
    stored = gguf_state_dict(weights, qtype)
    kind = "F16" if qtype == "Q6_K" else qtype
    write_gguf(wan, {k: v for k, v in stored.items() if not is_adapter_key(k)}, kind, prefix=prefix)
    write_gguf(adapter, {k: v for k, v in stored.items() if is_adapter_key(k)}, kind, prefix=prefix)
    return wan, adapter


def _file_weights(*paths):
    """Every tensor of the files as the gguf package itself dequantises it (the reference for our reader)."""
    out = {}
    for path in paths:
        source = GGUFSource(path)
        for key in source.keys():
            t = source._tensors[key]
            value = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32))
            out[key.removeprefix("model.diffusion_model.")] = value.reshape(source.shape(key))
    return out


def _weight_error(weights, stored):
    num = sum(float((stored[k] - w).pow(2).sum()) for k, w in weights.items())
    return (num / sum(float(w.pow(2).sum()) for w in weights.values())) ** 0.5


@pytest.mark.parametrize("qtype, prefix", [("F16", "model.diffusion_model."), ("Q8_0", "")])
def test_gguf_model_matches_the_safetensors_model(reference, qtype, prefix, tmp_path):
    config, weights, tensors = reference
    wan, adapter = _write_split(weights, qtype, tmp_path, prefix)
    model = _load(wan, infinitetalk=adapter)
    assert model.config["dim"] == 64 and model.has_audio_adapter
    stored = _file_weights(wan, adapter)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, Linear)}
    for name, module in linears.items():
        kind = GGUFSource(adapter if is_adapter_key(name + ".weight") else wan).qtype(prefix + name + ".weight")
        assert is_packed(module) == (kind == "Q8_0")
        if kind == "Q8_0":  # packed: the file's bytes, dequantised to exactly what the gguf package makes of them
            assert module.weight.dtype == torch.uint8 and weight_shape(module) == tuple(weights[name + ".weight"].shape)
            assert torch.equal(module.dequantized_weight(torch.float32), stored[name + ".weight"])
    for key, value in model.state_dict().items():
        if not (key.endswith(".weight") and is_packed(linears.get(key[: -len(".weight")], torch.nn.Module()))):
            assert torch.equal(value.float(), stored[key]), key
    out = model(**call_args(tensors, "cond"))
    expected = tensors["output.cond"]  # the reference implementation's output with the full-precision weights
    err, weight_err = relative_error(out, expected), _weight_error(weights, stored)
    assert weight_err > 0
    assert err <= 8 * weight_err, f"{qtype}: output error {err:.2e}, weight error {weight_err:.2e}"
    # and exactly the model that holds the dequantised weights (nothing else differs)
    same = build_model(config)
    same.load_state_dict(stored)
    assert relative_error(out, same(**call_args(tensors, "cond"))) < 1e-5


def test_k_quant_model_matches_the_full_precision_model(reference, tmp_path):
    """Q6_K needs rows of 256 values: a tiny DiT of width 256 (the fixture's inputs fit it; only the width changes)."""
    _, _, tensors = reference
    torch.manual_seed(3)
    full = build_model(tiny_config(dim=256, ffn_dim=512))
    weights = {k: v.clone() for k, v in full.state_dict().items()}
    save_file(weights, str(tmp_path / "wan_tiny_256.safetensors"))
    wan, adapter = _write_split(weights, "Q6_K", tmp_path)
    model = _load(wan, infinitetalk=adapter)
    kinds = {GGUFSource(wan).qtype(k) for k in GGUFSource(wan).keys()}
    assert kinds == {"Q6_K", "F16", "F32"}
    q = model.blocks[0].self_attn.q
    assert is_packed(q) and q.weight_format.qtype == "Q6_K" and q.weight.numel() == 256 * 210  # 6.56 bits a weight
    stored = _file_weights(wan, adapter)
    assert torch.equal(q.dequantized_weight(torch.float32), stored["blocks.0.self_attn.q.weight"])
    reference_model = _load(tmp_path / "wan_tiny_256.safetensors")  # the same weights as a safetensors file
    args = call_args(tensors, "cond")
    err, weight_err = relative_error(model(**args), reference_model(**args)), _weight_error(weights, stored)
    assert 0 < weight_err < 0.03
    assert err <= 8 * weight_err, f"Q6_K: output error {err:.2e}, weight error {weight_err:.2e}"


def test_bf16_compute_dequantises_to_bf16(reference, tmp_path):
    _, weights, tensors = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    model = _load(wan, infinitetalk=adapter, dtype="bf16")
    q = model.blocks[1].ffn[0]
    assert q.dequantized_weight(torch.bfloat16).dtype == torch.bfloat16
    assert torch.equal(q.dequantized_weight(torch.bfloat16), _file_weights(wan)["blocks.1.ffn.0.weight"].bfloat16())
    out = model(**call_args(tensors, "cond"))
    assert relative_error(out, tensors["output.cond"]) < 0.05


def test_disabled_quantization_dequantises_on_load(reference, tmp_path):
    _, weights, tensors = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    kept = _load(wan, infinitetalk=adapter)
    unpacked = _load(wan, infinitetalk=adapter, keep_fp8=False)
    assert not any(is_packed(m) for m in unpacked.modules())
    assert all(p.dtype == torch.float32 for p in unpacked.parameters())
    args = call_args(tensors, "cond")
    assert torch.equal(kept(**args), unpacked(**args))
    fp8 = _load(wan, infinitetalk=adapter, quantize="fp8_e4m3fn")  # asked for fp8 storage: re-quantised on load
    assert not any(is_packed(m) for m in fp8.modules())
    assert fp8.blocks[0].ffn[0].weight.dtype == torch.float8_e4m3fn
    assert relative_error(fp8(**args), kept(**args)) < 0.1


def test_packed_weights_take_the_file_size_in_memory(reference, tmp_path):
    _, weights, _ = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    model = _load(wan, infinitetalk=adapter)
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    tensors = [t for path in (wan, adapter) for t in GGUFSource(path)._tensors.values()]
    packed = sum(t.n_bytes for t in tensors if t.tensor_type.name == "Q8_0")
    plain = sum(t.n_elements for t in tensors if t.tensor_type.name != "Q8_0")
    assert packed > 0.8 * sum(t.n_elements for t in tensors if t.tensor_type.name == "Q8_0")  # 8.5 bits a weight
    # the packed bytes as in the file; plain F32/F16 tensors (norms, biases, small layers) in the fp32 compute dtype
    assert held == packed + 4 * plain


def test_lora_on_packed_weights_is_added_at_dequantisation(reference, tmp_path):
    _, weights, tensors = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    model = _load(wan, infinitetalk=adapter)
    layer = model.blocks[0].self_attn.q
    before_bytes = layer.weight.clone()
    before = layer.dequantized_weight(torch.float32)
    g = torch.Generator().manual_seed(4)
    down, up = torch.randn(4, 64, generator=g) * 0.1, torch.randn(64, 4, generator=g) * 0.1
    lora = {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": down,
            "diffusion_model.blocks.0.self_attn.q.lora_up.weight": up,
            "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(8.0),
            "diffusion_model.blocks.0.ffn.0.diff": torch.randn(128, 64, generator=g) * 0.01}
    assert apply_lora(model, lora, 0.5) == 2
    assert torch.equal(layer.weight, before_bytes)  # the packed bytes are untouched: no re-quantisation
    expected = before + 0.5 * (up @ down) * (8.0 / 4)
    assert torch.allclose(layer.dequantized_weight(torch.float32), expected, atol=1e-6)
    ffn = model.blocks[0].ffn[0]
    assert torch.allclose(ffn.dequantized_weight(torch.float32),
                          _file_weights(wan)["blocks.0.ffn.0.weight"] + 0.5 * lora["diffusion_model.blocks.0.ffn.0.diff"],
                          atol=1e-6)
    # a second LoRA on the same layer adds up
    apply_lora(model, {k: v for k, v in lora.items() if "ffn" not in k}, 0.5)
    assert torch.allclose(layer.dequantized_weight(torch.float32), before + 2 * 0.5 * (up @ down) * 2.0, atol=1e-6)
    # the model with LoRAs == the model whose weights are the merged ones
    merged = _load(wan, infinitetalk=adapter, keep_fp8=False)
    apply_lora(merged, lora, 0.5)
    apply_lora(merged, {k: v for k, v in lora.items() if "ffn" not in k}, 0.5)
    args = call_args(tensors, "cond")
    assert relative_error(model(**args), merged(**args)) < 1e-5


def test_block_swap_with_packed_weights(reference, tmp_path):
    _, weights, tensors = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    plain = _load(wan, infinitetalk=adapter)
    swapped = _load(wan, infinitetalk=adapter, blocks_to_swap=2)
    args = call_args(tensors, "cond")
    assert torch.equal(plain(**args), swapped(**args))
    assert swapped.block_swap.loads >= 2


# ----- wrong files ---------------------------------------------------------------------------------------------


def test_unsupported_quantisation_type(reference, tmp_path):
    _, weights, _ = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    stored = {k: v for k, v in weights.items() if not is_adapter_key(k)}
    # IQ4_NL (32 values in 18 bytes): a real llama.cpp type we do not dequantise
    stored["blocks.0.ffn.0.weight"] = (np.zeros((128, 2 * 18), np.uint8), "IQ4_NL")
    path = tmp_path / "wan-IQ4_NL.gguf"
    write_gguf(path, stored, "Q8_0")
    with pytest.raises(ModelFileError, match=r"quantization type IQ4_NL \(e.g. blocks.0.ffn.0.weight\) is not supported"
                                             r".*use a GGUF quantised as Q8_0.*Q4_K_M"):
        _load(path, infinitetalk=adapter)


def test_truncated_gguf(reference, tmp_path):
    _, weights, _ = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    data = wan.read_bytes()
    cut = tmp_path / "wan-cut.gguf"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ModelFileError, match="truncated .*GGUF file: wan-cut.gguf .*re-download it"):
        _load(cut, infinitetalk=adapter)
    cut.write_bytes(data[:200])  # inside the header
    with pytest.raises(ModelFileError, match="truncated .*GGUF file: wan-cut.gguf .*re-download it"):
        _load(cut, infinitetalk=adapter)
    cut.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(ModelFileError, match="Git LFS pointer"):
        _load(cut, infinitetalk=adapter)


def test_wrong_model_gguf(reference, tmp_path):
    _, weights, _ = reference
    wan_weights = {k: v for k, v in weights.items() if not is_adapter_key(k)}
    t2v = {k: v for k, v in wan_weights.items() if not k.startswith("img_emb.") and "_img" not in k}
    t2v["patch_embedding.weight"] = t2v["patch_embedding.weight"][:, :16].contiguous()
    write_gguf(tmp_path / "wan2.1-t2v-14b-Q8_0.gguf", t2v, "Q8_0")
    with pytest.raises(ModelFileError, match="this is a T2V .*model: InfiniteTalk needs Wan2.1 I2V 14B"):
        _load(tmp_path / "wan2.1-t2v-14b-Q8_0.gguf")
    flux = {"double_blocks.0.img_attn.qkv.weight": torch.randn(96, 64), "img_in.weight": torch.randn(64, 64)}
    write_gguf(tmp_path / "flux1-dev-Q8_0.gguf", flux, "Q8_0", arch="flux")
    with pytest.raises(ModelFileError, match="flux1-dev-Q8_0.gguf is another model, not Wan2.1 I2V 14B: this is not a Wan model"):
        _load(tmp_path / "flux1-dev-Q8_0.gguf")
    llm = {"token_embd.weight": torch.randn(100, 64), "blk.0.attn_q.weight": torch.randn(64, 64)}
    write_gguf(tmp_path / "llama-3-8b-Q8_0.gguf", llm, "Q8_0", arch="llama")
    with pytest.raises(ModelFileError, match="this is a language model .*architecture llama.*not a video model"):
        _load(tmp_path / "llama-3-8b-Q8_0.gguf")
    umt5 = {"enc.blk.0.attn_q.weight": torch.randn(64, 64), "token_embd.weight": torch.randn(100, 64)}
    write_gguf(tmp_path / "umt5-xxl-encoder-Q8_0.gguf", umt5, "Q8_0", arch="t5encoder")
    with pytest.raises(ModelFileError, match="umt5 text encoder in GGUF form"):
        _load(tmp_path / "umt5-xxl-encoder-Q8_0.gguf")
    not_gguf = tmp_path / "renamed.gguf"
    save_file({"a": torch.zeros(2)}, str(not_gguf))
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        _load(not_gguf)


def test_adapter_gguf_in_the_model_slot(reference, tmp_path):
    _, weights, _ = reference
    wan, adapter = _write_split(weights, "Q8_0", tmp_path)
    with pytest.raises(ModelFileError, match="holds only the InfiniteTalk adapter, not the Wan model"):
        _load(adapter)
    with pytest.raises(ModelFileError, match="swapped"):
        _load(adapter, infinitetalk=wan)


def test_nan_scale_in_a_packed_gguf_weight_is_found_while_loading(reference, tmp_path):
    _, weights, _ = reference
    stored = {k: v for k, v in weights.items() if not is_adapter_key(k)}
    blocks = gguf.quants.quantize(stored["blocks.1.ffn.2.weight"].numpy(), gguf.GGMLQuantizationType.Q8_0)
    blocks[3, 34:36] = np.array([np.nan], dtype=np.float16).view(np.uint8)  # the fp16 scale of one block
    stored["blocks.1.ffn.2.weight"] = (blocks, "Q8_0")
    stored["blocks.0.norm3.weight"] = stored["blocks.0.norm3.weight"].clone()
    write_gguf(tmp_path / "wan-nan.gguf", stored, "Q8_0")
    with pytest.raises(ModelFileError, match="wan-nan.gguf is damaged: tensor blocks.1.ffn.2.weight holds 1 NaN"):
        _load(tmp_path / "wan-nan.gguf")
    stored["blocks.1.ffn.2.weight"] = weights["blocks.1.ffn.2.weight"]
    stored["blocks.0.norm3.weight"][5] = float("inf")  # a plain F32 tensor
    write_gguf(tmp_path / "wan-inf.gguf", stored, "Q8_0")
    with pytest.raises(ModelFileError, match="wan-inf.gguf is damaged: tensor blocks.0.norm3.weight holds 1 NaN/inf"):
        _load(tmp_path / "wan-inf.gguf")


def test_wan_animate_gguf_loads_through_the_same_path(tmp_path):
    """WanAnimate GGUF repacks (ComfyUI prefix): detection is by tensor names, so they load like the safetensors."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file
    from testlib import FIXTURES

    from wanvideo.model.animate_dit import WanAnimateModel

    path = FIXTURES / "animate_a.safetensors"
    tensors = load_file(str(path))
    config = json.loads(safe_open(str(path), "pt").metadata()["config"])
    weights = {k: v for k, v in tensors.items() if not k.startswith(("input.", "output.", "aux.", "debug.", "derived."))
               and not k.endswith(".kernel")}
    gguf_path = tmp_path / "Wan2.2-Animate-14B-Q8_0.gguf"
    write_gguf(gguf_path, weights, "Q8_0", prefix="model.diffusion_model.")
    model = _load(gguf_path, config={"text_len": config["model_kwargs"]["text_len"]})
    assert isinstance(model, WanAnimateModel)
    packed = [n for n, m in model.named_modules() if is_packed(m)]
    assert any(n.startswith("blocks.") for n in packed) and any(n.startswith("face_adapter.") for n in packed)
    out = model(tensors["input.x"][None], tensors["input.t"], tensors["input.context"][None], tensors["input.clip_fea"],
                tensors["input.y"][None], pose_latents=tensors["input.pose_latents"],
                face_pixel_values=tensors["input.face_pixel_values"])[0]
    err, weight_err = relative_error(out, tensors["output.cond"]), _weight_error(weights, _file_weights(gguf_path))
    assert 0 < weight_err and err <= 8 * weight_err, f"output error {err:.2e}, weight error {weight_err:.2e}"
