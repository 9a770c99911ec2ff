"""The sampler nodes as ComfyUI calls them, with test doubles of the host's VAE, CONDITIONING and CLIP vision."""
import pytest
import torch
from testlib.comfy_doubles import HostVAE, TinyClipVision, TinyTextEncoder
from wanvideo_infinitetalk_pack.nodes import host, sampler_nodes
from wanvideo_infinitetalk_pack.nodes.host_adapters import HostWanVAE, conditioning_to_context
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkFramesToImages, InfiniteTalkSampler
from wanvideo_infinitetalk_pack.wanvideo.audio import AudioEmbeddings
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.sampling import GenerationInterrupted, wan21_latent_stats
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_models


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(seed=0)
    cfg = models.dit.config
    return dict(
        model=models.dit,
        vae=HostVAE(models.vae.vae),  # ComfyUI's VAE conventions over the same diffusers autoencoder
        engine_vae=models.vae,
        text=TinyTextEncoder("umt5", cfg["text_dim"]),
        clip_vision=TinyClipVision("clip_vision_h", cfg["clip_dim"]),
        embeds=AudioEmbeddings(speakers=[torch.randn(33, 2, 32, generator=torch.Generator().manual_seed(2))],
                               fps=25.0, waveform=torch.zeros(33 * 640), sample_rate=16000),
    )


def _encode(text_encoder, prompt):
    return text_encoder.encode_from_tokens_scheduled(text_encoder.tokenize(prompt))


def _run(tiny, comfy_dirs, **kw):
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    args = dict(model=tiny["model"], vae=tiny["vae"], image=image,
                clip_vision_output=tiny["clip_vision"].encode_image(image, crop=False), width=48, height=32,
                frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0, seed=7,
                audio_embeds=tiny["embeds"], positive=_encode(tiny["text"], "a person talking"),
                negative=_encode(tiny["text"], "blurry"))
    args.update(kw)
    return InfiniteTalkSampler().sample(**args)


def test_sampler_node_makes_the_whole_video_into_a_store(tiny, comfy_dirs, monkeypatch):
    texts, bars = [], []
    monkeypatch.setattr(host, "send_progress_text", lambda text, node_id=None: texts.append(text))
    real_bar = host.progress_bar
    monkeypatch.setattr(host, "progress_bar", lambda total: bars.append(real_bar(total)) or bars[-1])
    store, count, fps = _run(tiny, comfy_dirs)
    assert (count, fps, len(store), store.width, store.height) == (33, 25.0, 33, 48, 32)
    assert store.path.startswith(str(comfy_dirs[1]))  # under the host's temp folder
    # The badge's text moves with every step and every VAE chunk, and says which windows are finished.
    assert [t for t in texts if " done " in t] == [
        "window 1/3 done (17 frames)", "window 2/3 done (25 frames)", "window 3/3 done (33 frames)"]
    assert [t for t in texts if t.startswith("window 2/3 · decode")] == [f"window 2/3 · decode {i}/5" for i in range(6)]
    assert [t for t in texts if t.startswith("window 2/3 · step")] == [f"window 2/3 · step {i}/2" for i in range(3)]
    assert bars[0].total == 3 * 2 and bars[0].current == 6

    images = InfiniteTalkFramesToImages().convert(store)[0]
    assert images.shape == (33, 32, 48, 3) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    part = InfiniteTalkFramesToImages().convert(store, start=15, count=4)[0]
    assert torch.equal(part, images[15:19])
    with pytest.raises(InputError, match="past the end"):
        InfiniteTalkFramesToImages().convert(store, start=33)

    # the output folder option keeps the frames where a ComfyUI restart does not wipe them
    store2, _, _ = _run(tiny, comfy_dirs, frames_folder="output", max_frames=17)
    assert store2.path.startswith(str(comfy_dirs[0])) and len(store2) == 17


def test_cancel_keeps_finished_windows_and_the_rerun_resumes(tiny, comfy_dirs, monkeypatch):
    calls = {"n": 0}
    # guidance passes run (batch rows: the passes of a step may share one model call)
    handle = tiny["model"].register_forward_pre_hook(lambda m, args: calls.__setitem__("n", calls["n"] + args[0].shape[0]))
    try:
        monkeypatch.setattr(host, "interrupt_requested", lambda: calls["n"] >= 8)  # window 2, second step
        with pytest.raises(GenerationInterrupted, match="1 finished windows"):
            _run(tiny, comfy_dirs, seed=99)
        monkeypatch.setattr(host, "interrupt_requested", lambda: False)
        calls["n"] = 0
        store, count, _ = _run(tiny, comfy_dirs, seed=99)
        assert calls["n"] == 2 * 2 * 3 and count == 33  # windows 2 and 3 only
    finally:
        handle.remove()


def test_plain_image_to_video_and_empty_prompts(comfy_dirs):
    plain = tiny_models(seed=1, audio_adapter=False)
    image = torch.rand(1, 32, 48, 3)
    clip = TinyClipVision("clip_vision_h", plain.dit.config["clip_dim"]).encode_image(image)
    store, count, fps = InfiniteTalkSampler().sample(
        plain.dit, HostVAE(plain.vae.vae), image, clip, width=48, height=32, frame_window=17, motion_frames=9,
        steps=1, max_frames=20)
    assert (count, fps) == (20, 25.0)


