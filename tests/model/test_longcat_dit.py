"""LongCat-Video-Avatar DiT against the official code's numbers (fixtures longcat_dit_a/b), loading layouts."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from wanvideo.errors import ModelFileError, WanVideoError
from wanvideo.model import build_model
from wanvideo.model.longcat_loading import apply_longcat_lora, load_longcat_model

TOL = 1e-4


def _fixture(fixtures_dir, name):
    path = fixtures_dir / f"longcat_{name}.safetensors"
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    return path, tensors, json.loads(meta["config"]), json.loads(meta["call"])["calls"]


def _inputs(tensors, call):
    return {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"input.{call}.")}


def _run_calls(model, tensors, calls):
    """The official call sequence: image-to-video, the cache pass, the continuation with the cache."""
    with torch.no_grad():
        ai2v = model(**_inputs(tensors, "ai2v"), num_cond_latents=1)
        cache_in = {k: v for k, v in _inputs(tensors, "avc_cache").items() if k != "ref_target_masks"}
        cached, kv = model(**cache_in, num_cond_latents=5, return_kv=True, skip_crs_attn=True, num_ref_latents=1,
                           ref_img_index=calls[1]["ref_img_index"])
        avc = model(**_inputs(tensors, "avc"), num_cond_latents=5, kv_cache_dict=kv, num_ref_latents=1,
                    ref_img_index=calls[2]["ref_img_index"], mask_frame_range=calls[2]["mask_frame_range"])
    return {"ai2v": ai2v, "avc_cache": cached, "avc": avc}


@pytest.mark.parametrize("case", ["dit_a", "dit_b"])
def test_official_calls_reproduced(fixtures_dir, case):
    """a: one speaker, CFG batch, packed text; b: two speakers with masks, zero-padded text. Both: the cache
    pass and the continuation with the cache and the masked reference range."""
    path, tensors, config, calls = _fixture(fixtures_dir, case)
    model = load_longcat_model(path, dtype=torch.float32)
    outputs = _run_calls(model, tensors, calls)
    for name, out in outputs.items():
        assert out.dtype == torch.float32
        err = (out - tensors[f"output.{name}"]).abs().max().item()
        assert err < TOL, f"{case} {name}: max error {err}"


def test_build_model_with_official_config_and_weights(fixtures_dir):
    _, tensors, config, calls = _fixture(fixtures_dir, "dit_a")
    model = build_model({"model_type": "longcat_avatar", **config["model_kwargs"]})
    weights = {k: v for k, v in tensors.items() if k.split(".")[0] not in ("input", "output", "debug", "aux")}
    model.load_state_dict(weights, strict=True)
    out = _run_calls(model, tensors, calls)["avc"]
    assert (out - tensors["output.avc"]).abs().max().item() < TOL


def test_masked_reference_range_changes_the_masked_frames_only(fixtures_dir):
    """Without the mask the frames in the official range see the reference again: their output changes."""
    path, tensors, _, calls = _fixture(fixtures_dir, "dit_a")
    model = load_longcat_model(path, dtype=torch.float32)
    with torch.no_grad():
        cache_in = _inputs(tensors, "avc_cache")
        _, kv = model(**cache_in, num_cond_latents=5, return_kv=True, skip_crs_attn=True, num_ref_latents=1,
                      ref_img_index=6)
        kw = dict(**_inputs(tensors, "avc"), num_cond_latents=5, kv_cache_dict=kv, num_ref_latents=1,
                  ref_img_index=6)
        masked = model(**kw, mask_frame_range=1)
        unmasked = model(**kw, mask_frame_range=0)
    diff = (masked - unmasked).abs().amax(dim=(0, 1, 3, 4))
    assert diff[1:4].min() > 1e-3, diff  # the masked frames 1..3 lose their view of the reference
    assert (masked - tensors["output.avc"]).abs().max() < TOL


def _repack(tensors, kind):
    out = {}
    for key, value in tensors.items():
        if key.split(".")[0] in ("input", "output", "debug", "aux"):
            continue
        if value.dim() == 2 and key.endswith(".weight") and kind == "int8":
            scale = value.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            out[key + "_int8"] = (value / scale[:, None]).round().clamp(-128, 127).to(torch.int8)
            out[key[: -len("weight")] + "weight_scale"] = scale
        elif value.dim() == 2 and key.endswith(".weight") and kind == "fp8":
            scale = value.abs().max() / 448.0
            out["model.diffusion_model." + key] = (value / scale).to(torch.float8_e4m3fn)
            out["model.diffusion_model." + key[: -len("weight")] + "scale_weight"] = scale.reshape(1)
        else:
            out[("model.diffusion_model." if kind == "fp8" else "") + key] = value
    return out


@pytest.mark.parametrize("kind,tol", [("int8", 0.05), ("fp8", 0.3)])
def test_quantized_repacks_load(fixtures_dir, tmp_path, kind, tol):
    """The official INT8 layout and a ComfyUI-prefixed scaled-fp8 repack load and stay close to the original."""
    _, tensors, config, calls = _fixture(fixtures_dir, "dit_a")
    file = tmp_path / f"longcat_{kind}.safetensors"
    save_file(_repack(tensors, kind), str(file))
    model = load_longcat_model(file, config=config["model_kwargs"], dtype=torch.float32, keep_fp8=True)
    # kept as stored (int8 / fp8) in memory, dequantised per layer
    assert model.blocks[0].attn.qkv.weight.dtype == {"int8": torch.int8, "fp8": torch.float8_e4m3fn}[kind]
    out = _run_calls(model, tensors, calls)["ai2v"]
    ref = tensors["output.ai2v"]
    rel = ((out - ref).norm() / ref.norm()).item()
    assert 0 < rel < tol, f"{kind}: relative error {rel}"


def test_official_lora_layout_merges(fixtures_dir):
    """dmd_lora layout (`lora___lorahyphen___...`, alpha_scale, split up-projections) adds scale*up@down."""
    path, tensors, config, _ = _fixture(fixtures_dir, "dit_a")
    model = load_longcat_model(path, dtype=torch.float32)
    before = model.blocks[0].attn.qkv.weight.clone()
    gen = torch.Generator().manual_seed(0)
    down = torch.randn(2 * 4, 64, generator=gen)
    ups = [torch.randn(96, 4, generator=gen) for _ in range(2)]
    name = "lora___lorahyphen___blocks___lorahyphen___0___lorahyphen___attn___lorahyphen___qkv"
    lora = {f"{name}.lora_down.weight": down, f"{name}.lora_up.blocks.0.weight": ups[0],
            f"{name}.lora_up.blocks.1.weight": ups[1], f"{name}.alpha_scale": torch.tensor(0.5)}
    assert apply_longcat_lora(model, lora, 1.0) == 1
    expected = before + 0.5 * torch.cat([ups[0] @ down[:4], ups[1] @ down[4:]])
    assert torch.allclose(model.blocks[0].attn.qkv.weight, expected, atol=1e-5)


def test_wrong_files_named(fixtures_dir, tmp_path):
    _, tensors, config, _ = _fixture(fixtures_dir, "dit_a")
    gguf = tmp_path / "longcat.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match="GGUF"):
        load_longcat_model(gguf)
    partial = tmp_path / "partial.safetensors"
    save_file({"blocks.0.attn.qkv.weight": tensors["blocks.0.attn.qkv.weight"]}, str(partial))
    with pytest.raises(ModelFileError, match="not a LongCat-Video-Avatar checkpoint"):
        load_longcat_model(partial, config=config["model_kwargs"])
    with pytest.raises(WanVideoError, match="unknown keys"):
        build_model({"model_type": "longcat_avatar", "hidden_sise": 64})


def test_single_file_without_config_infers_sizes(fixtures_dir, tmp_path):
    """A repack without config.json: sizes come from the weights' shapes (fixture b: no audio pre-norm)."""
    _, tensors, config, calls = _fixture(fixtures_dir, "dit_b")
    file = tmp_path / "longcat_bf16.safetensors"
    save_file({k: v for k, v in tensors.items() if k.split(".")[0] not in ("input", "output", "debug", "aux")},
              str(file))
    from wanvideo.model.longcat_loading import infer_longcat_config, read_longcat_weights

    inferred = infer_longcat_config(read_longcat_weights(file)[0])
    expected = config["model_kwargs"]
    for key, value in inferred.items():
        if key != "num_heads":  # the real model's head size (128) is assumed; the tiny one has 32
            assert value == expected[key], key
    model = load_longcat_model(file, config={"num_heads": 2, "text_tokens_zero_pad": True}, dtype=torch.float32)
    out = _run_calls(model, tensors, calls)["avc"]
    assert (out - tensors["output.avc"]).abs().max() < TOL


def test_block_swap_gives_the_same_numbers(fixtures_dir):
    path, tensors, _, calls = _fixture(fixtures_dir, "dit_a")
    model = load_longcat_model(path, dtype=torch.float32)
    model.enable_block_swap(1, offload_device="cpu")
    out = _run_calls(model, tensors, calls)["ai2v"]
    assert model.block_swap.loads > 0
    assert (out - tensors["output.ai2v"]).abs().max() < TOL


def test_fp8_on_load_stays_close(fixtures_dir):
    path, tensors, _, calls = _fixture(fixtures_dir, "dit_a")
    model = load_longcat_model(path, dtype="fp32", quantize="fp8_e4m3fn")
    assert model.blocks[0].attn.qkv.weight.dtype == torch.float8_e4m3fn
    out = _run_calls(model, tensors, calls)["ai2v"]
    ref = tensors["output.ai2v"]
    assert 0 < ((out - ref).norm() / ref.norm()).item() < 0.3
