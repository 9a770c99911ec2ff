"""The Wav2Vec loader and Audio Embeds nodes, as ComfyUI calls them."""
import json
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file
from wanvideo_infinitetalk_pack.nodes import audio_nodes
from wanvideo_infinitetalk_pack.nodes.audio_nodes import InfiniteTalkAudioEmbeds, InfiniteTalkWav2VecLoader
from wanvideo_infinitetalk_pack.wanvideo.audio.tiny import tiny_wav2vec2
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError, ModelFileError

NON_PARAM = ("input", "output", "debug", "derived", "aux")


def _audio(wave, rate):
    wave = np.asarray(wave, np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    return {"waveform": torch.from_numpy(wave.copy())[None], "sample_rate": rate}


def _media(media_dir, name):
    wave, rate = sf.read(str(media_dir / name), dtype="float32", always_2d=True)
    return _audio(wave.T, rate)


@pytest.fixture
def fixture_folder(fixtures_dir, tmp_path):
    """The reference's tiny wav2vec2 as a Hugging Face folder, plus the fixture tensors."""
    from safetensors import safe_open

    path = fixtures_dir / "audio_public.safetensors"
    tensors = load_file(str(path))
    cfg = json.loads(safe_open(str(path), "pt").metadata()["config"])["wav2vec2_config"]
    folder = tmp_path / "wav2vec2" / "chinese-wav2vec2-tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(cfg, model_type="wav2vec2")))
    save_file({k: v for k, v in tensors.items() if k.split(".")[0] not in NON_PARAM}, str(folder / "model.safetensors"))
    return folder, tensors


@pytest.fixture(scope="module")
def tiny():
    return tiny_wav2vec2(seed=21)


def test_fixture_parity_through_both_nodes(fixture_folder):
    folder, tensors = fixture_folder
    (enc,) = InfiniteTalkWav2VecLoader().load(str(folder), precision="fp32", device="main")
    raw = tensors["input.waveform_raw"].numpy()
    embeds, audio, frames = InfiniteTalkAudioEmbeds().embed(enc, _audio(raw, 16000))
    expected = tensors["output.embedding"]
    assert frames == expected.shape[0] == embeds.num_frames
    assert float((embeds.speakers[0] - expected).abs().max()) <= 1e-4
    assert set(audio) == {"waveform", "sample_rate"} and audio["sample_rate"] == 16000
    assert audio["waveform"].shape == (1, 1, raw.size)
    assert float((audio["waveform"][0, 0] - tensors["input.waveform_loudness_normalized"]).abs().max()) <= 1e-6


def test_declarations(tiny):
    assert InfiniteTalkWav2VecLoader.RETURN_TYPES == ("INFINITETALK_WAV2VEC",)
    assert InfiniteTalkAudioEmbeds.RETURN_TYPES == ("INFINITETALK_AUDIO_EMBEDS", "AUDIO", "INT")
    spec = InfiniteTalkAudioEmbeds.INPUT_TYPES()
    assert set(spec["required"]) == {"wav2vec", "audio_1", "speaker_mode", "normalize_loudness", "fps", "frame_limit"}
    assert set(spec["optional"]) == {"audio_2"}
    assert spec["required"]["fps"][1]["default"] == 25.0
    assert spec["required"]["frame_limit"][1]["default"] == 0
    assert spec["required"]["normalize_loudness"][1]["default"] is True
    loader = InfiniteTalkWav2VecLoader.INPUT_TYPES()["required"]
    assert loader["precision"][0] == ["fp32", "fp16", "bf16"]
    assert loader["device"][0] == ["main", "offload"]


def test_loader_lists_files_and_folders_of_both_model_folders(tmp_path, monkeypatch):
    models = tmp_path / "models"
    (models / "wav2vec2" / "chinese-wav2vec2-base").mkdir(parents=True)
    (models / "wav2vec2" / "chinese-wav2vec2-base" / "config.json").write_text("{}")
    (models / "wav2vec2" / "chinese-wav2vec2-base" / "model.safetensors").write_bytes(b"")
    (models / "audio_encoders").mkdir()
    (models / "audio_encoders" / "wav2vec2-chinese-base_fp16.safetensors").write_bytes(b"")
    folders = {}

    def get_filename_list(name):
        out = []
        for base in folders[name][0]:
            for p in sorted(__import__("pathlib").Path(base).rglob("*")):
                if p.is_file() and p.suffix in folders[name][1]:
                    out.append(str(p.relative_to(base)).replace("\\", "/"))
        return out

    def get_full_path(name, filename):
        for base in folders.get(name, ([], None))[0]:
            p = __import__("os").path.join(base, filename)
            if __import__("os").path.isfile(p):
                return p
        return None

    fake = types.SimpleNamespace(
        models_dir=str(models), folder_names_and_paths=folders, get_filename_list=get_filename_list,
        get_full_path=get_full_path, get_folder_paths=lambda name: list(folders[name][0]),
    )
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    for name in audio_nodes.MODEL_FOLDERS:
        audio_nodes.host.register_model_folder(name)
    assert set(folders) == {"wav2vec2", "audio_encoders"}
    choices = InfiniteTalkWav2VecLoader.INPUT_TYPES()["required"]["model"][0]
    assert choices == ["chinese-wav2vec2-base", "wav2vec2-chinese-base_fp16.safetensors"]
    resolved = audio_nodes.host.resolve_model("chinese-wav2vec2-base", *audio_nodes.MODEL_FOLDERS)
    assert resolved == str(models / "wav2vec2" / "chinese-wav2vec2-base")
    assert audio_nodes.host.resolve_model("wav2vec2-chinese-base_fp16.safetensors", *audio_nodes.MODEL_FOLDERS) == str(
        models / "audio_encoders" / "wav2vec2-chinese-base_fp16.safetensors")
    with pytest.raises(InputError, match="not found"):
        audio_nodes.host.resolve_model("nothing.safetensors", *audio_nodes.MODEL_FOLDERS)


def test_loader_errors_reach_the_user(tmp_path):
    empty = tmp_path / "wav2vec2" / "no-weights"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match="has no wav2vec2 weights"):
        InfiniteTalkWav2VecLoader().load(str(empty))
    other = tmp_path / "clip_vision_h.safetensors"
    save_file({"vision_model.encoder.layers.0.mlp.fc1.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(ModelFileError, match="clip_vision_h.safetensors is another model, not a wav2vec2 model"):
        InfiniteTalkWav2VecLoader().load(str(other))


def test_offload_device_loads_to_ram_and_stays_there(tiny, tmp_path, media_dir):
    folder = tiny.save_pretrained(tmp_path / "tiny")
    (enc,) = InfiniteTalkWav2VecLoader().load(str(folder), precision="bf16", device="offload")
    assert enc.device.type == "cpu" and enc.dtype == torch.bfloat16
    speech = _media(media_dir, "speech_en_mono16k.wav")
    embeds, _, frames = InfiniteTalkAudioEmbeds().embed(enc, speech)
    assert enc.device.type == "cpu"
    assert frames == int(speech["waveform"].shape[-1] / 16000 * 25) == embeds.num_frames
    assert embeds.speakers[0].dtype == torch.float32 and torch.isfinite(embeds.speakers[0]).all()


def test_stereo_24k_speech(tiny, media_dir):
    audio_in = _media(media_dir, "speech_en_stereo24k.wav")
    embeds, audio, frames = InfiniteTalkAudioEmbeds().embed(tiny, audio_in, fps=25.0)
    samples_24k = audio_in["waveform"].shape[-1]
    n16 = -(-samples_24k * 16000 // 24000)
    assert audio["waveform"].shape == (1, 1, n16)
    assert frames == int(n16 / 16000 * 25) == embeds.speakers[0].shape[0]
    assert embeds.mode == "single"


def test_two_speakers_and_frame_limit(tiny, media_dir):
    a, b = _media(media_dir, "speaker_a.wav"), _media(media_dir, "speaker_b.wav")
    add, audio_add, n_add = InfiniteTalkAudioEmbeds().embed(tiny, a, "add", audio_2=b)
    para, audio_para, n_para = InfiniteTalkAudioEmbeds().embed(tiny, a, "para", audio_2=b)
    na, nb = a["waveform"].shape[-1], b["waveform"].shape[-1]
    assert n_add == int((na + nb) / 16000 * 25) and audio_add["waveform"].shape[-1] == na + nb
    assert n_para == int(max(na, nb) / 16000 * 25) and audio_para["waveform"].shape[-1] == max(na, nb)
    assert add.num_speakers == para.num_speakers == 2
    cut, audio_cut, n_cut = InfiniteTalkAudioEmbeds().embed(tiny, a, "add", audio_2=b, frame_limit=40)
    assert n_cut == 40 and all(s.shape[0] == 40 for s in cut.speakers)
    assert audio_cut["waveform"].shape[-1] == 40 * 16000 // 25
    assert cut.speakers[1].shape == add.speakers[1][:40].shape
    assert cut.extra["seconds_embedded"] < add.extra["seconds_embedded"]  # only the speech the 40 frames need


def test_silence_is_valid(tiny, media_dir):
    embeds, audio, frames = InfiniteTalkAudioEmbeds().embed(tiny, _media(media_dir, "silence_4s.wav"))
    assert frames == 100 and torch.isfinite(embeds.speakers[0]).all()
    assert float(audio["waveform"].abs().max()) == 0.0


def test_bad_audio_inputs(tiny):
    node = InfiniteTalkAudioEmbeds()
    with pytest.raises(InputError, match="audio_1 is empty"):
        node.embed(tiny, {"waveform": torch.zeros(1, 2, 0), "sample_rate": 44100})
    with pytest.raises(InputError, match="audio_1 lasts 0.020 s, shorter than one video frame"):
        node.embed(tiny, {"waveform": torch.full((1, 1, 320), 0.1), "sample_rate": 16000})
    bad = torch.full((1, 1, 16000), 0.1)
    bad[0, 0, 4000] = float("nan")
    with pytest.raises(InputError, match="audio_1 has 1 NaN/Inf samples"):
        node.embed(tiny, {"waveform": bad, "sample_rate": 16000})
    with pytest.raises(InputError, match="audio_2 is not an AUDIO value"):
        node.embed(tiny, {"waveform": torch.zeros(1, 1, 16000), "sample_rate": 16000}, audio_2="speech.wav")
