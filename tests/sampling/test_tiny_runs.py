"""End to end with the tiny random-weight model set: real DiT, real-compression VAE, real tiny wav2vec2."""
import numpy as np
import pytest
import soundfile as sf
import torch

from wanvideo.audio import build_audio_embeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.tiny import tiny_models

SETTINGS = dict(frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0)


@pytest.fixture(scope="module")
def models():
    return tiny_models(seed=0)


def _speech(media_dir, seconds):
    wave, rate = sf.read(str(media_dir / "speech_en_mono16k.wav"), dtype="float32")
    return wave[: int(seconds * rate)], rate


def test_three_windows_yield_exactly_the_embeddings_frame_count(models, media_dir, tmp_path):
    wave, rate = _speech(media_dir, 1.32)
    embeds = build_audio_embeddings(models.wav2vec, wave, rate)
    assert embeds.num_frames == int(1.32 * 25) == 33
    portrait = torch.rand(1, 50, 70, 3, generator=torch.Generator().manual_seed(1))
    store = generate(models.dit, models.vae, portrait, models.clip_fea, audio=embeds, context=models.context,
                     context_null=models.context_null, store_root=str(tmp_path),
                     settings=SamplerSettings(width=48, height=32, **SETTINGS))
    assert store.num_windows == 3 and store.complete
    assert (len(store), store.fps, store.width, store.height) == (33, 25.0, 48, 32)
    frames = store.read_frames()
    assert frames.shape == (33, 32, 48, 3) and frames.dtype == np.uint8
    assert frames.std() > 1  # something was generated, not a constant


def test_audio_shorter_than_one_window_is_valid(models, media_dir, tmp_path):
    wave, rate = _speech(media_dir, 0.4)
    embeds = build_audio_embeddings(models.wav2vec, wave, rate)
    store = generate(models.dit, models.vae, torch.rand(1, 32, 48, 3), models.clip_fea, audio=embeds,
                     store_root=str(tmp_path), settings=SamplerSettings(width=48, height=32, **SETTINGS))
    assert len(store) == embeds.num_frames == 10 and store.num_windows == 1


def test_two_speakers_run(models, media_dir, tmp_path):
    a, rate = sf.read(str(media_dir / "speaker_a.wav"), dtype="float32")
    b, rate_b = sf.read(str(media_dir / "speaker_b.wav"), dtype="float32")
    embeds = build_audio_embeddings(models.wav2vec, a[:12000], rate, b[:12000], rate_b, mode="para")
    store = generate(models.dit, models.vae, torch.rand(1, 32, 64, 3), models.clip_fea, audio=embeds,
                     store_root=str(tmp_path), settings=SamplerSettings(width=64, height=32, **SETTINGS))
    assert len(store) == embeds.num_frames


def test_standard_i2v_runs_without_audio(tmp_path):
    plain = tiny_models(seed=1, audio_adapter=False)
    store = generate(plain.dit, plain.vae, torch.rand(1, 32, 48, 3), plain.clip_fea, context=plain.context,
                     context_null=plain.context_null, store_root=str(tmp_path),
                     settings=SamplerSettings(width=48, height=32, max_frames=21, fps=16.0, **SETTINGS))
    assert (len(store), store.fps, store.num_windows) == (21, 16.0, 2)


def test_dubbing_a_source_video_runs(models, media_dir, tmp_path):
    import av

    with av.open(str(media_dir / "source_talk_4s.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(30), container.decode(video=0), strict=False)]
    source = torch.from_numpy(np.stack(frames)).float() / 255  # [30, 832, 480, 3], an IMAGE batch
    wave, rate = _speech(media_dir, 1.0)
    embeds = build_audio_embeddings(models.wav2vec, wave, rate)
    store = generate(models.dit, models.vae, source, models.clip_fea, audio=embeds, store_root=str(tmp_path),
                     settings=SamplerSettings(width=32, height=48, color_correction=0.3, **SETTINGS))
    assert len(store) == 25 and store.info["dubbing"] is True
