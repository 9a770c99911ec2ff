"""The reference's wav2vec2 path (audio_public fixture) reproduced through load_wav2vec + embed_audio."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

import wanvideo.audio as audio
from wanvideo.audio.features import embed_waveform16k

ATOL = 1e-4


def _max_err(a, b):
    return float((a.float() - b.float()).abs().max())


def _single_file(audio_fixture, tmp_path, prefix, weight_norm, config_via):
    path = tmp_path / f"w2v_{weight_norm}_{prefix.strip('.') or 'noprefix'}.safetensors"
    metadata = None
    if config_via == "metadata":
        metadata = {"format": "pt", "config": json.dumps(audio_fixture.config)}
    save_file(audio_fixture.single_file_weights(prefix, weight_norm), str(path), metadata=metadata)
    if config_via == "sidecar":
        path.with_suffix(".json").write_text(json.dumps(audio_fixture.config))
    return path


def test_loudness_normalisation_matches_reference(audio_fixture):
    raw = audio_fixture["input.waveform_raw"].numpy()
    normed, lufs = audio.loudness_normalize(raw)
    if "measured_loudness_lufs_raw" in audio_fixture.call:
        assert lufs == pytest.approx(audio_fixture.call["measured_loudness_lufs_raw"], abs=1e-4)
    assert np.abs(normed - audio_fixture["input.waveform_loudness_normalized"].numpy()).max() <= 1e-6
    assert normed.dtype == np.float32


def test_hf_folder_reproduces_reference_embedding(audio_fixture, tmp_path):
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf"))
    emb = audio.embed_audio(enc, audio_fixture["input.waveform_raw"], 16000)
    expected = audio_fixture["output.embedding"]
    assert emb.shape == expected.shape
    assert emb.dtype == torch.float32
    assert _max_err(emb, expected) <= ATOL


def test_intermediate_tensors_match_reference(audio_fixture, tmp_path):
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf"))
    inter = {}
    embed_waveform16k(enc, audio_fixture["input.waveform_loudness_normalized"].numpy(), intermediates=inter)
    conv = audio_fixture["debug.conv_features"][0].T  # [frames, channels]
    assert _max_err(inter["conv_features"], conv) <= ATOL
    for name in ("interpolated_features", "projected_features", "encoder_input_hidden_state"):
        ref = audio_fixture["debug." + name]  # [1, frames, channels]
        assert _max_err(inter[name].reshape(ref.shape), ref) <= ATOL, name


def test_pytorch_model_bin_folder(audio_fixture, tmp_path):
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf_bin", "pytorch_model.bin"))
    emb = audio.embed_audio(enc, audio_fixture["input.waveform_raw"], 16000)
    assert _max_err(emb, audio_fixture["output.embedding"]) <= ATOL


@pytest.mark.parametrize("prefix", ["", "wav2vec2."])
@pytest.mark.parametrize("weight_norm", ["parametrizations", "weight_g_v", "folded"])
@pytest.mark.parametrize("config_via", ["metadata", "sidecar"])
def test_single_safetensors_layouts(audio_fixture, tmp_path, prefix, weight_norm, config_via):
    path = _single_file(audio_fixture, tmp_path, prefix, weight_norm, config_via)
    enc = audio.load_wav2vec(path)
    emb = audio.embed_audio(enc, audio_fixture["input.waveform_raw"], 16000)
    assert _max_err(emb, audio_fixture["output.embedding"]) <= ATOL


def test_fixture_wav_file_through_soundfile(audio_fixture, tmp_path):
    """The stored wav read as the reference reads it (int16 / 32768) gives the same embedding."""
    from testlib import FIXTURES

    wave, rate = sf.read(str(FIXTURES / "audio_public.wav"), dtype="float32")
    assert np.abs(wave - audio_fixture["input.waveform_raw"].numpy()).max() == 0
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf"))
    assert _max_err(audio.embed_audio(enc, wave, rate), audio_fixture["output.embedding"]) <= ATOL


def test_two_speakers_para_match_reference_dit_fixture(audio_fixture, tmp_path):
    """dit_b's speakers went through the reference's audio_prepare_multi(..., 'para') + get_embedding."""
    from safetensors.torch import load_file
    from testlib import FIXTURES

    dit_b = load_file(str(FIXTURES / "dit_b_two_speakers.safetensors"))
    w1, r1 = sf.read(str(FIXTURES / "audio_public.wav"), dtype="float32")
    w2, r2 = sf.read(str(FIXTURES / "speech_public_person2.wav"), dtype="float32")
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf"))
    emb = audio.build_audio_embeddings(enc, w1, r1, w2, r2, mode="para")
    assert emb.mode == "para" and emb.num_speakers == 2
    assert _max_err(emb.speakers[0], dit_b["aux.full_audio_emb.person1"]) <= ATOL
    assert _max_err(emb.speakers[1], dit_b["aux.full_audio_emb.person2"]) <= ATOL
    frames = dit_b["input.audio"].shape[1]
    windows = torch.stack([audio.frame_windows(s, 0, frames) for s in emb.speakers])
    assert _max_err(windows, dit_b["input.audio"]) <= ATOL


@pytest.mark.parametrize("precision,tol", [("fp16", 0.05), ("bf16", 0.3)])
def test_half_precisions_run_close_to_fp32(audio_fixture, tmp_path, precision, tol):
    enc = audio.load_wav2vec(audio_fixture.save_hf_folder(tmp_path / "hf"), dtype=precision)
    assert enc.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    emb = audio.embed_audio(enc, audio_fixture["input.waveform_raw"], 16000)
    ref = audio_fixture["output.embedding"]
    assert emb.dtype == torch.float32 and torch.isfinite(emb).all()
    assert _max_err(emb, ref) <= tol * float(ref.abs().max())


def test_fixture_file_itself_loads_with_its_metadata_config(audio_fixture):
    """A single file whose metadata carries the wav2vec2 config (extra tensors are ignored)."""
    from testlib import FIXTURES

    enc = audio.load_wav2vec(FIXTURES / "audio_public.safetensors")
    assert enc.config.num_attention_heads == audio_fixture.config["num_attention_heads"]
    emb = audio.embed_audio(enc, audio_fixture["input.waveform_raw"], 16000)
    assert _max_err(emb, audio_fixture["output.embedding"]) <= ATOL
