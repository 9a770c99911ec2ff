"""LongCat-Video-Avatar 1.5 audio features (Whisper layer groups) against the official numbers."""
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from wanvideo.audio.longcat_whisper import (
    load_whisper,
    longcat_audio_features,
    longcat_audio_window,
    longcat_window_indices,
)
from wanvideo.errors import InputError, ModelFileError


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    from testlib import FIXTURES

    with safe_open(FIXTURES / "longcat_audio.safetensors", "pt") as f:
        cfg = json.loads(f.metadata()["config"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    folder = tmp_path_factory.mktemp("whisper")
    (folder / "config.json").write_text(json.dumps(cfg["whisper_config_full"]))
    pre = dict(cfg["preprocessor_config"], feature_extractor_type="WhisperFeatureExtractor")
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    save_file({k: v for k, v in tensors.items() if k.split(".")[0] in ("encoder", "decoder")},
              str(folder / "model.safetensors"))
    return folder, tensors


def test_full_features_match_official(fixture):
    folder, tensors = fixture
    model = load_whisper(folder)
    emb = longcat_audio_features(model, tensors["input.s0.waveform"].numpy(), sample_rate=16000, fps=25)
    ref = tensors["output.s0.full_audio_emb"]
    assert emb.shape == ref.shape == (185, 5, 16)
    err = (emb - ref).abs().max().item()
    assert err < 1e-4, err


@pytest.mark.parametrize("segment", [0, 1])
def test_segment_windows_match_official(fixture, segment):
    _, tensors = fixture
    full = tensors["output.s0.full_audio_emb"]
    window = longcat_audio_window(full, segment, num_frames=93, num_cond_frames=13, audio_stride=1)
    assert window.shape == (1, 93, 5, 5, 16)
    assert torch.equal(window, tensors[f"output.s0.segment{segment}.audio_emb"])
    assert torch.equal(longcat_window_indices(185, segment), tensors[f"output.s0.segment{segment}.center_indices"])


def _naive_features(model, wave, frames):
    """Every 30 s slice's 33 hidden states kept whole, then grouped (the official order of work)."""
    from wanvideo.audio.longcat_whisper import _loudness_normalized

    wave = _loudness_normalized(wave, 16000)
    states = []
    for start in range(0, len(wave), 480000):
        mel = model.feature_extractor(wave[start:start + 480000], sampling_rate=16000, return_tensors="pt")
        hidden = model.encoder(mel.input_features, output_hidden_states=True).hidden_states
        states.append(torch.stack(hidden, dim=2))
    states = torch.cat(states, dim=1)[:, : 2 * frames]
    groups = [states[:, :, a:b].mean(2) for a, b in ((0, 8), (8, 16), (16, 24), (24, 32))] + [states[:, :, 32]]
    out = [torch.nn.functional.interpolate(g.transpose(1, 2), size=frames, mode="linear", align_corners=True)
           for g in groups]
    return torch.stack([o.transpose(1, 2) for o in out], dim=2)[0]


def test_long_speech_across_slices_equals_whole_computation(fixture):
    """65 s (three 30 s Whisper slices): slice-by-slice reduction gives the whole computation's numbers."""
    folder, tensors = fixture
    model = load_whisper(folder)
    base = tensors["input.s0.waveform"].numpy()
    wave = np.tile(base, int(np.ceil(65 * 16000 / base.size)))[: 65 * 16000]
    emb = longcat_audio_features(model, wave)
    assert emb.shape == (1625, 5, 16)
    with torch.no_grad():
        ref = _naive_features(model, wave, 1625)
    assert (emb - ref).abs().max().item() < 1e-5


def test_bad_inputs_named(fixture, tmp_path):
    folder, _ = fixture
    with pytest.raises(ModelFileError, match="Whisper"):
        load_whisper(tmp_path)
    model = load_whisper(folder)
    with pytest.raises(InputError, match="16 kHz"):
        longcat_audio_features(model, np.zeros(16000, np.float32), sample_rate=44100)
    with pytest.raises(InputError, match="mono"):
        longcat_audio_features(model, np.zeros((2, 16000), np.float32))
