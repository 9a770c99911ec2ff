"""Speed paths of the WanAnimate DiT: its two guidance passes (the official cond, and uncond = negative prompt with
all −1 face pixels) as one batched forward equal the separate forwards and the official outputs; the forward in
parts that step caching splits (embed, blocks with the face blocks, finish) equals the forward, and a skipped call
skips the face blocks too; torch.compile and fp8 matmuls reach the face blocks."""
from __future__ import annotations

import pytest
import torch
from model_testutils import load_animate_fixture, load_official
from testlib import FIXTURES

from wanvideo.model import build_model, config_from_reference
from wanvideo.model.layers import Linear
from wanvideo.model.quant.fp8 import quantize_fp8
from wanvideo.sampling.cache import CacheSettings, StepCache
from wanvideo.sampling.guidance import COND, UNCOND, pass_groups
from wanvideo.sampling.passes import PassRunner

TOL = dict(atol=1e-4, rtol=1e-4)  # the fixtures README's tolerance


@pytest.fixture(scope="module", params=["animate_a", "animate_b"])
def case(request):
    config, weights, tensors = load_animate_fixture(FIXTURES / f"{request.param}.safetensors")
    model = load_official(build_model(config_from_reference(config), torch.float32, "cpu"), weights)
    return model, tensors


def official_passes(tensors) -> dict:
    """The official loop's two calls (wan/animate.py arg_c / arg_null) as the window loop's pass arguments."""
    faces = tensors["input.face_pixel_values"]
    common = dict(clip_fea=tensors["input.clip_fea"], y=tensors["input.y"][None],
                  pose_latents=tensors["input.pose_latents"])
    return {COND: dict(context=tensors["input.context"][None], face_pixel_values=faces, **common),
            UNCOND: dict(context=tensors["input.context_null"][None], face_pixel_values=faces * 0 - 1, **common)}


def test_batched_passes_equal_sequential_and_the_official_outputs(case):
    model, tensors = case
    passes = official_passes(tensors)
    x, t = tensors["input.x"][None], tensors["input.t"]
    assert pass_groups(passes) == [[COND, UNCOND]]  # different prompts (lengths) and faces still share a batch
    sequential = PassRunner(model, passes, batched=False)(x, t, 0)
    runner = PassRunner(model, passes, batched=True)
    batched = runner(x, t, 0)
    assert runner.model_calls == 1
    for name in passes:
        assert (batched[name] - sequential[name]).abs().max().item() < 1e-5, name
        torch.testing.assert_close(batched[name], tensors[f"output.{name}"], **TOL)


def test_forward_in_parts_is_the_forward_and_a_skipped_call_skips_the_face_blocks(case):
    model, tensors = case
    passes = official_passes(tensors)
    x = tensors["input.x"][None]
    assert model.supports_step_cache
    plain = PassRunner(model, passes, batched=True)
    never_skips = PassRunner(model, passes, batched=True, cache=StepCache(CacheSettings("teacache", 0.0, 0), steps=3))
    for step, t in enumerate((900.0, 700.0, 500.0)):
        a, b = plain(x, torch.tensor([t]), step), never_skips(x, torch.tensor([t]), step)
        assert all(torch.equal(a[n], b[n]) for n in passes)  # threshold 0: the very same numbers
    assert never_skips.cache.total_skipped == 0

    face_calls = []
    hooks = [b.register_forward_hook(lambda *_: face_calls.append(1)) for b in model.face_adapter.fuser_blocks]
    try:
        skipping = PassRunner(model, passes, batched=True,
                              cache=StepCache(CacheSettings("magcache", threshold=10.0, start_step=1), steps=3))
        skipping(x, torch.tensor([900.0]), 0)
        computed = len(face_calls)
        assert computed == len(model.face_adapter.fuser_blocks)
        skipping(x, torch.tensor([700.0]), 1)  # both passes skipped: no block, no face block runs
        assert len(face_calls) == computed and skipping.cache.total_skipped == 2
    finally:
        for hook in hooks:
            hook.remove()


def _inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg, size = model.config, model.face_size
    return dict(x=torch.randn(2, 16, 3, 4, 4, generator=g), t=torch.tensor([500.0]),
                context=torch.randn(2, 5, cfg["text_dim"], generator=g),
                clip_fea=torch.randn(1, 257, cfg["clip_dim"], generator=g), y=torch.randn(1, 20, 3, 4, 4, generator=g),
                pose_latents=torch.randn(1, 16, 2, 4, 4, generator=g),
                face_pixel_values=torch.rand(2, 3, 5, size, size, generator=g) * 2 - 1)


def test_compile_takes_the_face_blocks_and_changes_nothing():
    from wanvideo.tiny import tiny_animate_models

    model = tiny_animate_models(seed=1).dit
    args = _inputs(model)
    eager = model(**args)
    count = model.compile_blocks(backend="eager")  # dynamo capture without a C++ build: CI-sized
    assert count == len(model.blocks) + len(model.face_adapter.fuser_blocks)
    assert torch.allclose(model(**args), eager, atol=1e-6)


def test_fp8_matmul_reaches_the_face_blocks_within_fp8_precision():
    from wanvideo.tiny import tiny_animate_models

    model = tiny_animate_models(seed=1).dit
    for part in (model.blocks, model.face_adapter):
        for layer in part.modules():
            if isinstance(layer, Linear):
                weight, scale = quantize_fp8(layer.weight.data, torch.float8_e4m3fn)
                layer._parameters["weight"] = torch.nn.Parameter(weight, requires_grad=False)
                layer.weight_scale = scale
    args = _inputs(model)
    dequantised = model(**args)
    assert model.set_fp8_matmul("on") > 0
    assert all(layer.fp8_matmul for layer in model.face_adapter.modules() if isinstance(layer, Linear))
    fp8 = model(**args)
    assert ((fp8 - dequantised).norm() / dequantised.norm()).item() < 0.05
