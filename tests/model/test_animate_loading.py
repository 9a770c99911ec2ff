"""Loading WanAnimate files as people have them: the official sharded release folder, Comfy-Org's single-file
bf16 repack, Kijai's fp8 scaled files (keep fp8 / convert), with or without the LIA blur kernels; block swap;
the relighting LoRA (official PEFT .ckpt and ComfyUI repack); wrong files in either slot."""
from __future__ import annotations

import json

import pytest
import torch
from model_testutils import expected_weights, to_precision
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from wanvideo.errors import ModelFileError
from wanvideo.model import load_model
from wanvideo.model.animate_dit import WanAnimateModel

NON_WEIGHT = ("input.", "output.", "aux.", "debug.", "derived.")
TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def case_a():
    from testlib import FIXTURES

    path = FIXTURES / "animate_a.safetensors"
    tensors = load_file(str(path))
    config = json.loads(safe_open(str(path), "pt").metadata()["config"])
    weights = {k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT)}
    return path, config, weights, tensors


def _cond(model, t):
    return model(t["input.x"][None], t["input.t"], t["input.context"][None], t["input.clip_fea"], t["input.y"][None],
                 pose_latents=t["input.pose_latents"], face_pixel_values=t["input.face_pixel_values"])[0]


# sizes a real 14B file never needs but the tiny one cannot tell from shapes
TINY = {"text_len": 16}


def test_fixture_file_loads_directly_and_matches(case_a):
    path, _, _, tensors = case_a
    model = load_model(path, dtype=torch.float32, device="cpu")
    assert isinstance(model, WanAnimateModel)
    torch.testing.assert_close(_cond(model, tensors), tensors["output.cond"], **TOL)


def test_sizes_are_read_from_the_weights(case_a, tmp_path):
    """Without any config the face path's sizes (heads, widths, face size, channels) come from tensor shapes."""
    _, config, weights, tensors = case_a
    path = tmp_path / "plain.safetensors"
    save_file({k: v for k, v in weights.items() if not k.endswith(".kernel")}, str(path))  # no blur kernels
    model = load_model(path, dtype=torch.float32, device="cpu", config=TINY)
    cfg = model.config
    assert cfg["num_heads"] == config["model_kwargs"]["num_heads"]
    assert cfg["face_encoder_width"] == config["face_encoder_width"]
    assert cfg["motion_encoder"]["size"] == config["motion_encoder"]["size"]
    assert cfg["motion_encoder"]["channels"] == {int(k): v for k, v in config["motion_encoder"]["channels"].items()}
    torch.testing.assert_close(_cond(model, tensors), tensors["output.cond"], **TOL)


def test_official_sharded_release_folder(case_a, tmp_path):
    _, config, weights, tensors = case_a
    folder = tmp_path / "Wan2.2-Animate-14B"
    folder.mkdir()
    names = sorted(weights)
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2:]), start=1):
        fname = f"diffusion_pytorch_model-0000{i}-of-00002.safetensors"
        save_file({k: weights[k] for k in part}, str(folder / fname))
        weight_map.update({k: fname for k in part})
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(dict(config["model_kwargs"], _class_name="WanAnimateModel")))
    model = load_model(folder, dtype=torch.float32, device="cpu")
    torch.testing.assert_close(_cond(model, tensors), tensors["output.cond"], **TOL)


def test_comfy_bf16_repack(case_a, tmp_path):
    _, _, weights, tensors = case_a
    path = tmp_path / "wan2.2_animate_14B_bf16.safetensors"
    save_file({"model.diffusion_model." + k: v for k, v in to_precision(weights, "bf16").items()}, str(path))
    model = load_model(path, dtype=torch.float32, device="cpu", config=TINY)
    assert model.loaded_from["layouts"] == ["comfyui"]
    # bf16-stored weights: within bf16 rounding of the float32 reference
    assert (_cond(model, tensors) - tensors["output.cond"]).abs().max() < 0.15


