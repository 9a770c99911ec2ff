"""load_wav2vec: layouts in the wild, config inference, and clear refusals."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import wanvideo.audio as audio
from wanvideo.audio.checkpoint import bundled_config, infer_config, normalize_state_dict
from wanvideo.audio.tiny import random_wav2vec2
from wanvideo.errors import InputError, ModelFileError


@pytest.fixture(scope="module")
def wave():
    return (np.random.default_rng(1).standard_normal(16000 * 2) * 0.1).astype(np.float32)


def _emb(enc, wave):
    return audio.embed_audio(enc, wave, 16000)


def test_tiny_model_is_deterministic_per_seed(wave):
    a, b, c = audio.tiny_wav2vec2(0), audio.tiny_wav2vec2(0), audio.tiny_wav2vec2(1)
    assert a.hidden_size == 32 and a.num_layers == 2 and a.config.conv_dim == [16] * 7
    assert torch.equal(_emb(a, wave), _emb(b, wave))
    assert not torch.allclose(_emb(a, wave), _emb(c, wave))


def test_save_pretrained_roundtrip_and_transformers_can_read_it(tmp_path, wave):
    from transformers import Wav2Vec2Model

    enc = audio.tiny_wav2vec2(4)
    folder = enc.save_pretrained(tmp_path / "tiny")
    loaded = audio.load_wav2vec(folder)
    assert torch.equal(_emb(loaded, wave), _emb(enc, wave))
    hf = Wav2Vec2Model.from_pretrained(str(folder))
    ref = enc.state_dict()
    for k, v in hf.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_weights_file_of_a_folder_uses_the_folder_config(tmp_path, wave):
    enc = audio.tiny_wav2vec2(4, num_attention_heads=4)  # heads a bare file could not reveal
    folder = enc.save_pretrained(tmp_path / "tiny")
    loaded = audio.load_wav2vec(folder / "model.safetensors")
    assert loaded.config.num_attention_heads == 4
    assert torch.equal(_emb(loaded, wave), _emb(enc, wave))


def test_single_file_without_config_infers_sizes(tmp_path, wave):
    """A bare file (like the fp16 repacks) gets the bundled architecture with its own sizes (64-wide heads)."""
    cfg = {**bundled_config()[0], "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 96,
           "num_hidden_layers": 3, "conv_dim": [24] * 7, "num_conv_pos_embeddings": 8,
           "num_conv_pos_embedding_groups": 4}
    enc = random_wav2vec2(cfg, seed=3)
    sd = {"wav2vec2." + k: v for k, v in enc.state_dict().items()}
    sd["quantizer.codevectors"] = torch.zeros(1, 4, 8)  # pre-training heads are ignored
    sd["project_q.weight"] = torch.zeros(8, 8)
    save_file(sd, str(tmp_path / "bare.safetensors"))
    loaded = audio.load_wav2vec(tmp_path / "bare.safetensors")
    for key in ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers", "conv_dim",
                "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "conv_bias", "feat_extract_norm"):
        assert getattr(loaded.config, key) == cfg[key], key
    assert not loaded.do_normalize
    assert float((_emb(loaded, wave) - _emb(enc, wave)).abs().max()) <= 1e-5


def _shapes(config):
    from wanvideo.audio.encoder import build_transformers_model

    return dict(build_transformers_model(config).state_dict())  # meta tensors: shapes only


def test_config_inference_for_published_sizes():
    base = bundled_config()[0]
    inferred = infer_config(normalize_state_dict(_shapes(base), "base"))
    for key, value in base.items():
        assert inferred[key] == value, key
    large = {**base, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
             "intermediate_size": 4096, "feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}
    inferred = infer_config(normalize_state_dict(_shapes(large), "large"))
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "feat_extract_norm", "do_stable_layer_norm", "conv_bias"):
        assert inferred[key] == large[key], key


def test_bundled_config_is_chinese_wav2vec2_base():
    cfg, pre = bundled_config()
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (768, 12, 12, 3072)
    assert cfg["conv_dim"] == [512] * 7 and cfg["conv_kernel"] == [10, 3, 3, 3, 3, 2, 2]
    assert cfg["conv_stride"] == [5, 2, 2, 2, 2, 2, 2] and cfg["conv_bias"] is False
    assert (cfg["feat_extract_norm"], cfg["do_stable_layer_norm"], cfg["layer_norm_eps"]) == ("group", False, 1e-5)
    assert (cfg["num_conv_pos_embeddings"], cfg["num_conv_pos_embedding_groups"]) == (128, 16)
    assert pre["do_normalize"] is False


def test_attention_implementation_in_config_never_fails(tmp_path, wave):
    enc = audio.tiny_wav2vec2(6)
    folder = enc.save_pretrained(tmp_path / "tiny")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(_attn_implementation="flash_attention_2", attn_implementation="flash_attention_2")
    (folder / "config.json").write_text(json.dumps(cfg))
    assert torch.equal(_emb(audio.load_wav2vec(folder), wave), _emb(enc, wave))


def test_folder_without_weights_is_refused(tmp_path):
    folder = tmp_path / "chinese-wav2vec2-base"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(bundled_config()[0]))
    with pytest.raises(ModelFileError, match=r"has no wav2vec2 weights: expected model\.safetensors or pytorch_model\.bin"):
        audio.load_wav2vec(folder)


def test_other_models_are_refused_before_loading(tmp_path):
    dit = {"blocks.0.self_attn.q.weight": torch.zeros(4, 4), "audio_proj.proj1.weight": torch.zeros(4, 4)}
    path = tmp_path / "wan_dit.safetensors"
    save_file(dit, str(path))
    with pytest.raises(ModelFileError) as err:
        audio.load_wav2vec(path)
    msg = str(err.value)
    assert str(path) in msg and "not a wav2vec2 model" in msg
    assert "feature_extractor.conv_layers.0.conv.weight" in msg and "Wan video diffusion model" in msg


def test_damaged_and_partial_files_are_refused(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelFileError, match="broken.safetensors is truncated: the download stopped early"):
        audio.load_wav2vec(broken)
    partial = {k: v for k, v in audio.tiny_wav2vec2().state_dict().items() if not k.startswith("encoder.layers")}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(ModelFileError, match="only part of a wav2vec2 model"):
        audio.load_wav2vec(tmp_path / "partial.safetensors")
    with pytest.raises(InputError, match="does not exist"):
        audio.load_wav2vec(tmp_path / "missing")


def test_config_that_does_not_fit_the_weights(tmp_path):
    folder = audio.tiny_wav2vec2().save_pretrained(tmp_path / "tiny")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["intermediate_size"] = 100
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="do not fit the wav2vec2 config"):
        audio.load_wav2vec(folder)


def test_precision_a_device_cannot_run_is_refused(tmp_path, monkeypatch):
    """Older PyTorch builds have no fp16 convolution on the CPU: the loader says so instead of failing later."""
    folder = audio.tiny_wav2vec2().save_pretrained(tmp_path / "tiny")
    real_conv1d = torch.nn.functional.conv1d

    def conv1d(x, *args, **kwargs):
        if x.dtype == torch.float16 and x.device.type == "cpu":
            raise RuntimeError('"slow_conv2d_cpu" not implemented for \'Half\'')
        return real_conv1d(x, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv1d", conv1d)
    with pytest.raises(InputError, match=r"torch.float16 cannot run on cpu .* Choose precision fp32"):
        audio.load_wav2vec(folder, dtype="fp16")
    assert audio.load_wav2vec(folder, dtype="fp32").dtype == torch.float32


def test_bad_precision_and_device_names():
    with pytest.raises(InputError, match="precision"):
        audio.load_wav2vec("anything", dtype="int8")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            audio.load_wav2vec("anything", device="cuda")


def test_offload_keeps_weights_home_and_computes_elsewhere(tmp_path, wave):
    folder = audio.tiny_wav2vec2(2).save_pretrained(tmp_path / "tiny")
    enc = audio.load_wav2vec(folder, device="cpu", compute_device="cpu")
    assert enc.device.type == "cpu"
    seen = []
    with enc.computing():
        seen.append(enc.device)
    assert seen == [torch.device("cpu")] and enc.device.type == "cpu"
