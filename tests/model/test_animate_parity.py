"""WanAnimate DiT and face path against the official Wan2.2 outputs (shared/fixtures/animate_*.safetensors).

Everything is built from the fixture's own metadata (sizes are never assumed), in float32, and compared
within the fixtures README's tolerance (atol = rtol = 1e-4).
"""
from __future__ import annotations

import pytest
import torch
from model_testutils import load_animate_fixture, load_official
from testlib import FIXTURES

from wanvideo.errors import InputError
from wanvideo.model import build_model, config_from_reference
from wanvideo.model.face_adapter import FaceEncoder
from wanvideo.model.motion_encoder import MotionEncoder

TOL = dict(atol=1e-4, rtol=1e-4)


def _fixture(fixtures_dir, name):
    path = fixtures_dir / f"{name}.safetensors"
    if not path.exists():
        pytest.fail(f"fixture {path} missing: run the tests with shared/ beside the repo")
    return load_animate_fixture(path)


_load = load_official


@pytest.fixture(scope="module", params=["animate_a", "animate_b"])
def animate_case(request):
    config, weights, tensors = _fixture(FIXTURES, request.param)
    model = _load(build_model(config_from_reference(config), torch.float32, "cpu"), weights)
    return model, tensors


def _call(model, tensors, context, faces):
    return model(tensors["input.x"][None], tensors["input.t"], tensors[context][None], tensors["input.clip_fea"],
                 tensors["input.y"][None], pose_latents=tensors["input.pose_latents"], face_pixel_values=faces)[0]


def test_animate_cond_and_uncond_match_official(animate_case):
    model, tensors = animate_case
    faces = tensors["input.face_pixel_values"]
    torch.testing.assert_close(_call(model, tensors, "input.context", faces), tensors["output.cond"], **TOL)
    # the guidance call: negative prompt and all -1 face pixels
    torch.testing.assert_close(_call(model, tensors, "input.context_null", faces * 0 - 1), tensors["output.uncond"], **TOL)


def test_animate_intermediates_match_official(animate_case):
    model, tensors = animate_case
    torch.testing.assert_close(model.motion_encoder.dec.direction.basis(), tensors["derived.motion_encoder.dec.direction.Q"],
                               **TOL)
    tokens = model.face_tokens(tensors["input.face_pixel_values"])
    torch.testing.assert_close(tokens[:, 1:], tensors["debug.cond.face_encoder"], **TOL)
    assert torch.count_nonzero(tokens[:, 0]) == 0  # the reference slot's face frame is zero


def test_animate_face_blocks_reach_the_output(animate_case):
    """Zeroing the face blocks' output projection moves the result (the face path is wired in)."""
    model, tensors = animate_case
    faces = tensors["input.face_pixel_values"]
    saved = [b.linear2.weight.clone() for b in model.face_adapter.fuser_blocks]
    try:
        for b in model.face_adapter.fuser_blocks:
            b.linear2.weight.zero_()
        off = _call(model, tensors, "input.context", faces)
    finally:
        for b, w in zip(model.face_adapter.fuser_blocks, saved, strict=True):
            b.linear2.weight.copy_(w)
    assert (off - tensors["output.cond"]).abs().max() > 1e-2


def test_motion_encoder_and_face_encoder_match_official(fixtures_dir):
    config, weights, tensors = _fixture(fixtures_dir, "animate_motion")
    motion_cfg, face_cfg = config["motion_encoder"], config["face_encoder"]
    channels = {int(k): v for k, v in motion_cfg["channels"].items()}
    lia = MotionEncoder(motion_cfg["size"], motion_cfg["style_dim"], motion_cfg["motion_dim"], channels,
                        rows=face_cfg["in_dim"])
    _load(lia, {k[len("motion_encoder."):]: v for k, v in weights.items() if k.startswith("motion_encoder.")})
    face = FaceEncoder(face_cfg["in_dim"], face_cfg["hidden_dim"], face_cfg["num_heads"], face_cfg["width"])
    _load(face, {k[len("face_encoder."):]: v for k, v in weights.items() if k.startswith("face_encoder.")})
    with torch.no_grad():
        imgs = tensors["input.face_pixel_values"][0].transpose(0, 1)  # [T, 3, S, S]
        torch.testing.assert_close(lia.enc.net_app(imgs), tensors["debug.lia_app"], **TOL)
        torch.testing.assert_close(lia.enc.motion_coefficients(imgs), tensors["debug.lia_alpha"], **TOL)
        motion = lia(imgs)
        torch.testing.assert_close(motion, tensors["output.motion"], **TOL)
        torch.testing.assert_close(face(motion[None]), tensors["output.face_encoder"], **TOL)


def test_qr_sign_convention_is_householder(fixtures_dir):
    """A positive-diagonal (Gram-Schmidt) QR would flip columns of Q; ours has the official mixed signs."""
    _, weights, tensors = _fixture(fixtures_dir, "animate_motion")
    rows, dims = weights["motion_encoder.dec.direction.weight"].shape
    from wanvideo.model.motion_encoder import Direction

    direction = Direction(rows, dims)
    direction.weight.data.copy_(weights["motion_encoder.dec.direction.weight"])
    torch.testing.assert_close(direction.basis(), tensors["derived.motion_encoder.dec.direction.Q"], **TOL)
    assert (torch.diagonal(tensors["derived.motion_encoder.dec.direction.R"]) < 0).any()


def test_other_sizes_build_and_run():
    """Nothing depends on the fixture sizes: other layers/heads/face size/motion_dim/widths run end to end."""
    cfg = dict(model_type="animate", dim=48, ffn_dim=64, num_heads=6, num_layers=10, text_len=8, text_dim=16,
               freq_dim=16, clip_dim=12, face_encoder_width=6, face_encoder_num_heads=3, motion_encoder_dim=40,
               motion_encoder={"size": 16, "style_dim": 10, "motion_dim": 7, "channels": {16: 4, 8: 6, 4: 6}})
    model = build_model(cfg)
    assert len(model.face_adapter.fuser_blocks) == 2
    x = torch.randn(1, 16, 3, 4, 4)
    out = model(x, torch.tensor([900]), torch.randn(1, 5, 16), torch.randn(1, 257, 12), torch.randn(1, 20, 3, 4, 4),
                pose_latents=torch.randn(1, 16, 2, 4, 4), face_pixel_values=torch.rand(1, 3, 5, 16, 16) * 2 - 1)
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(InputError, match="face crops must be RGB 16x16"):
        model(x, torch.tensor([900]), torch.randn(1, 5, 16), torch.randn(1, 257, 12), torch.randn(1, 20, 3, 4, 4),
              pose_latents=torch.randn(1, 16, 2, 4, 4), face_pixel_values=torch.rand(1, 3, 5, 32, 32))
    with pytest.raises(InputError, match="face frames"):
        model(x, torch.tensor([900]), torch.randn(1, 5, 16), torch.randn(1, 257, 12), torch.randn(1, 20, 3, 4, 4),
              pose_latents=torch.randn(1, 16, 2, 4, 4), face_pixel_values=torch.rand(1, 3, 4, 16, 16))
    with pytest.raises(InputError, match="pose_latents"):
        model(x, torch.tensor([900]), torch.randn(1, 5, 16), torch.randn(1, 257, 12), torch.randn(1, 20, 3, 4, 4),
              pose_latents=torch.randn(1, 16, 3, 4, 4), face_pixel_values=torch.rand(1, 3, 5, 16, 16))
