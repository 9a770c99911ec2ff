"""The sampler node's controls: audio_scale, positive_per_window (InfiniteTalk Prompts Per Window)."""
import pytest
import torch
from testlib.comfy_doubles import HostVAE, TinyClipVision, TinyTextEncoder
from wanvideo_infinitetalk_pack.nodes import NODE_CLASS_MAPPINGS, sampler_nodes
from wanvideo_infinitetalk_pack.nodes.prompt_nodes import InfiniteTalkPromptsPerWindow
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.wanvideo.audio import AudioEmbeddings
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_models


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(seed=0)
    cfg = models.dit.config
    return dict(model=models.dit, vae=HostVAE(models.vae.vae), text=TinyTextEncoder("umt5", cfg["text_dim"]),
                clip_vision=TinyClipVision("clip_vision_h", cfg["clip_dim"]),
                embeds=AudioEmbeddings(speakers=[torch.randn(33, 2, 32, generator=torch.Generator().manual_seed(2))],
                                       fps=25.0, waveform=torch.zeros(33 * 640), sample_rate=16000))


def _encode(text_encoder, prompt):
    return text_encoder.encode_from_tokens_scheduled(text_encoder.tokenize(prompt))


def _run(tiny, comfy_dirs, **kw):
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    args = dict(model=tiny["model"], vae=tiny["vae"], image=image,
                clip_vision_output=tiny["clip_vision"].encode_image(image, crop=False), width=48, height=32,
                frame_window=17, motion_frames=9, steps=1, cfg=5.0, audio_cfg=4.0, seed=7,
                audio_embeds=tiny["embeds"], positive=_encode(tiny["text"], "a person talking"),
                negative=_encode(tiny["text"], "blurry"))
    args.update(kw)
    return InfiniteTalkSampler().sample(**args)


def test_declarations():
    optional = InfiniteTalkSampler.INPUT_TYPES()["optional"]
    assert optional["audio_scale"][0] == "FLOAT" and optional["audio_scale"][1]["default"] == 1.0
    assert optional["positive_per_window"][0] == "INFINITETALK_PROMPTS"
    assert NODE_CLASS_MAPPINGS["InfiniteTalkPromptsPerWindow"] is InfiniteTalkPromptsPerWindow
    assert InfiniteTalkPromptsPerWindow.RETURN_TYPES == ("INFINITETALK_PROMPTS",)


def test_prompts_node_encodes_each_prompt_like_clip_text_encode(tiny):
    (prompts,) = InfiniteTalkPromptsPerWindow().encode(tiny["text"], "a person talking | she smiles\n| looks up")
    assert len(prompts) == 3
    for got, text in zip(prompts, ("a person talking", "she smiles", "looks up"), strict=True):
        assert torch.equal(got[0][0], _encode(tiny["text"], text)[0][0])
    with pytest.raises(InputError, match="prompt 2 of 2"):
        InfiniteTalkPromptsPerWindow().encode(tiny["text"], "a |")
    with pytest.raises(InputError, match="at least one prompt"):
        InfiniteTalkPromptsPerWindow().encode(tiny["text"], "   ")


