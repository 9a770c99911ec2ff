"""The example API workflows execute in-process through our nodes, the way ComfyUI executes them.

A small test-only runner (`testlib/api_runner.py`) validates and runs each example's graph; the few
core nodes it uses (image/audio/video loading, the umt5 text encoder, CLIP vision, the Wan VAE, mask
nodes) are test doubles kept in `testlib/comfy_doubles.py`, with ComfyUI's `folder_paths` replaced by a
temporary models/input/output layout. Only what a tiny run needs is changed in each graph: the model
files become tiny random-weight ones, the media become short clips, and the size, steps and windows
become small. Node types, links and every other setting are the example's.
"""
import json
import sys

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from testlib import MEDIA, REPO_ROOT, comfy_doubles, load_pack
from testlib.api_runner import PromptError, run_prompt

EXAMPLES = REPO_ROOT / "examples" / "api"
TINY_RUN = {"width": 64, "height": 64, "frame_window": 17, "motion_frames": 5, "steps": 2}


def _cut_audio(src, dst, seconds):
    data, rate = sf.read(str(src), dtype="float32")
    sf.write(str(dst), data[: int(seconds * rate)], rate)
    return len(data[: int(seconds * rate)]) / rate


def _short_source_clip(dst, frames=12, size=(112, 192)):
    from PIL import Image

    from wanvideo.video import write_video

    with av.open(str(MEDIA / "source_talk_4s.mp4")) as c:
        rgb = []
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i == frames:
                break
            rgb.append(np.asarray(f.to_image().resize(size, Image.BILINEAR)))
    write_video(rgb, str(dst), 25.0)


