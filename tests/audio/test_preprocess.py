"""Waveform preparation: downmix, resampling, loudness, and the inputs we refuse."""
import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import wanvideo.audio as audio
from wanvideo.audio.features import embed_waveform16k
from wanvideo.audio.preprocess import integrated_loudness, prepare_waveform, resample, to_mono
from wanvideo.errors import InputError


@pytest.fixture(scope="module")
def enc():
    return audio.tiny_wav2vec2(seed=2)


def _speech(media_dir, name="speech_en_mono16k.wav", seconds=None):
    wave, rate = sf.read(str(media_dir / name), dtype="float32", always_2d=True)
    wave = wave.T  # [channels, samples]
    if seconds:
        wave = wave[:, : int(seconds * rate)]
    return wave, rate


def test_any_channel_count_is_the_channel_mean(enc, media_dir):
    wave, rate = _speech(media_dir, seconds=2.0)
    left = wave[0]
    six = np.stack([left * g for g in (0.2, 0.4, 0.6, 0.8, 1.0, 1.2)])  # mean = 0.7 * left
    emb6 = audio.embed_audio(enc, six, rate, normalize_loudness=False)
    emb_mean = audio.embed_audio(enc, left * 0.7, rate, normalize_loudness=False)
    assert float((emb6 - emb_mean).abs().max()) <= 1e-5
    stereo = np.stack([left, np.zeros_like(left)])  # not "the left channel": the mean
    emb_stereo = audio.embed_audio(enc, stereo, rate, normalize_loudness=False)
    emb_half = audio.embed_audio(enc, left * 0.5, rate, normalize_loudness=False)
    emb_left = audio.embed_audio(enc, left, rate, normalize_loudness=False)
    assert float((emb_stereo - emb_half).abs().max()) <= 1e-5
    assert float((emb_stereo - emb_left).abs().max()) > 1e-3


def test_torch_and_samples_first_layouts_are_accepted(media_dir):
    wave, _ = _speech(media_dir, "speech_en_stereo24k.wav", seconds=1.0)
    mono = to_mono(wave)
    assert np.allclose(to_mono(torch.from_numpy(wave)), mono)
    assert np.allclose(to_mono(torch.from_numpy(wave)[None]), mono)  # ComfyUI [1, C, T]
    assert np.allclose(to_mono(wave.T), mono)  # soundfile's [T, C]
    pcm = (wave[0] * 32767).astype(np.int16)
    assert np.abs(to_mono(pcm) - pcm / 32768.0).max() < 1e-7


def test_resampling_keeps_the_signal_and_the_reference_length():
    rate = 44100
    t = np.arange(int(rate * 1.5)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    out = resample(tone, rate, 16000)
    assert out.dtype == np.float32
    assert out.shape[0] == math.ceil(tone.shape[0] * 16000 / rate)  # as librosa.load gives it
    t16 = np.arange(out.shape[0]) / 16000
    expected = 0.5 * np.sin(2 * np.pi * 440.0 * t16)
    core = slice(800, -800)  # away from the filter's edges
    assert np.abs(out[core] - expected[core]).max() < 1e-3


def test_frame_count_follows_the_resampled_duration(enc, media_dir):
    wave, rate = _speech(media_dir, "speech_en_stereo24k.wav")
    emb = audio.embed_audio(enc, wave, rate)
    n16 = math.ceil(wave.shape[1] * 16000 / rate)
    assert emb.shape == (int(n16 / 16000 * 25), 2, 32)
    emb30 = audio.embed_audio(enc, wave, rate, fps=30.0)
    assert emb30.shape[0] == int(n16 / 16000 * 30)


def test_loudness_is_normalised_to_minus_23_lufs(media_dir):
    wave, rate = _speech(media_dir)
    for gain in (0.05, 0.9):
        out, info = prepare_waveform(wave * gain, rate)
        assert info["loudness_normalized"]
        assert integrated_loudness(out) == pytest.approx(-23.0, abs=0.05)
    quiet, _ = prepare_waveform(wave * 0.05, rate)
    loud, _ = prepare_waveform(wave * 0.9, rate)
    assert np.abs(quiet - loud).max() < 1e-4  # level no longer matters


def test_normalize_loudness_off_keeps_the_level(enc, media_dir):
    wave, rate = _speech(media_dir, seconds=2.0)
    out, info = prepare_waveform(wave, rate, normalize_loudness=False)
    assert np.array_equal(out, wave[0])
    assert info["loudness_lufs"] is None
    emb = audio.embed_audio(enc, wave, rate, normalize_loudness=False)
    assert float((emb - embed_waveform16k(enc, wave[0])).abs().max()) == 0.0


def test_silence_is_valid_and_left_unchanged(enc, media_dir):
    wave, rate = _speech(media_dir, "silence_4s.wav")
    out, info = prepare_waveform(wave, rate)
    assert not info["loudness_normalized"] and np.all(out == 0)
    emb = audio.embed_audio(enc, wave, rate)
    assert emb.shape == (100, 2, 32) and torch.isfinite(emb).all()


def test_clip_shorter_than_a_loudness_block_is_embedded_without_normalisation(enc, media_dir, caplog):
    wave, rate = _speech(media_dir, seconds=0.2)
    with caplog.at_level(logging.WARNING, logger="wanvideo"):
        emb = audio.embed_audio(enc, wave, rate)
    assert emb.shape == (5, 2, 32)
    assert "loudness normalisation skipped" in caplog.text


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(enc, bad):
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    wave[8000] = bad
    with pytest.raises(InputError, match=r"audio has 1 NaN/Inf samples \(first at 0\.500 s\)"):
        audio.embed_audio(enc, wave, 16000)


def test_empty_and_too_short_audio_are_refused(enc):
    with pytest.raises(InputError, match="empty"):
        audio.embed_audio(enc, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="empty"):
        audio.embed_audio(enc, np.zeros((2, 0), np.float32), 44100)
    with pytest.raises(InputError, match="shorter than one video frame at 25 fps"):
        audio.embed_audio(enc, np.ones(600, np.float32) * 0.1, 16000)  # 37.5 ms < 40 ms
    assert audio.embed_audio(enc, np.ones(640, np.float32) * 0.1, 16000).shape == (1, 2, 32)
    with pytest.raises(InputError, match="fps"):
        audio.embed_audio(enc, np.ones(16000, np.float32), 16000, fps=0)
    with pytest.raises(InputError, match="sample rate"):
        audio.embed_audio(enc, np.ones(16000, np.float32), 0)


def test_vectorised_loudness_equals_pyloudnorms():
    import pyloudnorm as pyln
    from testlib import MEDIA

    for name in ("speaker_a.wav", "speech_en_stereo24k.wav", "speech_long.flac"):
        wave, rate = sf.read(str(MEDIA / name), dtype="float32")
        mono = resample(to_mono(wave), rate, 16000)
        assert integrated_loudness(mono) == pytest.approx(pyln.Meter(16000).integrated_loudness(mono), abs=1e-5)
