"""AudioEmbeddings for one or two speakers, frame limits, and the per-frame windows."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import wanvideo.audio as audio
from wanvideo.audio.features import embed_waveform16k, num_video_frames
from wanvideo.audio.preprocess import prepare_waveform
from wanvideo.errors import InputError


@pytest.fixture(scope="module")
def enc():
    return audio.tiny_wav2vec2(seed=9)


@pytest.fixture(scope="module")
def voices():
    from testlib import MEDIA

    a, ra = sf.read(str(MEDIA / "speaker_a.wav"), dtype="float32")
    b, rb = sf.read(str(MEDIA / "speaker_b.wav"), dtype="float32")
    return (a, ra), (b, rb)


def test_frame_windows_match_the_reference_rows():
    from testlib import FIXTURES

    spec = json.loads((FIXTURES / "schedules_and_windows.json").read_text())["audio_windows"]["example_30_frames"]
    rows = torch.tensor(spec["rows_per_frame"])
    n = spec["embedding_length"]
    emb = torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, 3, 4).contiguous()
    win = audio.frame_windows(emb, 0, rows.shape[0])
    assert win.shape == (rows.shape[0], 5, 3, 4)
    assert torch.equal(win[:, :, 0, 0].long(), rows)
    # a later start gives the same rows as the matching slice
    assert torch.equal(audio.frame_windows(emb, 7, 10), win[7:17])
    # other window widths clamp the same way
    w3 = audio.frame_windows(emb, 0, 2, window=3)[:, :, 0, 0].long()
    assert w3.tolist() == [[0, 0, 1], [0, 1, 2]]


def test_single_speaker_embeddings(enc, voices):
    (a, ra), _ = voices
    emb = audio.build_audio_embeddings(enc, a, ra)
    processed, _ = prepare_waveform(a, ra)
    assert emb.mode == "single" and emb.num_speakers == 1 and emb.fps == 25.0
    assert emb.num_frames == num_video_frames(processed.size, 25.0)
    assert emb.sample_rate == 16000 and emb.waveform.dtype == torch.float32
    assert np.array_equal(emb.waveform.numpy(), processed)
    assert torch.equal(emb.speakers[0], audio.embed_audio(enc, a, ra))


def test_para_speakers_talk_at_once_padded_to_the_longer(enc, voices):
    (a, ra), (b, rb) = voices
    emb = audio.build_audio_embeddings(enc, a, ra, b, rb, mode="para")
    pa, _ = prepare_waveform(a, ra)
    pb, _ = prepare_waveform(b, rb)
    n = max(pa.size, pb.size)
    assert pa.size != pb.size
    assert emb.mode == "para" and emb.num_speakers == 2
    assert emb.num_frames == num_video_frames(n, 25.0)
    assert all(s.shape == (emb.num_frames, 2, 32) for s in emb.speakers)
    padded_b = np.pad(pb, (0, n - pb.size)) if pb.size < n else pb
    padded_a = np.pad(pa, (0, n - pa.size)) if pa.size < n else pa
    assert np.allclose(emb.waveform.numpy(), padded_a + padded_b)
    assert float((emb.speakers[1] - embed_waveform16k(enc, padded_b)).abs().max()) == 0.0


def test_add_speakers_take_turns(enc, voices):
    (a, ra), (b, rb) = voices
    emb = audio.build_audio_embeddings(enc, a, ra, b, rb, mode="add")
    pa, _ = prepare_waveform(a, ra)
    pb, _ = prepare_waveform(b, rb)
    assert emb.mode == "add"
    assert emb.num_frames == num_video_frames(pa.size + pb.size, 25.0)
    assert np.array_equal(emb.waveform.numpy(), np.concatenate([pa, pb]))
    track_2 = np.concatenate([np.zeros(pa.size, np.float32), pb])
    assert float((emb.speakers[1] - embed_waveform16k(enc, track_2)).abs().max()) == 0.0
    # speaker 1's second half is an embedding of its silence while speaker 2 talks: the two differ there
    half = num_video_frames(pa.size, 25.0)
    assert float((emb.speakers[0][half + 5:] - emb.speakers[1][half + 5:]).abs().mean()) > 1e-3


def test_frame_limit_keeps_the_first_frames_and_embeds_only_the_speech_they_need(enc, voices):
    from wanvideo.audio.embeddings import LIMIT_CONTEXT_S

    (a, ra), (b, rb) = voices
    full = audio.build_audio_embeddings(enc, a, ra, b, rb, mode="add")
    cut = audio.build_audio_embeddings(enc, a, ra, b, rb, mode="add", frame_limit=33)
    assert cut.num_frames == 33 and cut.extra["frames_full"] == full.num_frames
    assert cut.extra["seconds"] == full.extra["seconds"]
    # the frames' speech plus the context after them, not the whole recording
    assert cut.extra["seconds_embedded"] == pytest.approx(33 / 25 + LIMIT_CONTEXT_S, abs=0.05)
    assert cut.extra["seconds_embedded"] < full.extra["seconds_embedded"] / 2
    for s_cut, s_full in zip(cut.speakers, full.speakers, strict=True):
        assert s_cut.shape == s_full[:33].shape and bool(torch.isfinite(s_cut).all())
    assert cut.waveform.numel() == math.ceil(33 * 16000 / 25)
    assert num_video_frames(cut.waveform.numel(), 25.0) == 33
    assert torch.equal(cut.waveform, full.waveform[: cut.waveform.numel()])  # the muxed sound: the full run's
    beyond = audio.build_audio_embeddings(enc, a, ra, frame_limit=10_000)
    assert beyond.num_frames == audio.build_audio_embeddings(enc, a, ra).num_frames


def test_the_speech_embedded_for_a_frame_limit_does_not_grow_with_the_recording(enc):
    rate = 16000
    tone = (0.2 * np.sin(np.arange(rate * 4) * 0.05)).astype(np.float32)
    short = audio.build_audio_embeddings(enc, tone, rate, frame_limit=9)
    long = audio.build_audio_embeddings(enc, np.tile(tone, 30), rate, frame_limit=9)  # 2 minutes
    assert short.num_frames == long.num_frames == 9
    assert long.extra["seconds_embedded"] == pytest.approx(short.extra["seconds_embedded"])
    assert long.extra["seconds"] == pytest.approx(120.0)


def test_bad_speaker_inputs(enc, voices):
    (a, ra), (b, rb) = voices
    with pytest.raises(InputError, match="speaker mode"):
        audio.build_audio_embeddings(enc, a, ra, b, rb, mode="both")
    with pytest.raises(InputError, match="audio_2 is empty"):
        audio.build_audio_embeddings(enc, a, ra, np.zeros(0, np.float32), rb)
    nan = b.copy()
    nan[100] = np.nan
    with pytest.raises(InputError, match="audio_2 has 1 NaN/Inf"):
        audio.build_audio_embeddings(enc, a, ra, nan, rb)
    with pytest.raises(InputError, match="frame limit"):
        audio.build_audio_embeddings(enc, a, ra, frame_limit=-1)


def test_progress_callback_reaches_the_end_and_can_interrupt(enc, voices):
    (a, ra), (b, rb) = voices
    seen = []
    audio.build_audio_embeddings(enc, a, ra, b, rb, callback=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == 200
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop()

    with pytest.raises(Stop):
        audio.build_audio_embeddings(enc, a, ra, callback=stop)
