"""The window loop with a recording DiT stand-in and a lossless block VAE (sampling_fakes)."""
import logging

import numpy as np
import pytest
import torch
from sampling_fakes import CONFIG, FakeDiT, FakeVAE, code_rgb, row_embeddings, row_target_velocity

from wanvideo.errors import InputError
from wanvideo.sampling import SamplerSettings, default_two_speaker_masks, generate, reference_timesteps, window_noise

H, W = 32, 48  # output size: latent 4 x 6
IMAGE_RGB = (40, 90, 160)


def _image(rgb=IMAGE_RGB, h=H, w=W):
    return torch.tensor(rgb, dtype=torch.float32).div(255).expand(1, h, w, 3).clone()


def _clip():
    return torch.randn(1, 257, CONFIG["clip_dim"], generator=torch.Generator().manual_seed(5))


def _contexts():
    gen = torch.Generator().manual_seed(7)
    return torch.randn(1, 5, CONFIG["text_dim"], generator=gen), torch.randn(1, 3, CONFIG["text_dim"], generator=gen)


def _settings(**kw):
    # colour correction off: these tests read exact numbers back through the lossless block VAE
    base = dict(frame_window=17, motion_frames=9, steps=1, shift=7.0, cfg=5.0, audio_cfg=4.0, width=W, height=H,
                color_correction=0.0)
    base.update(kw)
    return SamplerSettings(**base)


def _px(rgb):
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1.0