def test_host_vae_adapter_follows_comfyui_conventions(tiny):
    adapter, host_vae = HostWanVAE(tiny["vae"]), tiny["vae"]
    video = torch.rand(3, 5, 32, 48) * 2 - 1
    latent = adapter.encode(video)
    raw = host_vae.encode(((video + 1) / 2).permute(1, 2, 3, 0))  # ComfyUI: [F, H, W, C] in 0..1 -> raw latents
    assert raw.shape == (1, 16, 2, 4, 6)
    mean, std = wan21_latent_stats()
    assert torch.allclose(latent, (raw[0] - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1), atol=1e-6)
    # the same autoencoder through the engine's standalone adapter gives the same normalised latents
    assert torch.allclose(latent, tiny["engine_vae"].encode(video), atol=1e-5)
    decoded = adapter.decode(latent)
    assert decoded.shape == (3, 5, 32, 48) and decoded.min() >= -1 and decoded.max() <= 1
    assert torch.allclose(decoded, tiny["engine_vae"].decode(latent), atol=1e-5)

    class ImageVAE:
        latent_channels, latent_dim = 4, 2
        encode = decode = None

    with pytest.raises(InputError, match="Wan 2.1 video VAE"):
        HostWanVAE(ImageVAE())


def test_conditioning_adapters(tiny):
    cond = _encode(tiny["text"], "hello there")
    ctx = conditioning_to_context(cond, "positive")
    assert ctx.shape == (1, 512, tiny["model"].config["text_dim"]) and ctx[0, 3:].abs().sum() == 0
    with pytest.raises(InputError, match="CONDITIONING"):
        conditioning_to_context("not a conditioning", "positive")


def test_node_declarations():
    spec = InfiniteTalkSampler.INPUT_TYPES()
    assert spec["required"]["frame_window"][1]["default"] == 81
    assert spec["required"]["motion_frames"][1]["default"] == 9
    assert spec["required"]["scheduler"][0] == ["euler", "unipc", "dpm++"]
    assert set(spec["optional"]) >= {"audio_embeds", "positive", "negative", "speaker_1_mask", "speaker_2_mask"}
    assert InfiniteTalkSampler.RETURN_TYPES == ("INFINITETALK_FRAMES", "INT", "FLOAT")
    assert sampler_nodes.NODE_CLASS_MAPPINGS == {"InfiniteTalkSampler": InfiniteTalkSampler,
                                                 "InfiniteTalkFramesToImages": InfiniteTalkFramesToImages}


def test_no_negative_with_cfg_warns_once_and_says_what_to_connect(tiny, comfy_dirs, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        _run(tiny, comfy_dirs, negative=None, cfg=5.0, max_frames=9)
    warnings = [r for r in caplog.records if "no negative prompt is connected" in r.getMessage()]
    assert len(warnings) == 1  # once per run, not per window
    assert "bright tones, overexposed" in warnings[0].getMessage()  # the reference's default, to paste
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _run(tiny, comfy_dirs, negative=None, cfg=1.0, max_frames=9)  # no text guidance: nothing to warn about
    assert not [r for r in caplog.records if "no negative prompt" in r.getMessage()]


class _RecordingClipVision:
    def __init__(self, inner):
        self.inner, self.sizes = inner, []

    def encode_image(self, image, crop=True):
        self.sizes.append((tuple(image.shape), crop))
        return self.inner.encode_image(image, crop=crop)


def test_clip_vision_model_connected_encodes_each_windows_cropped_frame(tiny, comfy_dirs):
    video = torch.rand(33, 40, 60, 3, generator=torch.Generator().manual_seed(9))  # dubbing: 33 source frames
    clip_vision = _RecordingClipVision(tiny["clip_vision"])
    store, count, _ = _run(tiny, comfy_dirs, image=video, clip_vision=clip_vision,
                           clip_vision_output=tiny["clip_vision"].encode_image(video[:1], crop=False))
    # 33 frames in 17-frame windows with 9 motion frames: windows start at 0, 8, 16 -> one encoding each,
    # of the frame cropped to the 32x48 output, whole (crop=False)
    assert count == 33 and store.num_windows == 3
    assert clip_vision.sizes == [((1, 32, 48, 3), False)] * 3


def test_vae_runs_in_float32_in_the_node_and_is_restored(tiny, comfy_dirs):
    from testlib.comfy_doubles import HostVAE as Double
    from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_vae

    vae = Double(tiny_vae(seed=2, dtype=torch.bfloat16).vae)
    assert vae.vae_dtype == torch.bfloat16
    seen = []
    hook = vae.first_stage_model.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    try:
        _run(tiny, comfy_dirs, vae=vae, max_frames=9)
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.float32}
    assert vae.vae_dtype == torch.bfloat16 and next(vae.first_stage_model.parameters()).dtype == torch.bfloat16
