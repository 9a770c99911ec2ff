"""build_model, presets and input checks."""
import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.model import build_model, preset, tiny_config


def tiny_inputs(cfg, batch=1, frames=3, h=4, w=6, speakers=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    audio_frames = 1 + cfg["vae_scale"] * (frames - 1)
    return dict(
        x=torch.randn(batch, 16, frames, h, w, generator=g),
        t=torch.full((batch,), 500.0),
        context=torch.randn(batch, 5, cfg["text_dim"], generator=g),
        clip_fea=torch.randn(batch, 257, cfg["clip_dim"], generator=g),
        y=torch.randn(batch, 20, frames, h, w, generator=g),
        audio=torch.randn(speakers, audio_frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"],
                          generator=g),
    )


def test_tiny_preset_has_reference_names_and_runs():
    cfg = tiny_config()
    model = build_model(cfg)
    keys = set(model.state_dict())
    for key in ("blocks.0.self_attn.q.weight", "audio_proj.proj1.weight", "blocks.1.audio_cross_attn.kv_linear.weight",
                "blocks.0.norm_x.weight", "img_emb.proj.4.bias", "head.modulation", "time_projection.1.weight"):
        assert key in keys
    assert model.config["dim"] == 64 and model.compute_dtype == torch.float32 and model.main_device.type == "cpu"
    out = model(**tiny_inputs(cfg))
    assert out.shape == (1, 16, 3, 4, 6) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_plain_i2v_model_has_no_adapter_weights_and_refuses_audio():
    cfg = tiny_config(audio_adapter=False)
    model = build_model(cfg)
    assert not any(k.startswith("audio_proj.") or ".audio_cross_attn." in k or ".norm_x." in k for k in model.state_dict())
    args = tiny_inputs(cfg)
    with pytest.raises(InputError, match="without InfiniteTalk weights"):
        model(**args)
    args["audio"] = None
    assert model(**args).shape == (1, 16, 3, 4, 6)


def test_14b_preset_sizes():
    cfg = preset("wan2.1-i2v-14b")
    model = build_model(cfg, dtype=torch.bfloat16, device="meta")  # no memory: shapes only
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    adapter = sum(n for k, n in sizes.items() if k.startswith("audio_proj.") or ".audio_cross_attn." in k or ".norm_x." in k)
    base = sum(sizes.values()) - adapter
    assert 16.2e9 < base < 16.6e9  # Wan2.1 I2V "14B": its bf16 file is ~32.8 GB
    assert 2.3e9 < adapter < 2.7e9  # InfiniteTalk: ~5 GB in fp16
    assert model.blocks[0].self_attn.q.weight.shape == (5120, 5120)
    assert model.blocks[0].ffn[0].weight.shape == (13824, 5120)
    assert model.audio_proj.proj1.weight.shape == (512, 5 * 12 * 768)
    assert model.blocks[0].audio_cross_attn.kv_linear.weight.shape == (10240, 768)
    assert model.img_emb.proj[1].weight.shape == (1280, 1280)


def test_bf16_model_returns_float32_close_to_fp32():
    cfg = tiny_config()
    torch.manual_seed(0)
    m32 = build_model(cfg)
    m16 = build_model(cfg, dtype=torch.bfloat16)
    m16.load_state_dict(m32.state_dict())
    args = tiny_inputs(cfg)
    a, b = m32(**args), m16(**args)
    assert b.dtype == torch.float32
    assert (a - b).abs().max() < 0.1 * a.abs().max()


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(audio=a["audio"][:, :-1]), "latent frames need"),
    (lambda a: a.update(context=torch.randn(1, 40, 32)), "text_len"),
    (lambda a: a.update(y=a["y"][:, :4]), "in_dim"),
    (lambda a: a.update(audio=torch.cat([a["audio"]] * 2)), "ref_target_masks"),
    (lambda a: a.update(audio=torch.cat([a["audio"]] * 3)), "one or two speakers"),
    (lambda a: a.update(x=a["x"][..., :5], y=a["y"][..., :5]), "patch size"),
])
def test_bad_inputs_get_clear_errors(change, message):
    cfg = tiny_config()
    model = build_model(cfg)
    args = tiny_inputs(cfg)
    change(args)
    with pytest.raises(InputError, match=message):
        model(**args)


def test_empty_speaker_mask_is_an_input_error():
    cfg = tiny_config()
    model = build_model(cfg)
    args = tiny_inputs(cfg, speakers=2)
    masks = torch.zeros(3, 4, 6)
    masks[0, :, :3] = 1
    masks[2, :, 3:] = 1
    args["ref_target_masks"] = masks
    with pytest.raises(InputError, match="speaker 2"):
        model(**args)


def test_rope_in_chunks_equals_whole():
    from wanvideo.model.rope import apply_rope_3d, grid_cos_sin

    x = torch.randn(2, 3 * 5 * 7, 4, 16)
    cos, sin = grid_cos_sin((3, 5, 7), 16, "cpu")
    assert torch.equal(apply_rope_3d(x, cos, sin, chunk_tokens=10), apply_rope_3d(x, cos, sin))


def test_per_row_fp8_scale():
    from wanvideo.model.layers import Linear

    lin = Linear(8, 4)
    w = torch.randn(4, 8)
    scale = torch.tensor([0.5, 1.0, 2.0, 4.0])
    lin.weight.data = (w / scale[:, None]).to(torch.float8_e4m3fn)
    lin.weight_scale = scale
    expect = lin.weight.data.float() * scale[:, None]
    assert torch.equal(lin.dequantized_weight(torch.float32), expect)


@pytest.mark.parametrize("overrides", [
    dict(num_heads=8),  # head_dim 8: RoPE axes (2, 1, 1) pairs
    dict(num_heads=16, audio_window=4),  # head_dim 4, even audio window
    dict(dim=96, num_heads=3, vae_scale=2, audio_window=3, num_layers=3, context_tokens=3, output_dim=8),
])
def test_other_sizes_run_for_one_and_two_speakers(overrides):
    cfg = tiny_config(**overrides)
    model = build_model(cfg)
    masks = torch.zeros(3, 6, 10)
    masks[0, 1:5, 1:4] = 1
    masks[1, 1:5, 6:9] = 1
    masks[2] = 1 - masks[0] - masks[1]
    for speakers in (1, 2):
        args = tiny_inputs(cfg, batch=2, frames=4, h=6, w=10, speakers=speakers)
        out = model(**args, ref_target_masks=masks)
        assert out.shape == (2, 16, 4, 6, 10) and torch.isfinite(out).all()