@pytest.mark.parametrize("keep_fp8", [False, True])
def test_kijai_fp8_scaled(case_a, tmp_path, keep_fp8):
    _, _, weights, tensors = case_a
    path = tmp_path / "Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors"
    save_file(to_precision(weights, "fp8_e4m3fn_scaled"), str(path))
    model = load_model(path, dtype=torch.float32, device="cpu", config=TINY, keep_fp8=keep_fp8)
    fp8 = [n for n, p in model.named_parameters() if p.dtype == torch.float8_e4m3fn]
    assert bool(fp8) == keep_fp8
    # the same numbers as a float32 model holding the dequantised fp8 weights
    reference = tmp_path / "dequantised.safetensors"
    save_file(expected_weights(weights, "fp8_e4m3fn_scaled"), str(reference))
    expected = _cond(load_model(reference, dtype=torch.float32, device="cpu", config=TINY), tensors)
    torch.testing.assert_close(_cond(model, tensors), expected, atol=1e-4, rtol=1e-4)


def test_block_swap_gives_the_same_numbers(case_a):
    path, _, _, tensors = case_a
    model = load_model(path, dtype=torch.float32, device="cpu", blocks_to_swap=3)
    torch.testing.assert_close(_cond(model, tensors), tensors["output.cond"], **TOL)
    assert model.block_swap.loads >= 3


@pytest.mark.parametrize("layout", ["peft_ckpt", "comfy_repack"])
def test_relight_lora(case_a, tmp_path, layout):
    """The official relighting LoRA (PEFT state dict in a .ckpt, rank = alpha) and a ComfyUI repack merge alike."""
    path, _, weights, tensors = case_a
    torch.manual_seed(0)
    targets = [k[: -len(".weight")] for k in weights if k.startswith("blocks.") and k.endswith((".q.weight", ".ffn.0.weight"))]
    lora, pairs = {}, {}
    for t in targets:
        out_f, in_f = weights[t + ".weight"].shape
        down, up = torch.randn(2, in_f) * 0.1, torch.randn(out_f, 2) * 0.1
        pairs[t] = (down, up)
        if layout == "peft_ckpt":
            lora[f"{t}.lora_A.weight"], lora[f"{t}.lora_B.weight"] = down, up
        else:
            lora[f"diffusion_model.{t}.lora_down.weight"], lora[f"diffusion_model.{t}.lora_up.weight"] = down, up
    if layout == "peft_ckpt":
        lora_path = tmp_path / "relighting_lora.ckpt"
        torch.save({"state_dict": lora}, str(lora_path))
    else:
        lora_path = tmp_path / "WanAnimate_relight_lora_fp16.safetensors"
        save_file(lora, str(lora_path))
    plain = load_model(path, dtype=torch.float32, device="cpu")
    merged = load_model(path, dtype=torch.float32, device="cpu", loras=[(lora_path, 1.0)])
    t = targets[0]
    down, up = pairs[t]
    module = dict(merged.named_modules())[t]
    torch.testing.assert_close(module.weight, dict(plain.named_modules())[t].weight + up @ down, atol=1e-6, rtol=1e-5)
    assert (_cond(merged, tensors) - tensors["output.cond"]).abs().max() > 1e-3


def test_wrong_files_in_either_slot(case_a, fixtures_dir, tmp_path):
    path, _, _, _ = case_a
    with pytest.raises(ModelFileError, match="Wan2.2-Animate.*no InfiniteTalk file"):
        load_model(path, dtype=torch.float32, device="cpu", infinitetalk=fixtures_dir / "dit_a_single.safetensors")
    with pytest.raises(ModelFileError, match="Wan2.2-Animate"):
        load_model(path, dtype=torch.float32, device="cpu", require_audio=True)
    tensors = load_file(str(path))
    broken = tmp_path / "animate_without_face.safetensors"
    save_file({k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT + ("face_encoder.",))}, str(broken))
    with pytest.raises(ModelFileError, match="face encoder is missing"):
        load_model(broken, dtype=torch.float32, device="cpu")
