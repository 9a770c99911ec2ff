"""Damaged model files and non-finite numbers: a clear error naming the file and the likely cause, never
black frames or silence with exit 0, and finished windows kept."""
from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from wanvideo.errors import ModelFileError, NonFiniteError
from wanvideo.model import load_model
from wanvideo.model.weight_files import read_safetensors_header


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    from wanvideo.tiny.files import write_tiny_models

    folder = tmp_path_factory.mktemp("models")
    names = write_tiny_models(str(folder))
    return folder, names


def _raw_safetensors(path, header) -> None:
    data = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(data)) + data + b"\0" * 64)


@pytest.mark.parametrize("header, words", [
    ([1, 2, 3], "header is a JSON list"),
    ({"w": {"dtype": "F32", "shape": [2]}}, "damaged header entry for 'w' \\(data_offsets None\\)"),
    ({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, "damaged header entry for 'w' \\(shape"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, "8 bytes for a F32 tensor of shape \\(4,\\)"),
    ({"w": [0, 8]}, "damaged header entry for 'w' \\(not a table\\)"),
    ("text", "header is a JSON str"),
])
def test_malformed_safetensors_headers_are_clear_errors(tmp_path, header, words):
    path = tmp_path / "broken.safetensors"
    _raw_safetensors(path, header)
    with pytest.raises(ModelFileError, match=words):
        read_safetensors_header(path)
    with pytest.raises(ModelFileError, match="broken.safetensors"):
        load_model([str(path)], dtype="fp32", device="cpu")


def test_nan_weights_in_the_video_model_are_found_while_loading(tiny_files, tmp_path):
    folder, names = tiny_files
    source = folder / "diffusion_models" / names["model"]
    sd = load_file(str(source))
    key = sorted(k for k in sd if k.endswith("ffn.0.weight"))[0]
    sd[key][0, 0] = float("nan")
    from safetensors import safe_open

    with safe_open(str(source), "pt") as f:
        metadata = f.metadata()
    damaged = tmp_path / "damaged.safetensors"
    save_file(sd, str(damaged), metadata=metadata)
    with pytest.raises(ModelFileError, match=rf"damaged.safetensors is damaged: tensor {key} holds 1 NaN/infinite"):
        load_model([str(damaged)], dtype="fp32", device="cpu")


def test_nan_in_an_fp8_weight_is_found(tmp_path):
    from wanvideo.torch_inputs import check_finite

    good = torch.ones(4, 4).to(torch.float8_e4m3fn)
    check_finite(good, "w", "model.safetensors")
    bad = good.clone().view(torch.uint8)
    bad[1, 1] = 0x7F  # e4m3fn's NaN
    with pytest.raises(ModelFileError, match="tensor w holds 1 NaN"):
        check_finite(bad.view(torch.float8_e4m3fn), "w", "model.safetensors")


def test_nan_weights_in_wav2vec2_are_found_while_loading(tiny_files, tmp_path):
    import shutil

    from wanvideo.audio import load_wav2vec

    folder, names = tiny_files
    copy = tmp_path / "w2v"
    shutil.copytree(folder / "wav2vec2" / names["wav2vec"], copy)
    sd = load_file(str(copy / "model.safetensors"))
    key = sorted(sd)[3]
    sd[key] = torch.full_like(sd[key], float("inf"))
    save_file(sd, str(copy / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="model.safetensors is damaged: tensor .* NaN/infinite"):
        load_wav2vec(str(copy))


def test_nan_audio_features_are_refused(tiny_files, monkeypatch):
    import numpy as np

    from wanvideo.audio import build_audio_embeddings, embeddings
    from wanvideo.audio.tiny import tiny_wav2vec2

    real = embeddings.embed_waveform16k
    monkeypatch.setattr(embeddings, "embed_waveform16k", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(NonFiniteError, match="wav2vec2 turned speaker 1's speech into NaN.*use fp32"):
        build_audio_embeddings(tiny_wav2vec2(seed=0), np.zeros(16000, np.float32) + 0.01, 16000)


# -- latents after each step ------------------------------------------------------------------------------------

def _fake_run(tmp_path, velocity, vae=None):
    from sampling_fakes import CONFIG, FakeDiT, FakeVAE, row_embeddings

    from wanvideo.sampling import SamplerSettings, generate

    settings = SamplerSettings(frame_window=17, motion_frames=9, steps=2, cfg=1.0, audio_cfg=1.0, width=32, height=32)
    image = torch.full((1, 32, 32, 3), 0.5)
    clip = torch.zeros(1, 257, CONFIG["clip_dim"])
    return generate(FakeDiT(velocity, record=False), vae or FakeVAE(record=False), image, clip,
                    audio=row_embeddings(33), settings=settings, store_root=str(tmp_path))


def test_nan_latent_stops_the_window_names_the_cause_and_keeps_finished_windows(tmp_path):
    calls = {"n": 0}

    def velocity(x, *args):  # from window 2 on: what fp16 overflow or NaN weights do
        calls["n"] += 1
        return torch.zeros_like(x) + (float("nan") if calls["n"] > 2 else 0.1)

    with pytest.raises(NonFiniteError) as err:
        _fake_run(tmp_path, velocity)
    message = str(err.value)
    assert "window 2/3 stopped: step 1/2 produced NaN/infinite values" in message
    assert "damaged or wrongly quantised model" in message and "fp16 overflow" in message
    assert "1 finished windows" in message
    (store_dir,) = tmp_path.iterdir()
    manifest = json.load(open(store_dir / "manifest.json"))
    assert len(manifest["windows"]) == 1 and list(manifest["states"]) == ["0"]  # what a rerun resumes from
    calls["n"] = -100  # the cause is gone: the rerun resumes at window 2 and completes
    store = _fake_run(tmp_path, velocity)
    assert store.complete and len(store) == 33


def test_nan_from_the_vae_is_refused_not_written_black(tmp_path):
    from sampling_fakes import FakeVAE

    vae = FakeVAE(record=False)
    real = vae.decode
    vae.decode = lambda latent: real(latent) * float("nan")
    with pytest.raises(NonFiniteError, match="the VAE decoded NaN/infinite pixels"):
        _fake_run(tmp_path, lambda x, *a: torch.zeros_like(x), vae)
    assert not [n for n in os.listdir(next(tmp_path.iterdir())) if n.endswith(".mkv")]


def _tiny_umt5_file(path, fp8: bool = False):
    """A ComfyUI-layout umt5 file (HF names, a spiece_model tensor, optional scaled fp8) of a tiny config."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=4,
                     feed_forward_proj="gated-gelu", dense_act_fn="gelu_pytorch_tanh", is_gated_act=True,
                     tie_word_embeddings=False)
    sd = {k: v.clone() for k, v in UMT5EncoderModel(cfg).state_dict().items() if k != "encoder.embed_tokens.weight"}
    if fp8:
        key = "encoder.block.0.layer.0.SelfAttention.q.weight"
        scale = sd[key].abs().max() / 448.0
        sd[key] = (sd[key] / scale).to(torch.float8_e4m3fn)
        sd[key[: -len(".weight")] + ".scale_weight"] = scale.reshape(())
        sd["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    sd["spiece_model"] = torch.zeros(16, dtype=torch.uint8)
    save_file(sd, str(path))
    return sd


def _tiny_clip():
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=1,
                           image_size=28, patch_size=14, hidden_act="gelu")
    return CLIPVisionModel(cfg)


def test_nan_weights_in_the_umt5_text_encoder_are_found_while_loading(tmp_path):
    from wanvideo.app.encoders import load_text_encoder

    path = tmp_path / "umt5_xxl_fp16.safetensors"
    sd = _tiny_umt5_file(path)
    key = "encoder.block.1.layer.1.DenseReluDense.wo.weight"
    sd[key][2, 3] = float("nan")
    sd[key][0, 1] = float("inf")
    save_file(sd, str(path))
    with pytest.raises(ModelFileError, match=rf"umt5_xxl_fp16.safetensors is damaged: tensor {key} holds 2 NaN/"
                                             r"infinite value\(s\) of 384.*download it again"):
        load_text_encoder(str(path), dtype=torch.float32)


def test_an_infinite_fp8_scale_in_the_umt5_file_is_found(tmp_path):
    from wanvideo.app.encoders import load_text_encoder

    path = tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    sd = _tiny_umt5_file(path, fp8=True)
    sd["encoder.block.0.layer.0.SelfAttention.q.scale_weight"] = torch.tensor(float("inf"))
    save_file(sd, str(path))
    with pytest.raises(ModelFileError, match="fp8_e4m3fn_scaled.safetensors is damaged: tensor "
                                             "encoder.block.0.layer.0.SelfAttention.q.scale_weight holds 1"):
        load_text_encoder(str(path), dtype=torch.float32)
    sd = _tiny_umt5_file(path, fp8=True)  # and an fp8 NaN bit pattern in the weight itself
    bad = sd["encoder.block.0.layer.0.SelfAttention.q.weight"].view(torch.uint8).clone()
    bad[0, 0] = 0x7F
    sd["encoder.block.0.layer.0.SelfAttention.q.weight"] = bad.view(torch.float8_e4m3fn)
    save_file(sd, str(path))
    with pytest.raises(ModelFileError, match="SelfAttention.q.weight holds 1 NaN"):
        load_text_encoder(str(path), dtype=torch.float32)


def test_nan_weights_in_the_clip_vision_file_and_folder_are_found_while_loading(tmp_path):
    from wanvideo.app.encoders import load_clip_vision

    model = _tiny_clip()
    sd = {"vision_model." + k if not k.startswith("vision_model.") else k: v.clone() for k, v in model.state_dict().items()}
    key = "vision_model.encoder.layers.1.mlp.fc1.weight"
    sd[key][0, 0] = float("nan")
    save_file(sd, str(tmp_path / "clip_vision_h.safetensors"))
    with pytest.raises(ModelFileError, match=rf"clip_vision_h.safetensors is damaged: tensor {key} holds 1 NaN"):
        load_clip_vision(str(tmp_path / "clip_vision_h.safetensors"), dtype=torch.float32)
    (norm,) = [v for k, v in model.state_dict().items() if k.endswith("post_layernorm.weight")]
    norm[3] = float("-inf")  # (state_dict tensors share the parameters' storage)
    model.save_pretrained(str(tmp_path / "clip-vit-h"))
    with pytest.raises(ModelFileError, match="clip-vit-h is damaged: tensor .*post_layernorm.weight holds 1"):
        load_clip_vision(str(tmp_path / "clip-vit-h"), dtype=torch.float32)
