"""The LongCat-Video-Avatar nodes as ComfyUI calls them (folder_paths, host VAE and model-management doubles): the
loader finds the official folder layout and merges the distillation LoRA, the Whisper loader and audio embeds give
the official features, the sampler writes a frame store of the speech's length with "segment k/n" progress."""
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from testlib.comfy_doubles import HostVAE
from wanvideo_infinitetalk_pack import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes import host
from wanvideo_infinitetalk_pack.nodes.longcat_nodes import (
    LongCatAvatarAudioEmbeds,
    LongCatAvatarModelLoader,
    LongCatAvatarSampler,
    LongCatWhisperLoader,
)
from wanvideo_infinitetalk_pack.nodes.model_patcher import PlacedModel
from wanvideo_infinitetalk_pack.nodes.patcher_choice import make_model_patcher
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.sampling import GenerationInterrupted
from wanvideo_infinitetalk_pack.wanvideo.tiny.longcat import tiny_longcat_models

NON_WEIGHT = ("input", "output", "debug", "aux")


@pytest.fixture
def comfy_models(fixtures_dir, tmp_path, monkeypatch):
    """models/ with the official layouts: diffusion_models/LongCat-Video-Avatar/base_model (config.json + shards
    with an index), loras/dmd_lora.safetensors, audio_encoders/whisper-large-v3 (Hugging Face folder)."""
    models = tmp_path / "models"
    with safe_open(fixtures_dir / "longcat_dit_a.safetensors", "pt") as f:
        config = json.loads(f.metadata()["config"])["model_kwargs"]
        weights = {k: f.get_tensor(k) for k in f.keys() if k.split(".")[0] not in NON_WEIGHT}
    base = models / "diffusion_models" / "LongCat-Video-Avatar" / "base_model"
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"_class_name": "LongCatVideoAvatarTransformer3DModel", **config}))
    names = sorted(weights)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[: len(names) // 2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in shards.items():
        save_file({k: weights[k].to(torch.bfloat16) for k in keys}, str(base / shard))
    index = {"weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (base / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    (models / "loras").mkdir(parents=True)
    name = "lora___lorahyphen___blocks___lorahyphen___0___lorahyphen___attn___lorahyphen___qkv"
    save_file({f"{name}.lora_down.weight": torch.full((4, 64), 0.01), f"{name}.lora_up.weight": torch.full((192, 4), 0.01),
               f"{name}.alpha_scale": torch.tensor(0.5)}, str(models / "loras" / "dmd_lora.safetensors"))
    whisper = models / "audio_encoders" / "whisper-large-v3"
    whisper.mkdir(parents=True)
    tiny = tiny_longcat_models(seed=0).whisper
    from transformers import WhisperModel

    full = WhisperModel(tiny.encoder.config)
    full.encoder.load_state_dict(tiny.encoder.state_dict())
    full.save_pretrained(whisper)
    tiny.feature_extractor.save_pretrained(whisper)
    folders = {n: ([str(models / n)], {".safetensors", ".json"}) for n in ("diffusion_models", "unet", "loras",
                                                                          "audio_encoders", "wav2vec2")}

    def get_filename_list(name):
        out = []
        for root in folders.get(name, ([], None))[0]:
            for p in sorted(Path(root).rglob("*")):
                if p.is_file() and p.suffix in folders[name][1]:
                    out.append(str(p.relative_to(root)).replace("\\", "/"))
        return out

    def get_full_path(name, filename):
        for root in folders.get(name, ([], None))[0]:
            p = os.path.join(root, filename)
            if os.path.exists(p):
                return p
        return None

    fake = types.SimpleNamespace(models_dir=str(models), folder_names_and_paths=folders,
                                 get_filename_list=get_filename_list, get_full_path=get_full_path,
                                 get_folder_paths=lambda name: list(folders.get(name, ([], None))[0]))
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    return models, weights


def test_node_ids_registered_and_pack_unique():
    ids = {"InfiniteTalkLongCatModelLoader", "InfiniteTalkLongCatWhisperLoader", "InfiniteTalkLongCatAudioEmbeds",
           "InfiniteTalkLongCatSampler"}
    assert ids <= set(NODE_CLASS_MAPPINGS)
    assert not {"LongCatModelLoader", "LongCatSampler"} & set(NODE_CLASS_MAPPINGS)  # the wrapper's style of names


def test_loader_finds_the_official_folder_and_merges_the_lora(comfy_models):
    models, weights = comfy_models
    choices = LongCatAvatarModelLoader.INPUT_TYPES()["required"]
    assert "LongCat-Video-Avatar/base_model" in choices["model"][0]
    assert "dmd_lora.safetensors" in choices["distill_lora"][0]
    (patcher,) = LongCatAvatarModelLoader().load("LongCat-Video-Avatar/base_model", "dmd_lora.safetensors", 1.0,
                                                 precision="fp32", quantization="disabled", blocks_to_swap=0,
                                                 attention="sdpa")
    assert isinstance(patcher, PlacedModel)  # the loaders' one patcher (in ComfyUI: the host's ModelPatcher subclass)
    qkv = patcher.model.blocks[0].attn.qkv.weight
    expected = weights["blocks.0.attn.qkv.weight"].to(torch.bfloat16).float() + 0.5 * 4 * 0.01 * 0.01
    assert torch.allclose(qkv, expected, atol=1e-6)
    latent = (1, 16, 24, 60, 104)
    own = patcher.model.inference_bytes(latent, torch.float32) + patcher.placement.swap_working_bytes
    assert patcher.memory_required(latent) == own  # LongCat's own activation estimate, not the Wan DiT's


def test_whisper_and_audio_embeds_one_and_two_speakers(comfy_models, media_dir):
    from wanvideo_infinitetalk_pack.wanvideo.app.media import read_audio

    assert "whisper-large-v3" in LongCatWhisperLoader.INPUT_TYPES()["required"]["model"][0]
    (whisper,) = LongCatWhisperLoader().load("whisper-large-v3")
    wave, rate = read_audio(str(media_dir / "speaker_a.wav"))
    audio = {"waveform": torch.from_numpy(wave)[None], "sample_rate": rate}
    embeds, sound, frames = LongCatAvatarAudioEmbeds().embed(whisper, audio)
    assert embeds.num_speakers == 1 and sound is audio and frames == int(wave.shape[-1] / rate * 25)
    two, mix, frames_2 = LongCatAvatarAudioEmbeds().embed(whisper, audio, audio_2=audio, speaker_mode="add")
    assert two.num_speakers == 2 and frames_2 == int(2 * wave.shape[-1] / rate * 25)
    assert mix["sample_rate"] == 16000


@pytest.fixture(scope="module")
def tiny_run():
    models = tiny_longcat_models(seed=0)
    from wanvideo_infinitetalk_pack.wanvideo.audio.longcat_embeds import longcat_audio_embeds

    wave = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    one = longcat_audio_embeds(models.whisper, wave, 16000)
    two = longcat_audio_embeds(models.whisper, wave, 16000, wave[: 16000], 16000, mode="para")
    return models, one, two


def test_sampler_node_one_and_two_speakers(tiny_run, comfy_dirs, monkeypatch):
    from testlib import model_management_double

    models, one, two = tiny_run
    texts = []
    monkeypatch.setattr(host, "send_progress_text", lambda text, node_id=None: texts.append(text))
    mm = model_management_double.install(monkeypatch, total_vram=64 * model_management_double.GB)
    patcher = make_model_patcher(models.dit, mm.get_torch_device(), mm.unet_offload_device(), offload_after="yes")
    image = torch.rand(1, 96, 160, 3, generator=torch.Generator().manual_seed(3))
    common = dict(vae=HostVAE(models.vae.vae), image=image, width=48, height=80)
    store, count, fps = LongCatAvatarSampler().sample(model=patcher, audio_embeds=one, **common)
    assert (count, fps, store.width, store.height) == (50, 25.0, 48, 80)
    assert texts[0] == "segment 1/1 · step 0/8" and len(mm.load_requests) == 1
    assert "segment 1/1 done (50 frames)" in texts and texts[-1] == "50 frames (1 segments)"
    mask_1 = torch.zeros(1, 96, 160)
    mask_1[:, :, :80] = 1
    store_2, count_2, _ = LongCatAvatarSampler().sample(model=patcher, audio_embeds=two, speaker_1_mask=mask_1,
                                                        speaker_2_mask=1 - mask_1, **common)
    assert count_2 == 50 and store_2.complete
    with pytest.raises(InputError, match="both speaker masks"):
        LongCatAvatarSampler().sample(model=patcher, audio_embeds=two, speaker_1_mask=mask_1, **common)


def test_cancel_keeps_finished_segments_and_the_rerun_resumes(tiny_run, comfy_dirs, monkeypatch):
    models, one, _ = tiny_run
    texts = []
    monkeypatch.setattr(host, "send_progress_text", lambda text, node_id=None: texts.append(text))
    patcher = make_model_patcher(models.dit, "cpu", "cpu", offload_after="no")
    image = torch.rand(1, 96, 160, 3, generator=torch.Generator().manual_seed(3))
    common = dict(model=patcher, vae=HostVAE(models.vae.vae), image=image, audio_embeds=one, width=48, height=80,
                  num_frames=29, num_cond_frames=5)

    monkeypatch.setattr(host, "interrupt_requested", lambda: any(t.startswith("segment 2/") for t in texts))
    with pytest.raises(GenerationInterrupted, match="1 finished"):
        LongCatAvatarSampler().sample(**common)
    texts.clear()
    monkeypatch.setattr(host, "interrupt_requested", lambda: False)
    store, count, _ = LongCatAvatarSampler().sample(**common)
    assert count == 50 and store.complete
    assert texts[0].startswith("resuming at segment 2/") and texts[0].endswith("(1 finished)")