def test_sampler_takes_a_prompt_per_window_and_the_audio_scale(tiny, comfy_dirs, monkeypatch):
    seen = []
    real = sampler_nodes.generate
    monkeypatch.setattr(sampler_nodes, "generate", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    (prompts,) = InfiniteTalkPromptsPerWindow().encode(tiny["text"], "talks | smiles")
    store, count, _ = _run(tiny, comfy_dirs, positive=None, positive_per_window=prompts, audio_scale=1.5)
    assert count == 33 and store.complete
    (kw,) = seen
    assert kw["settings"].audio_scale == 1.5
    assert [c.shape[0] for c in kw["context"]] == [1, 1]
    assert torch.equal(kw["context"][1], _encode(tiny["text"], "smiles")[0][0].float())


def test_both_positive_inputs_connected_is_refused_before_any_work(tiny, comfy_dirs, monkeypatch):
    monkeypatch.setattr(sampler_nodes, "generate", lambda *a, **kw: pytest.fail("generate must not run"))
    (prompts,) = InfiniteTalkPromptsPerWindow().encode(tiny["text"], "talks | smiles")
    with pytest.raises(InputError, match="either positive or positive_per_window"):
        _run(tiny, comfy_dirs, positive_per_window=prompts)
    with pytest.raises(InputError, match="Prompts Per Window"):
        _run(tiny, comfy_dirs, positive=None, positive_per_window="talks | smiles")


def test_sampler_node_face_only_dubbing_keeps_the_source_outside_the_mask(tiny, comfy_dirs):
    optional = InfiniteTalkSampler.INPUT_TYPES()["optional"]
    assert optional["edit_mask"][0] == "MASK" and optional["face_only"][0] == "BOOLEAN"
    assert {"face_margin", "mask_feather"} <= set(optional)
    video = torch.rand(20, 32, 48, 3, generator=torch.Generator().manual_seed(8))  # an IMAGE batch: dubbing
    mask = torch.zeros(1, 32, 48)
    mask[:, 8:24, 16:40] = 1.0
    store, count, _ = _run(tiny, comfy_dirs, image=video, edit_mask=mask,
                           clip_vision_output=tiny["clip_vision"].encode_image(video[:1], crop=False))
    frames = torch.from_numpy(store.read_frames()).float()
    expected = (video[[min(i, 19) for i in range(count)]] * 255).round()
    outside = mask[0] == 0
    assert count == 33 and torch.equal(frames[:, outside], expected[:, outside])
    assert (frames[:, ~outside] - expected[:, ~outside]).abs().mean() > 10
    with pytest.raises(InputError, match="is for dubbing"):
        _run(tiny, comfy_dirs, edit_mask=mask)  # one image: nothing to keep


def _figure_clip(frames=20, h=32, w=48):
    """IMAGE [frames, h, w, 3]: a drawn person walking right on a plain background (the stand-in detector's person)."""
    from testlib.synthetic_person import person_clip

    clip = person_clip(frames, height=h * 2, width=w * 2)[:, ::2, ::2]
    return torch.from_numpy(clip.copy()).float() / 255.0


def test_sampler_node_face_only_finds_the_face_in_models_detection(tiny, comfy_dirs, monkeypatch, tmp_path):
    import shutil

    from testlib.preprocess_fixtures import DETECTOR, POSE
    from wanvideo_infinitetalk_pack.nodes import host
    from wanvideo_infinitetalk_pack.wanvideo.sampling import SamplerSettings
    from wanvideo_infinitetalk_pack.wanvideo.sampling.conditioning import ReferenceFrames
    from wanvideo_infinitetalk_pack.wanvideo.sampling.edit_mask import prepare_edit_region
    from wanvideo_infinitetalk_pack.wanvideo.sampling.face_box import find_face_models

    folder = tmp_path / "detection"
    folder.mkdir()
    shutil.copy(DETECTOR, folder / "yolov10m.onnx")
    shutil.copy(POSE, folder / "vitpose_h_wholebody.onnx")
    asked = []
    monkeypatch.setattr(host, "model_folder_paths",
                        lambda *names: asked.append(names) or ([str(folder)] if "detection" in names else []))
    video = _figure_clip()
    store, count, _ = _run(tiny, comfy_dirs, image=video, face_only=True,
                           clip_vision_output=tiny["clip_vision"].encode_image(video[:1], crop=False))
    assert ("detection",) in asked and count == 33
    region = prepare_edit_region(None, SamplerSettings(face_only=True), ReferenceFrames(video), 32, 48,
                                 find_face_models([str(folder)]))
    frames = torch.from_numpy(store.read_frames()).float()
    expected = (video[[min(i, 19) for i in range(count)]] * 255).round()
    for f in range(count):
        outside = region.frame_mask(f) == 0
        assert 0 < int((~outside).sum()) < outside.numel() // 2
        assert torch.equal(frames[f][outside], expected[f][outside]), f


def test_sampler_node_face_only_without_detector_files_is_refused_before_any_work(tiny, comfy_dirs, monkeypatch,
                                                                                   tmp_path):
    from wanvideo_infinitetalk_pack.nodes import host
    from wanvideo_infinitetalk_pack.wanvideo.errors import ModelFileError

    monkeypatch.setattr(host, "model_folder_paths", lambda *names: [str(tmp_path)])
    class Sampling(Exception):
        pass

    def run_on_host(*a, **kw):
        raise Sampling  # where the model would load

    monkeypatch.setattr(sampler_nodes, "run_on_host", run_on_host)
    video = _figure_clip()
    with pytest.raises(ModelFileError, match="yolov10m.onnx") as error:
        _run(tiny, comfy_dirs, image=video, face_only=True)
    assert "vitpose_h_wholebody.onnx" in str(error.value) and "needs no model file" in str(error.value)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(Sampling):  # a painted mask needs no detector file: the run goes on to the model
        mask = torch.zeros(1, 32, 48)
        mask[:, 4:16, 16:32] = 1
        _run(tiny, comfy_dirs, image=video, face_only=True, edit_mask=mask)
