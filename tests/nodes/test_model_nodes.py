"""The model loader and LoRA select nodes, as ComfyUI calls them."""
import os
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from wanvideo_infinitetalk_pack.nodes import model_nodes
from wanvideo_infinitetalk_pack.nodes.model_nodes import InfiniteTalkLoraSelect, InfiniteTalkModelLoader
from wanvideo_infinitetalk_pack.nodes.model_patcher import InfiniteTalkModelPatcher, engine_model
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError, ModelFileError
from wanvideo_infinitetalk_pack.wanvideo.model.placement import tensor_bytes

NON_WEIGHT = ("input.", "output.", "aux.", "debug.", "derived.")


@pytest.fixture
def comfy_models(fixtures_dir, tmp_path, monkeypatch):
    """A ComfyUI models/ tree holding the fixture model split as users have it, behind a fake folder_paths."""
    tensors = load_file(str(fixtures_dir / "dit_b_two_speakers.safetensors"))
    weights = {k: v for k, v in tensors.items() if not k.startswith(NON_WEIGHT)}
    adapter = lambda k: k.startswith("audio_proj.") or ".audio_cross_attn." in k or ".norm_x." in k  # noqa: E731
    models = tmp_path / "models"
    for sub in ("diffusion_models", "unet", "model_patches", "loras"):
        (models / sub).mkdir(parents=True)
    # ComfyUI repack of the Wan model; the adapter as ComfyUI's native model_patches keeps it
    save_file({"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in weights.items() if not adapter(k)},
              str(models / "diffusion_models" / "wan2.1_i2v_tiny_bf16.safetensors"))
    save_file({k: v for k, v in weights.items() if adapter(k)}, str(models / "model_patches" / "infinitetalk_single.safetensors"))
    save_file({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.ones(2, 64) * 0.01,
               "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.ones(64, 2) * 0.01,
               "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(2.0)},
              str(models / "loras" / "step_distill.safetensors"))
    folders = {"diffusion_models": ([str(models / "diffusion_models"), str(models / "unet")], {".safetensors"}),
               "loras": ([str(models / "loras")], {".safetensors"})}

    def get_filename_list(name):
        out = []
        for base in folders[name][0]:
            for p in sorted(Path(base).rglob("*")):
                if p.is_file() and p.suffix in folders[name][1]:
                    out.append(str(p.relative_to(base)).replace("\\", "/"))
        return out

    def get_full_path(name, filename):
        for base in folders.get(name, ([], None))[0]:
            p = os.path.join(base, filename)
            if os.path.isfile(p):
                return p
        return None

    fake = types.SimpleNamespace(
        models_dir=str(models), folder_names_and_paths=folders, get_filename_list=get_filename_list,
        get_full_path=get_full_path, get_folder_paths=lambda name: list(folders[name][0]),
    )
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    model_nodes.host.register_model_folder("model_patches")
    return models, weights, tensors


def _run(model, tensors, output="cond"):
    ctx_key, audio_key = {"cond": ("input.context", "input.audio"), "uncond": ("input.context_null", "input.audio_null")}[output]
    return model(tensors["input.x"][None], tensors["input.t"], tensors[ctx_key][None], tensors["input.clip_fea"],
                 tensors["input.y"], audio=tensors[audio_key], ref_target_masks=tensors["input.ref_target_masks"])


def test_declarations():
    spec = InfiniteTalkModelLoader.INPUT_TYPES()
    assert set(spec["required"]) == {"model", "infinitetalk", "precision", "quantization", "blocks_to_swap", "attention"}
    assert set(spec["optional"]) == {"lora", "offload_after_sampling"}
    assert spec["required"]["attention"][0] == ["sdpa", "sage", "flash"]
    assert spec["required"]["precision"][1]["default"] == "bf16"
    assert InfiniteTalkModelLoader.RETURN_TYPES == ("INFINITETALK_MODEL",)
    assert InfiniteTalkLoraSelect.RETURN_TYPES == ("INFINITETALK_LORA",)


def test_loader_lists_models_and_adapters_and_loads_them(comfy_models, monkeypatch):
    models, weights, tensors = comfy_models
    spec = InfiniteTalkModelLoader.INPUT_TYPES()["required"]
    assert spec["model"][0] == ["wan2.1_i2v_tiny_bf16.safetensors"]
    # adapters may sit in diffusion_models (wrapper convention) or model_patches (ComfyUI native)
    assert spec["infinitetalk"][0] == ["none", "infinitetalk_single.safetensors", "wan2.1_i2v_tiny_bf16.safetensors"]
    assert InfiniteTalkLoraSelect.INPUT_TYPES()["required"]["lora"][0] == ["step_distill.safetensors"]

    # the tiny model's head count is not readable from weights: the fixture's config provides it
    monkeypatch.setattr(model_nodes, "load_model", _with_tiny_config(model_nodes.load_model))
    (patcher,) = InfiniteTalkModelLoader().load("wan2.1_i2v_tiny_bf16.safetensors", "infinitetalk_single.safetensors",
                                                precision="fp32", quantization="disabled", blocks_to_swap=1)
    model = engine_model(patcher)
    # A model for ComfyUI's model management: nothing on the GPU until the sampler asks the host to load it;
    # the host manages everything but the block the user swapped.
    assert isinstance(patcher, InfiniteTalkModelPatcher) and patcher.loaded_size() == 0
    assert patcher.model_size() == tensor_bytes(model) - tensor_bytes(model.blocks[0])
    assert model.has_audio_adapter and model.compute_dtype == torch.float32 and model.block_swap is not None
    # bf16 Wan weights, fp32 adapter: the same model up to the file's bf16 rounding (single-speaker call)
    assert (_run(model, tensors, "uncond") - tensors["output.uncond"]).abs().max() < 0.1

    (chain,) = InfiniteTalkLoraSelect().select("step_distill.safetensors", 0.5)
    (chain,) = InfiniteTalkLoraSelect().select("step_distill.safetensors", 0.25, prev_lora=chain)
    assert [c["strength"] for c in chain] == [0.5, 0.25]
    (with_lora,) = InfiniteTalkModelLoader().load("wan2.1_i2v_tiny_bf16.safetensors", "infinitetalk_single.safetensors",
                                                  precision="fp32", quantization="disabled", lora=chain)
    delta = engine_model(with_lora).blocks[0].self_attn.q.weight - model.blocks[0].self_attn.q.weight
    assert torch.allclose(delta, torch.full((64, 64), 0.75 * 2e-4 * 2 / 2), atol=1e-7)


def _with_tiny_config(load):
    def wrapped(*args, **kw):
        kw["config"] = {"num_heads": 4, "text_len": 16, "audio_layers": 2, "audio_channels": 32}
        return load(*args, **kw)
    return wrapped


def test_loader_errors_reach_the_user(comfy_models, monkeypatch):
    models, _, _ = comfy_models
    monkeypatch.setattr(model_nodes, "load_model", _with_tiny_config(model_nodes.load_model))
    with pytest.raises(InputError, match="not found"):
        InfiniteTalkModelLoader().load("missing.safetensors", "none")
    # the adapter picked as the model and the model as the adapter
    with pytest.raises(ModelFileError, match="swapped"):
        InfiniteTalkModelLoader().load(str(models / "model_patches" / "infinitetalk_single.safetensors"),
                                       str(models / "diffusion_models" / "wan2.1_i2v_tiny_bf16.safetensors"))
    with pytest.raises(ModelFileError, match="LoRA file"):
        InfiniteTalkModelLoader().load(str(models / "loras" / "step_distill.safetensors"), "none")
    with pytest.raises(InputError, match="not installed|needs a CUDA GPU"):
        InfiniteTalkModelLoader().load("wan2.1_i2v_tiny_bf16.safetensors", "infinitetalk_single.safetensors",
                                       precision="fp32", attention="flash")


def test_none_adapter_gives_plain_i2v(comfy_models, monkeypatch):
    monkeypatch.setattr(model_nodes, "load_model", _with_tiny_config(model_nodes.load_model))
    (model,) = InfiniteTalkModelLoader().load("wan2.1_i2v_tiny_bf16.safetensors", "none", precision="bf16",
                                              quantization="fp8_e4m3fn")
    assert not model.has_audio_adapter
    assert model.blocks[0].ffn[0].weight.dtype == torch.float8_e4m3fn


def test_loader_lists_put_the_files_each_slot_wants_first(monkeypatch):
    """A new loader preselects the first entry: the Wan model in the model slot, never an adapter."""
    files = ["Wan2_1-InfiniteTalk-Multi_fp8_e4m3fn_scaled_KJ.safetensors", "Wan2_1-InfiniteTalk_Single_fp16.safetensors",
             "flux1-dev.safetensors", "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"]
    monkeypatch.setattr(model_nodes.host, "model_files", lambda *folders: sorted(files))
    monkeypatch.setattr(model_nodes.host, "model_subfolders", lambda *a, **k: [])
    required = InfiniteTalkModelLoader.INPUT_TYPES()["required"]
    models, adapters = required["model"][0], required["infinitetalk"][0]
    assert models[0] == "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"
    assert models[-2:] == files[:2], "adapters go last in the model slot"
    assert sorted(models) == sorted(files), "nothing is hidden"
    assert adapters[:3] == ["none", *files[:2]]
    assert sorted(adapters[3:]) == ["flux1-dev.safetensors", "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"]


def test_loader_lists_and_loads_gguf_files(comfy_models, monkeypatch):
    """ComfyUI lists no .gguf in diffusion_models/unet by itself: the loader finds them (in sub-folders too)."""
    from wanvideo_infinitetalk_pack.wanvideo.model.quant.gguf_write import write_gguf

    models, weights, tensors = comfy_models
    adapter = lambda k: k.startswith("audio_proj.") or ".audio_cross_attn." in k or ".norm_x." in k  # noqa: E731
    (models / "unet" / "gguf").mkdir()
    write_gguf(models / "unet" / "gguf" / "wan2.1-i2v-14b-480p-Q8_0.gguf",
               {k: v for k, v in weights.items() if not adapter(k)}, "Q8_0")
    write_gguf(models / "diffusion_models" / "Wan2_1-InfiniteTalk_Single_Q8.gguf",
               {k: v for k, v in weights.items() if adapter(k)}, "Q8_0")
    spec = InfiniteTalkModelLoader.INPUT_TYPES()["required"]
    assert "gguf/wan2.1-i2v-14b-480p-Q8_0.gguf" in spec["model"][0]
    assert "Wan2_1-InfiniteTalk_Single_Q8.gguf" in spec["infinitetalk"][0]
    assert "gguf" in spec["model"][1]["tooltip"].lower() and "gguf" in spec["quantization"][1]["tooltip"].lower()

    monkeypatch.setattr(model_nodes, "load_model", _with_tiny_config(model_nodes.load_model))
    (model,) = InfiniteTalkModelLoader().load("gguf/wan2.1-i2v-14b-480p-Q8_0.gguf", "Wan2_1-InfiniteTalk_Single_Q8.gguf",
                                              precision="fp32", quantization="keep_fp8")
    q = model.blocks[0].self_attn.q
    assert q.weight.dtype == torch.uint8 and q.weight_format.qtype == "Q8_0"  # kept quantised
    # the fixture model's output within Q8_0's error (see tests/model/test_gguf_loading.py for the bound)
    out = _run(model, tensors, "uncond")
    assert float((out - tensors["output.uncond"]).norm() / tensors["output.uncond"].norm()) < 0.05
    (unpacked,) = InfiniteTalkModelLoader().load("gguf/wan2.1-i2v-14b-480p-Q8_0.gguf", "Wan2_1-InfiniteTalk_Single_Q8.gguf",
                                                 precision="fp32", quantization="disabled")
    assert unpacked.blocks[0].self_attn.q.weight.dtype == torch.float32
