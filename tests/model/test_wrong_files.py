"""Every wrong file a user may pick gets an error that names the problem (and not a torch traceback)."""
import json

import pytest
import torch
from model_testutils import TINY_OVERRIDES, is_adapter_key, load_dit_fixture
from safetensors.torch import save_file

from wanvideo.errors import ModelFileError
from wanvideo.model import load_model


@pytest.fixture(scope="module")
def weights():
    from testlib import FIXTURES

    return load_dit_fixture(FIXTURES / "dit_a_single.safetensors")[1]


def _save(tmp_path, name, tensors, metadata=None):
    path = tmp_path / name
    save_file(tensors, str(path), metadata=metadata)
    return path


def _split(weights):
    wan = {k: v for k, v in weights.items() if not is_adapter_key(k)}
    adapter = {k: v for k, v in weights.items() if is_adapter_key(k)}
    return wan, adapter


def _load(*args, **kw):
    kw.setdefault("config", TINY_OVERRIDES)
    return load_model(*args, dtype=torch.float32, device="cpu", **kw)


def test_t2v_model(weights, tmp_path):
    wan, _ = _split(weights)
    t2v = {k: v for k, v in wan.items() if not k.startswith("img_emb.") and "_img" not in k}
    t2v["patch_embedding.weight"] = t2v["patch_embedding.weight"][:, :16].contiguous()
    with pytest.raises(ModelFileError, match="this is a T2V .*model: InfiniteTalk needs Wan2.1 I2V 14B"):
        _load(_save(tmp_path, "wan2.1_t2v_14B.safetensors", t2v))


def test_infinitetalk_file_without_audio_proj(weights, tmp_path):
    wan, _ = _split(weights)
    wan_path = _save(tmp_path, "wan_i2v.safetensors", wan)
    other = _save(tmp_path, "some_lora_like_patch.safetensors", {"blocks.0.something.weight": torch.zeros(2, 2)})
    with pytest.raises(ModelFileError, match="has no audio_proj: not an InfiniteTalk checkpoint"):
        _load(wan_path, infinitetalk=other)


def test_wan_model_without_adapter_when_audio_is_required(weights, tmp_path):
    wan, _ = _split(weights)
    with pytest.raises(ModelFileError, match="no audio_proj"):
        _load(_save(tmp_path, "wan_i2v.safetensors", wan), require_audio=True)


def test_truncated_safetensors(weights, tmp_path):
    path = _save(tmp_path, "wan_i2v.safetensors", weights)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ModelFileError, match="is truncated: the download stopped early .*re-download"):
        _load(path)
    path.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(ModelFileError, match="truncated|re-download"):
        _load(path)


def test_unknown_layout(tmp_path):
    path = _save(tmp_path, "mystery.safetensors", {"foo.bar.weight": torch.zeros(3, 3), "baz": torch.zeros(2)})
    with pytest.raises(ModelFileError, match="unknown layout"):
        _load(path)


def test_shape_mismatch_names_the_key(weights, tmp_path):
    bad = dict(weights)
    bad["blocks.1.ffn.0.weight"] = torch.zeros(100, 64)
    with pytest.raises(ModelFileError, match=r"shape mismatch for blocks\.1\.ffn\.0\.weight"):
        _load(_save(tmp_path, "wan.safetensors", bad))


def test_adapter_for_another_model_width(weights, tmp_path):
    wan, adapter = _split(weights)
    adapter = {k: (torch.zeros(2 * 96, v.shape[1]) if k.endswith("kv_linear.weight") else v) for k, v in adapter.items()}
    with pytest.raises(ModelFileError, match="for a model of width 96"):
        _load(_save(tmp_path, "wan.safetensors", wan), infinitetalk=_save(tmp_path, "it.safetensors", adapter))


def test_swapped_model_and_adapter(weights, tmp_path):
    wan, adapter = _split(weights)
    wan_path, it_path = _save(tmp_path, "wan.safetensors", wan), _save(tmp_path, "it.safetensors", adapter)
    with pytest.raises(ModelFileError, match="swapped"):
        _load(it_path, infinitetalk=wan_path)
    with pytest.raises(ModelFileError, match="holds only the InfiniteTalk adapter"):
        _load(it_path)