def test_one_window_reproduces_a_hand_computed_three_way_guidance_step(tmp_path):
    def velocity(x, t, context, clip_fea, y, audio, masks):
        a = 0.0 if audio is None else float(audio.float().mean()) / 100.0
        return 0.5 * x + float(context.mean()) + a

    model, vae = FakeDiT(velocity), FakeVAE()
    ctx, ctx_null = _contexts()
    audio = row_embeddings(17, speakers=2)
    generate(model, vae, _image(), _clip(), audio=audio, context=ctx, context_null=ctx_null,
             settings=_settings(seed=123), store_root=str(tmp_path))

    # three passes in the reference's order: cond, drop_text (negative text), uncond (negative text, silence)
    assert len(model.calls) == 3
    cond, drop_text, uncond = model.calls
    assert torch.equal(cond["context"], ctx) and torch.equal(drop_text["context"], ctx_null)
    assert torch.equal(uncond["context"], ctx_null)
    assert cond["audio"].shape == (2, 17, 5, 2, 3) and torch.equal(drop_text["audio"], cond["audio"])
    assert uncond["audio"].shape == (1, 17, 5, 2, 3) and not uncond["audio"].any()
    assert cond["t"].tolist() == [1000.0]

    # by hand: noise with latent frame 0 replaced by the image latent, v = u + 5 (c - d) + 4 (d - u), one
    # Euler step of dt = (1000 - 0) / 1000, then latent frame 0 set to the image latent again
    # encode 0: y's padded video (17 frames), encode 1: the image alone, the first window's motion latent
    assert [v.shape[1] for v in vae.encoded] == [17, 1]
    image_latent = FakeVAE(record=False).encode(vae.encoded[1])
    x = window_noise(123, 0, (16, 5, H // 8, W // 8))
    x[:, :1] = image_latent
    assert torch.equal(cond["x"][0], x)
    c_pos, c_neg = float(ctx.mean()), float(ctx_null.mean())
    a_spk = float(cond["audio"].float().mean()) / 100.0
    c = 0.5 * x + c_pos + a_spk
    d = 0.5 * x + c_neg + a_spk
    u = 0.5 * x + c_neg
    expected = x - (u + 5.0 * (c - d) + 4.0 * (d - u)) * 1.0
    expected[:, :1] = image_latent
    assert torch.allclose(vae.decoded[0], expected, atol=1e-5)

    # y: 4 mask channels (ones on latent frame 0) + the latent of the image followed by grey frames
    y = cond["y"][0]
    assert y.shape == (20, 5, H // 8, W // 8)
    assert torch.equal(y[:4, 0], torch.ones(4, H // 8, W // 8)) and not y[:4, 1:].any()
    assert torch.allclose(y[4:7, 0], _px(IMAGE_RGB).view(3, 1, 1).expand(3, H // 8, W // 8), atol=1e-6)
    assert not y[4:, 1:].any()  # grey (0 in [-1, 1]) frames
    # two speakers, default recipe: speaker masks are the left/right halves at latent resolution
    masks = cond["masks"]
    assert masks.shape == (3, H // 8, W // 8)
    src = default_two_speaker_masks(H, W)
    assert torch.equal(masks[0] + masks[1] + masks[2], torch.ones(H // 8, W // 8))
    assert masks[0, :, : W // 16].any() and not masks[0, :, W // 16:].any() and src[0].any()


def test_motion_frames_are_clean_before_every_call_and_the_cfg1_case_runs_two_passes(tmp_path):
    model, vae = FakeDiT(lambda x, t, *a: torch.sin(x) + t.view(-1, 1, 1, 1, 1) / 1000), FakeVAE()
    generate(model, vae, _image(), _clip(), audio=row_embeddings(25), settings=_settings(steps=3, cfg=1.0),
             store_root=str(tmp_path))
    # two windows x three steps x two passes (cond, drop_audio), drop_audio with the positive text and silence
    assert len(model.calls) == 2 * 3 * 2
    for i in range(0, 12, 2):
        assert torch.equal(model.calls[i]["context"], model.calls[i + 1]["context"])
        assert model.calls[i]["audio"].any() and not model.calls[i + 1]["audio"].any()
    ts = reference_timesteps(3, 7.0)
    assert [float(c["t"]) for c in model.calls[:6:2]] == ts[:3].tolist()
    first_motion = model.calls[0]["x"][0, :, :1]
    for call in model.calls[:6]:
        assert torch.equal(call["x"][0, :, :1], first_motion)
    # window 2: its first 3 latent frames are the latent of window 1's last 9 decoded frames, at every call
    window1_video = FakeVAE(record=False).decode(vae.decoded[0])
    motion = FakeVAE(record=False).encode(window1_video[:, -9:])
    for call in model.calls[6:]:
        assert torch.equal(call["x"][0, :, :3], motion)
    assert torch.equal(vae.decoded[1][:, :3], motion)  # and still clean after the last step


def test_three_windows_give_exactly_the_audio_frames_in_order_without_the_overlap(tmp_path):
    model, vae = FakeDiT(row_target_velocity()), FakeVAE()
    store = generate(model, vae, _image(), _clip(), audio=row_embeddings(30),
                     settings=_settings(steps=2, cfg=5.0, audio_cfg=1.0), store_root=str(tmp_path))
    assert store.num_windows == 3 and store.complete
    assert (len(store), store.fps, store.width, store.height) == (30, 25.0, W, H)
    frames = store.read_frames()
    assert frames.shape == (30, H, W, 3)
    # frame 0 is the reference image (the first window's motion latent); frame g shows audio row g
    assert (frames[0] == np.array(IMAGE_RGB, np.uint8)).all()
    for g in range(1, 30):
        assert (frames[g] == np.array(code_rgb(g), np.uint8)).all(), f"frame {g}"


def test_dubbing_conditions_each_window_on_the_source_frame_at_its_start(tmp_path):
    colours = [(i * 6, 255 - i * 6, (i * 37) % 256) for i in range(40)]
    source = torch.stack([_image(c)[0] for c in colours])
    clip_rows = torch.randn(40, 257, CONFIG["clip_dim"])
    model, vae = FakeDiT(lambda x, *a: torch.zeros_like(x)), FakeVAE()
    store = generate(model, vae, source, clip_rows, audio=row_embeddings(30), settings=_settings(cfg=1.0, audio_cfg=1.0),
                     store_root=str(tmp_path))
    assert len(store) == 30
    # one call per window (cfg = audio_cfg = 1): y and CLIP come from source frames 0, 8, 16
    assert len(model.calls) == 3
    for call, start in zip(model.calls, (0, 8, 16), strict=False):
        assert torch.allclose(call["y"][0, 4:7, 0, 0, 0], _px(colours[start]), atol=1e-6)
        assert torch.equal(call["clip_fea"][0], clip_rows[start])
    # the first window starts from the source's first frame
    assert (store.read_frames(0, 1)[0] == np.array(colours[0], np.uint8)).all()


def test_plain_i2v_without_audio_calls_the_model_with_audio_none(tmp_path):
    model, vae = FakeDiT(lambda x, *a: 0.1 * x), FakeVAE()
    ctx, ctx_null = _contexts()
    store = generate(model, vae, _image(), _clip(), context=ctx, context_null=ctx_null,
                     settings=_settings(max_frames=21, cfg=3.0, fps=16.0), store_root=str(tmp_path))
    assert (len(store), store.fps) == (21, 16.0)
    assert model.calls and all(c["audio"] is None and c["masks"] is None for c in model.calls)
    assert len(model.calls) == 2 * 2  # two windows, cond + uncond
    with pytest.raises(InputError, match="max_frames"):
        generate(model, vae, _image(), _clip(), settings=_settings(), store_root=str(tmp_path))


def test_identical_prompts_skip_the_redundant_pass(tmp_path):
    model = FakeDiT(lambda x, *a: 0.1 * x)
    generate(model, FakeVAE(), _image(), _clip(), audio=row_embeddings(17), settings=_settings(),
             store_root=str(tmp_path))
    assert len(model.calls) == 2  # no prompts: drop_text equals cond, only cond + uncond run


def test_colour_correction_pulls_toward_the_reference(tmp_path):
    # the stand-in paints every frame orange-red; full correction moves the colour to the image's statistics
    codec = FakeVAE(record=False)

    def velocity(x, t, *a):
        frames = 1 + 4 * (x.shape[2] - 1)
        target = codec.encode(torch.tensor([0.6, -0.5, -0.6]).view(3, 1, 1, 1).expand(3, frames, H, W))[None]
        return (x - target) / (t.view(-1, 1, 1, 1, 1) / 1000)

    outs = {}
    for strength in (0.0, 1.0):
        store = generate(FakeDiT(velocity), FakeVAE(), _image(), _clip(), audio=row_embeddings(17),
                         settings=_settings(color_correction=strength), store_root=str(tmp_path / str(strength)))
        outs[strength] = store.read_frames().astype(float)
    plain, corrected = outs[0.0][1:].mean((0, 1, 2)), outs[1.0][1:].mean((0, 1, 2))
    assert np.abs(corrected - np.array(IMAGE_RGB)).max() < 3
    assert np.abs(plain - np.array(IMAGE_RGB)).max() > 50


@pytest.mark.parametrize("kw,match", [
    (dict(width=50, height=32), "multiple of 16"),
    (dict(frame_window=20), "4n\\+1"),
    (dict(motion_frames=17), "smaller than frame_window"),
    (dict(color_correction=2.0), "color_correction 2: out of range, give a number from 0 to 1"),
    (dict(scheduler="ddim"), "scheduler"),
])
def test_bad_settings_are_explained_before_any_work(tmp_path, kw, match):
    model = FakeDiT(lambda x, *a: x)
    with pytest.raises(InputError, match=match):
        generate(model, FakeVAE(), _image(), _clip(), audio=row_embeddings(17), settings=_settings(**kw),
                 store_root=str(tmp_path))
    assert model.num_calls == 0


def test_bad_conditioning_is_explained(tmp_path):
    model = FakeDiT(lambda x, *a: x)
    args = dict(settings=_settings(), store_root=str(tmp_path))
    with pytest.raises(InputError, match="clip_vision_output"):
        generate(model, FakeVAE(), _image(), None, audio=row_embeddings(17), **args)
    with pytest.raises(InputError, match="features"):
        generate(model, FakeVAE(), _image(), _clip(), context=torch.zeros(1, 4, 5), audio=row_embeddings(17), **args)
    with pytest.raises(InputError, match="layers"):
        bad = row_embeddings(17)
        bad.speakers = [torch.zeros(17, 12, 768)]
        generate(model, FakeVAE(), _image(), _clip(), audio=bad, **args)
    plain = FakeDiT(lambda x, *a: x, config=dict(CONFIG, audio_adapter=False))
    with pytest.raises(InputError, match="no InfiniteTalk audio weights"):
        generate(plain, FakeVAE(), _image(), _clip(), audio=row_embeddings(17), **args)


def test_the_run_id_covers_weights_inputs_and_settings(tmp_path):
    class WeightedFake(FakeDiT):
        def __init__(self, value):
            super().__init__(lambda x, *a: 0.1 * x)
            self.weight = torch.nn.Parameter(torch.full((64,), value))

    def path(model=None, seed=0, image=None, audio_rows=17, **kw):
        store = generate(model or WeightedFake(1.0), FakeVAE(), _image() if image is None else image, _clip(),
                         audio=row_embeddings(audio_rows), settings=_settings(seed=seed, **kw),
                         store_root=str(tmp_path))
        return store.path

    base = path()
    assert path() == base  # identical inputs: the same store (resumed / reused)
    others = [path(model=WeightedFake(2.0)), path(seed=1), path(image=_image((1, 2, 3))), path(audio_rows=18),
              path(audio_cfg=3.0), path(scheduler="unipc"), path(color_correction=0.2)]
    assert len({base, *others}) == 1 + len(others)


def test_a_failure_mid_run_keeps_finished_windows_and_says_so(tmp_path, caplog):
    state = {"fail": True}

    def velocity(x, t, *a):
        if state["fail"] and model.num_calls > 4:  # 2 calls per window (cond, uncond): fail in window 3
            raise RuntimeError("CUDA out of memory (simulated)")
        return 0.1 * x

    model = FakeDiT(velocity)
    args = dict(audio=row_embeddings(33), settings=_settings(), store_root=str(tmp_path))
    with pytest.raises(RuntimeError, match="out of memory"):
        generate(model, FakeVAE(), _image(), _clip(), **args)
    assert "window 3/3 failed; 2 finished windows (25 frames) are kept in" in caplog.text
    state["fail"], model.num_calls = False, 0
    store = generate(model, FakeVAE(), _image(), _clip(), **args)
    assert model.num_calls == 2 and len(store) == 33  # only window 3 was computed


def test_a_host_interrupt_raised_in_a_callback_is_a_stop_not_a_failure(tmp_path, caplog):
    """ComfyUI's progress hook raises its own exception on Cancel: logged as a stop (no ERROR), windows kept."""
    class HostInterrupt(Exception):
        pass

    stop = {"now": False}

    def on_progress(p):
        if p.window == 2:
            stop["now"] = True
            raise HostInterrupt("Processing interrupted")

    model = FakeDiT(lambda x, *a: 0.1 * x)
    args = dict(audio=row_embeddings(33), settings=_settings(), store_root=str(tmp_path))
    with caplog.at_level(logging.INFO), pytest.raises(HostInterrupt):
        generate(model, FakeVAE(), _image(), _clip(), on_progress=on_progress, should_stop=lambda: stop["now"], **args)
    assert "window 2/3 stopped on request; 1 finished windows (17 frames) are kept in" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    stop["now"], model.num_calls = False, 0
    store = generate(model, FakeVAE(), _image(), _clip(), **args)
    assert model.num_calls == 4 and len(store) == 33  # windows 2 and 3 were computed, window 1 was kept
