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
    from wanvideo.tiny_files import write_tiny_models

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
    assert len(manifest["windows"]) == 1 and manifest["state"]  # what a rerun resumes from (tests/sampling)
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