def test_adapter_given_twice(weights, tmp_path):
    _, adapter = _split(weights)
    with pytest.raises(ModelFileError, match="already holds InfiniteTalk weights"):
        _load(_save(tmp_path, "combined.safetensors", weights), infinitetalk=_save(tmp_path, "it.safetensors", adapter))


@pytest.mark.parametrize("tensors, message", [
    ({"blocks.0.self_attn.q.lora_down.weight": torch.zeros(4, 64), "blocks.0.self_attn.q.lora_up.weight": torch.zeros(64, 4)},
     "LoRA file"),
    ({"decoder.middle.0.residual.0.gamma": torch.zeros(4), "encoder.conv1.weight": torch.zeros(4, 3, 3, 3, 3)}, "VAE"),
    ({"encoder.block.0.layer.0.SelfAttention.q.weight": torch.zeros(4, 4), "shared.weight": torch.zeros(8, 4)},
     "text encoder"),
    ({"vace_blocks.0.after_proj.bias": torch.zeros(4), "blocks.0.self_attn.q.weight": torch.zeros(4, 4),
      "patch_embedding.weight": torch.zeros(4, 16, 1, 2, 2)}, "VACE"),
    ({"double_blocks.0.img_attn.qkv.weight": torch.zeros(4, 4)}, "not a Wan model"),
])
def test_other_kinds_of_model(tensors, message, tmp_path):
    with pytest.raises(ModelFileError, match=message):
        _load(_save(tmp_path, "picked.safetensors", tensors))


def test_wan22_i2v_without_clip_embedding(weights, tmp_path):
    wan, adapter = _split(weights)
    no_clip = {k: v for k, v in wan.items() if not k.startswith("img_emb.")}
    with pytest.raises(ModelFileError, match="no CLIP image embedding"):
        _load(_save(tmp_path, "wan2.2_i2v.safetensors", no_clip))


def test_missing_weights(weights, tmp_path):
    partial = {k: v for k, v in weights.items() if k != "blocks.1.cross_attn.o.weight"}
    with pytest.raises(ModelFileError, match=r"missing .*blocks\.1\.cross_attn\.o\.weight"):
        _load(_save(tmp_path, "wan.safetensors", partial))


def test_not_weights_at_all(tmp_path):
    lfs = tmp_path / "wan.safetensors"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(ModelFileError, match="Git LFS pointer"):
        _load(lfs)
    html = tmp_path / "wan2.safetensors"
    html.write_text("<!DOCTYPE html><html><body>Access denied</body></html>")
    with pytest.raises(ModelFileError, match="web page"):
        _load(html)
    gguf = tmp_path / "wan.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelFileError, match="GGUF"):
        _load(gguf)
    with pytest.raises(ModelFileError, match="not found"):
        _load(tmp_path / "nope.safetensors")


def test_missing_shard(weights, tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_file(weights, str(folder / "part-00001-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "part-00001-of-00002.safetensors", "b": "part-00002-of-00002.safetensors"}}))
    with pytest.raises(ModelFileError, match="shards that are missing: part-00002"):
        _load(folder)


def test_unsupported_quantisation_format(weights, tmp_path):
    bad = dict(weights)
    bad["blocks.0.self_attn.q.comfy_quant"] = torch.tensor(list(json.dumps({"format": "int8_tensorwise"}).encode()),
                                                          dtype=torch.uint8)
    with pytest.raises(ModelFileError, match="int8_tensorwise"):
        _load(_save(tmp_path, "wan_int8.safetensors", bad))


def test_wrong_precision_and_backend_names(weights, tmp_path):
    from wanvideo.errors import InputError

    path = _save(tmp_path, "wan.safetensors", weights)
    with pytest.raises(InputError, match="fp32, bf16 or fp16"):
        load_model(path, dtype="fp8", device="cpu", config=TINY_OVERRIDES)
    with pytest.raises(InputError, match="unknown attention backend"):
        _load(path, attention="xformers")
    with pytest.raises(InputError, match="(not installed|needs a CUDA GPU)"):
        _load(path, attention="sage")
    with pytest.raises(InputError, match="(not installed|needs a CUDA GPU)"):
        _load(path, attention="flash")