def _tiny_lora(path, dim):
    """A LoRA in the lora_down/lora_up + alpha layout with ComfyUI's prefix, for two of the tiny DiT's layers."""
    gen = torch.Generator().manual_seed(5)
    sd = {}
    for layer in ("blocks.0.self_attn.q", "blocks.1.ffn.0"):
        out_dim = dim if layer.endswith(".q") else 2 * dim
        sd[f"diffusion_model.{layer}.lora_down.weight"] = torch.randn(4, dim, generator=gen) * 0.1
        sd[f"diffusion_model.{layer}.lora_up.weight"] = torch.randn(out_dim, 4, generator=gen) * 0.1
        sd[f"diffusion_model.{layer}.alpha"] = torch.tensor(4.0)
    save_file(sd, str(path))


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A ComfyUI-like layout with tiny model files, the doubles configured, `folder_paths` replaced."""
    from wanvideo.tiny import tiny_vae
    from wanvideo.tiny.files import write_tiny_models

    fp = comfy_doubles.FolderPaths(tmp_path)
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    names = write_tiny_models(fp.models_dir)
    (tmp_path / "models" / "loras").mkdir(parents=True)
    _tiny_lora(tmp_path / "models" / "loras" / "tiny_lora.safetensors", dim=64)
    names["lora"] = "tiny_lora.safetensors"
    comfy_doubles.configure(text_dim=names["text_dim"], clip_dim=names["clip_dim"],
                            vae=comfy_doubles.HostVAE(tiny_vae(seed=2).vae))
    comfy_doubles.set_input_dir(fp.get_input_directory())
    inp = tmp_path / "input"
    from PIL import Image

    Image.open(MEDIA / "portrait_480x832.png").convert("RGB").resize((120, 208)).save(inp / "portrait.png")
    Image.open(MEDIA / "two_people_832x480.jpg").convert("RGB").save(inp / "two_people.png")
    seconds = {
        "speech.wav": _cut_audio(MEDIA / "speech_en_mono16k.wav", inp / "speech.wav", 1.3),
        "speech_1.wav": _cut_audio(MEDIA / "speaker_a.wav", inp / "speech_1.wav", 0.6),
        "speech_2.wav": _cut_audio(MEDIA / "speaker_b.wav", inp / "speech_2.wav", 0.7),
        "new_speech.wav": _cut_audio(MEDIA / "speech_en_mono16k.wav", inp / "new_speech.wav", 0.9),
    }
    _short_source_clip(inp / "source_clip.mp4")
    classes = dict(load_pack().NODE_CLASS_MAPPINGS)
    classes.update(comfy_doubles.NODE_CLASS_MAPPINGS)
    return {"fp": fp, "names": names, "classes": classes, "seconds": seconds, "tmp": tmp_path}


def adapt(prompt, names, **sampler_overrides):
    """The example with tiny models and a small run (the only changes)."""
    prompt = json.loads(json.dumps(prompt))
    for node in prompt.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "InfiniteTalkModelLoader":
            audio = inputs["infinitetalk"] != "none"
            # The tiny set ships the Wan model with the InfiniteTalk weights in one file.
            inputs["model"] = names["model"] if audio else names["model_no_audio"]
            inputs["infinitetalk"] = "none"
            inputs["precision"] = "fp32"
        elif kind == "InfiniteTalkWav2VecLoader":
            inputs["model"] = names["wav2vec"]
        elif kind == "InfiniteTalkLoraSelect":
            inputs["lora"] = names["lora"]
        elif kind == "InfiniteTalkSampler":
            inputs.update(TINY_RUN)
            inputs.update(sampler_overrides)
    return prompt


def _load(name):
    return json.loads((EXAMPLES / f"{name}_api.json").read_text())


def _video_info(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        info = {"vcodec": v.codec_context.name, "fps": float(v.average_rate), "frames": frames,
                "size": (v.codec_context.width, v.codec_context.height)}
        if c.streams.audio:
            a = c.streams.audio[0]
            info.update(acodec=a.codec_context.name, adur=float(a.duration * a.time_base))
    return info


def _saved_video(result, fp):
    [combine_id] = [nid for nid, ui in result.ui.items() if ui]
    ui = result.ui[combine_id]
    entries = [e for key in ("gifs", "videos", "images") for e in ui.get(key, [])]
    assert entries, f"Video Combine returned no preview entry: {ui}"
    entry = entries[0]
    base = fp.get_output_directory() if entry.get("type", "output") == "output" else fp.get_temp_directory()
    import os

    return os.path.join(base, entry.get("subfolder", ""), entry["filename"]), entry


@pytest.mark.parametrize("example, speech", [
    ("infinitetalk_single_speaker", ["speech.wav"]),
    ("infinitetalk_two_speakers", ["speech_1.wav", "speech_2.wav"]),
])
def test_talking_examples_run_through_our_nodes(host, example, speech):
    prompt = adapt(_load(example), host["names"])
    result = run_prompt(prompt, host["classes"], extra_pnginfo={"workflow": {"example": example}})
    executed = [prompt[n]["class_type"] for n in result.order]
    for node in ("InfiniteTalkWav2VecLoader", "InfiniteTalkAudioEmbeds", "InfiniteTalkModelLoader",
                 "InfiniteTalkLoraSelect", "InfiniteTalkSampler", "InfiniteTalkVideoCombine", "CLIPTextEncode",
                 "CLIPVisionEncode", "VAELoader", "LoadImage", "LoadAudio"):
        assert node in executed, f"{node} did not run"
    loaded = dict(comfy_doubles.loaded_files())
    assert loaded["CLIPLoader"] == "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    assert loaded["VAELoader"] == "wan_2.1_vae.safetensors"

    path, entry = _saved_video(result, host["fp"])
    info = _video_info(path)
    # Speech length: one speaker, or two one after the other ("add" in the two-speaker example).
    seconds = sum(host["seconds"][s] for s in speech) if len(speech) == 2 else host["seconds"][speech[0]]
    assert info["vcodec"] == "h264" and info.get("acodec") == "aac"
    assert info["size"] == (64, 64) and info["fps"] == 25
    assert info["frames"] == int(seconds * 25)
    assert abs(info["adur"] - info["frames"] / 25) <= 1 / 25
    sampler_id = next(n for n in result.order if prompt[n]["class_type"] == "InfiniteTalkSampler")
    store, count, fps = result.outputs[sampler_id]
    assert count == info["frames"] and fps == 25.0 and len(store) == count
    # The workflow travels inside the MP4 (drag it back into ComfyUI).
    with av.open(path) as c:
        tags = json.dumps(dict(c.metadata))
    assert example in tags


def _standin_detection_folder(host):
    """models/detection of the host with the stand-in ONNX files under the official names (face_only, preprocess)."""
    import shutil

    from testlib.preprocess_fixtures import DETECTOR, POSE

    detection = host["tmp"] / "models" / "detection"
    detection.mkdir(parents=True, exist_ok=True)
    shutil.copy(DETECTOR, detection / "yolov10m.onnx")
    shutil.copy(POSE, detection / "vitpose_h_wholebody.onnx")
    return detection


def test_dubbing_example_conditions_on_the_source_clip(host):
    detection = _standin_detection_folder(host)  # the example runs face_only: its face box needs the detector
    prompt = adapt(_load("infinitetalk_video_dubbing"), host["names"])
    result = run_prompt(prompt, host["classes"])
    path, _ = _saved_video(result, host["fp"])
    info = _video_info(path)
    assert info["frames"] == int(host["seconds"]["new_speech.wav"] * 25)  # as long as the new speech
    assert info.get("acodec") == "aac"
    parts = next(n for n in result.order if prompt[n]["class_type"] == "GetVideoComponents")
    assert result.outputs[parts][0].shape[0] == 12  # all source frames reached the sampler and CLIP vision
    # face-only (the example's mode): outside the face box every pixel is the source frame's (at the output size)
    from wanvideo.sampling import SamplerSettings
    from wanvideo.sampling.conditioning import ReferenceFrames
    from wanvideo.sampling.edit_mask import prepare_edit_region
    from wanvideo.sampling.face_box import find_face_models

    sampler = next(n for n in result.order if prompt[n]["class_type"] == "InfiniteTalkSampler")
    assert prompt[sampler]["inputs"]["face_only"] is True
    store = result.outputs[sampler][0]
    source = ReferenceFrames(result.outputs[parts][0])
    region = prepare_edit_region(None, SamplerSettings(face_only=True), source, store.height, store.width,
                                 find_face_models([str(detection)]))
    frames = store.read_frames()
    for f in (0, 5, len(frames) - 1):
        outside = region.frame_mask(f) == 0
        assert 0 < int(outside.sum()) < outside.numel()  # a face was found, and it is not the whole frame
        expected = ((source.conditioning(min(f, 11), store.height, store.width)[:, 0] + 1) * 127.5).round()
        assert torch.equal(torch.from_numpy(frames[f]).permute(2, 0, 1).float()[:, outside], expected[:, outside])


def test_plain_i2v_example_runs_without_audio(host):
    prompt = adapt(_load("wan_i2v_no_audio"), host["names"], max_frames=20)
    result = run_prompt(prompt, host["classes"])
    path, _ = _saved_video(result, host["fp"])
    info = _video_info(path)
    assert info["frames"] == 20 and "acodec" not in info
    assert not any(prompt[n]["class_type"] == "InfiniteTalkAudioEmbeds" for n in result.order)


def test_runner_refuses_what_comfyui_refuses(host):
    prompt = adapt(_load("infinitetalk_single_speaker"), host["names"])
    sampler = next(n for n, v in prompt.items() if v["class_type"] == "InfiniteTalkSampler")
    bad = json.loads(json.dumps(prompt))
    bad[sampler]["inputs"]["scheduler"] = "ddim"
    with pytest.raises(PromptError, match="scheduler"):
        run_prompt(bad, host["classes"])
    bad = json.loads(json.dumps(prompt))
    del bad[sampler]["inputs"]["vae"]
    with pytest.raises(PromptError, match="required input 'vae'"):
        run_prompt(bad, host["classes"])
    bad = json.loads(json.dumps(prompt))
    loader = next(n for n, v in bad.items() if v["class_type"] == "LoadImage")
    bad[sampler]["inputs"]["vae"] = [loader, 0]  # an IMAGE where a VAE belongs
    with pytest.raises(PromptError, match="gets IMAGE, wants VAE"):
        run_prompt(bad, host["classes"])


@pytest.mark.parametrize("example", ["wananimate_animation", "wananimate_replacement"])
def test_wananimate_examples_run_from_a_raw_driving_video(host, example):
    """Load Video -> Animate Preprocess (the ONNX stand-ins in models/detection) -> Animate sampler -> MP4 with the
    driving clip's sound."""
    from testlib.synthetic_person import person_clip

    from wanvideo.video import write_video

    _standin_detection_folder(host)
    tone = (0.2 * np.sin(np.arange(12000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    write_video(person_clip(15), str(host["tmp"] / "input" / "driving.mp4"), 25.0, audio=tone, sample_rate=16000)
    from PIL import Image

    Image.open(MEDIA / "portrait_480x832.png").convert("RGB").resize((120, 208)).save(
        host["tmp"] / "input" / "character.png")
    prompt = adapt(_load(example), host["names"])
    for node in prompt.values():
        if node["class_type"] == "InfiniteTalkModelLoader":
            node["inputs"]["model"] = host["names"]["animate_model"]
        elif node["class_type"] == "InfiniteTalkAnimatePreprocess":
            node["inputs"].update(resolution_width=64, resolution_height=112)
        elif node["class_type"] == "InfiniteTalkAnimateSampler":
            node["inputs"].update(clip_len=13, steps=1)
    result = run_prompt(prompt, host["classes"])
    executed = [prompt[n]["class_type"] for n in result.order]
    assert {"LoadVideo", "GetVideoComponents", "InfiniteTalkAnimatePreprocess", "InfiniteTalkAnimateSampler",
            "InfiniteTalkVideoCombine"} <= set(executed)
    pre = next(n for n in result.order if prompt[n]["class_type"] == "InfiniteTalkAnimatePreprocess")
    pose, face, background, mask, _, fps, count = result.outputs[pre]
    assert count == 18 and fps == 30.0  # 15 frames at 25 fps -> 18 at 30
    assert (background is None) == (example == "wananimate_animation")
    info = _video_info(_saved_video(result, host["fp"])[0])
    assert info["frames"] == 18 and info["fps"] == 30 and info.get("acodec") == "aac"
    assert info["size"] == (pose.shape[2], pose.shape[1])
