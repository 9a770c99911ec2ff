"""Long audio in chunks gives the whole-clip numbers (GroupNorm over the whole clip, global attention)."""
import numpy as np
import pytest
import soundfile as sf
import torch

import wanvideo.audio as audio
from wanvideo.audio.features import (
    conv_features,
    conv_geometry,
    embed_waveform16k,
    num_conv_frames,
    num_video_frames,
)
from wanvideo.audio.whole_clip import embed_whole_clip, set_attention_implementation

STABLE = dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)


@pytest.fixture(scope="module")
def speech(media_dir_module):
    wave, rate = sf.read(str(media_dir_module / "speech_long.flac"), dtype="float32")
    assert rate == 16000
    return wave


@pytest.fixture(scope="module")
def media_dir_module():
    from testlib import MEDIA

    return MEDIA


def test_geometry_of_wav2vec2_base():
    enc = audio.tiny_wav2vec2()
    assert conv_geometry(enc.config) == (320, 400)
    # the reference's conv output for its 36800-sample clip has 114 frames; 57 video frames at 25 fps
    assert num_conv_frames(36800, enc.config) == 114
    assert num_video_frames(36800, 25.0) == 57
    assert num_video_frames(16000 * 3 - 1, 25.0) == 74


@pytest.mark.parametrize("variant", ["group_norm", "stable_layer_norm"])
def test_chunked_equals_whole_clip_over_many_chunks(speech, variant):
    enc = audio.tiny_wav2vec2(seed=3, **(STABLE if variant != "group_norm" else {}))
    wave = speech[: 16000 * 12 + 1234]  # 12 s: ~600 conv frames -> 17 chunks of 37; 301 tokens -> 7 chunks of 50
    whole = embed_whole_clip(enc, wave)
    chunked = embed_waveform16k(enc, wave, chunk_frames=37, token_chunk=50)
    assert chunked.shape == whole.shape == (num_video_frames(wave.size, 25.0), 2, 32)
    assert float((chunked - whole).abs().max()) <= 1e-4


def test_conv_features_independent_of_chunk_size(speech):
    enc = audio.tiny_wav2vec2(seed=7)
    wave = torch.from_numpy(speech[: 16000 * 6 + 77].copy())
    with torch.no_grad():
        whole = enc.model.feature_extractor(wave[None])[0].T
        for chunk in (1, 13, 64, 10_000):
            part = conv_features(enc, wave, chunk_frames=chunk)
            assert part.shape == whole.shape
            assert float((part - whole).abs().max()) <= 1e-5, chunk


def test_do_normalize_models_normalise_over_the_whole_clip(speech):
    enc = audio.tiny_wav2vec2(seed=5, **STABLE)
    enc.do_normalize = True
    wave = speech[: 16000 * 5] * 0.3 + 0.05
    whole = embed_whole_clip(enc, wave)
    chunked = embed_waveform16k(enc, wave, chunk_frames=11, token_chunk=40)
    assert float((chunked - whole).abs().max()) <= 1e-4
    # normalisation makes the result independent of the input level
    louder = embed_waveform16k(enc, (wave - 0.05) * 2 + 0.05 * 2)
    assert float((louder - chunked).abs().max()) <= 1e-3


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("variant", ["group_norm", "stable_layer_norm"])
def test_matches_transformers_forward_without_interpolation(speech, attention, variant):
    """With as many video frames as conv frames the interpolation is the identity and our path is transformers' model."""
    enc = audio.tiny_wav2vec2(seed=11, **(STABLE if variant != "group_norm" else {}))
    wave = speech[: 16000 * 3 + 500]
    n = num_conv_frames(wave.size, enc.config)
    fps = (n + 0.5) / (wave.size / 16000)
    ours = embed_waveform16k(enc, wave, fps=fps, chunk_frames=20, token_chunk=16)
    set_attention_implementation(enc.model, attention)
    with torch.no_grad():
        out = enc.model(torch.from_numpy(wave)[None], output_hidden_states=True)
    hidden = out.hidden_states
    assert ours.shape == (n, 2, 32)
    # layers 1..L-1 as hidden states; the last one as transformers' last_hidden_state (after the final
    # LayerNorm in the stable variant, as transformers 4.x reports it and the reference used)
    for i in range(ours.shape[1] - 1):
        assert float((ours[:, i] - hidden[i + 1][0]).abs().max()) <= 1e-4
    assert float((ours[:, -1] - out.last_hidden_state[0]).abs().max()) <= 1e-4


def test_attention_never_builds_the_full_matrix(monkeypatch):
    """Attention goes through SDPA (whose CPU/CUDA kernels are O(tokens) in memory), never an explicit softmax(QK^T)."""
    enc = audio.tiny_wav2vec2(seed=1)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        calls.append(tuple(q.shape))
        return real(q, k, v, *args, **kwargs)

    def no_softmax(*args, **kwargs):
        raise AssertionError("explicit softmax used: quadratic memory")

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    monkeypatch.setattr(torch.nn.functional, "softmax", no_softmax)
    rng = np.random.default_rng(0)
    emb = embed_waveform16k(enc, rng.standard_normal(16000 * 4).astype(np.float32) * 0.1)
    assert emb.shape == (100, 2, 32)
    assert calls == [(1, 2, 100, 16)] * 2
