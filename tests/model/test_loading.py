"""load_model: every layout x precision loads the same model; fp8 within its quantisation error."""
import pytest
import torch
from model_testutils import (
    CALLS,
    LAYOUTS,
    PRECISIONS,
    TINY_OVERRIDES,
    call_args,
    expected_weights,
    load_dit_fixture,
    write_layout,
)

from wanvideo.model import build_model, load_model
from wanvideo.model.layers import Linear
from wanvideo.model.quant.fp8 import quantize_fp8


@pytest.fixture(scope="module")
def reference():
    from testlib import FIXTURES

    return load_dit_fixture(FIXTURES / "dit_b_two_speakers.safetensors")


def _load(paths, **kw):
    kw.setdefault("dtype", torch.float32)
    kw.setdefault("device", "cpu")
    kw.setdefault("config", TINY_OVERRIDES)
    return load_model(paths, **kw)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_and_precision_loads_the_same_model(reference, layout, precision, tmp_path):
    config, weights, tensors = reference
    paths = write_layout(weights, layout, precision, tmp_path)
    model = _load(paths)
    assert model.config["dim"] == 64 and model.config["audio_adapter"]
    loaded = model.state_dict()
    assert set(loaded) == set(weights)  # native names, nothing missing, nothing extra
    expected = expected_weights(weights, precision)
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), f"{layout}/{precision}: {key} differs"
    out = model(**call_args(tensors, "cond"))
    if precision == "fp32":
        assert (out - tensors["output.cond"]).abs().max() < 1e-4
    else:  # the same computation as the reference model holding the file's rounded weights
        same = build_model(config)
        same.load_state_dict(expected)
        assert (out - same(**call_args(tensors, "cond"))).abs().max() < 1e-5


def test_fp8_weights_are_within_quantisation_error(reference):
    _, weights, _ = reference
    for precision, rel in (("fp8_e4m3fn", 2 ** -3), ("fp8_e5m2", 2 ** -2), ("fp8_e4m3fn_scaled", 2 ** -3)):
        expected = expected_weights(weights, precision)
        for key, w in weights.items():
            if w.dim() >= 2 and not key.endswith("modulation"):
                # relative to each element, for values in fp8's normal range
                big = w.abs() > 2 ** -6 * (w.abs().max() / 448 if "scaled" in precision else 1) * 4
                assert ((expected[key] - w).abs()[big] <= rel * w.abs()[big]).all(), (precision, key)


def test_keep_fp8_keeps_linear_weights_in_fp8_and_matches_dequantised_load(reference, tmp_path):
    _, weights, tensors = reference
    paths = write_layout(weights, "comfyui", "fp8_e4m3fn_scaled", tmp_path)
    kept = _load(paths, keep_fp8=True)
    plain = _load(paths)
    q = kept.blocks[0].self_attn.q
    assert isinstance(q, Linear) and q.weight.dtype == torch.float8_e4m3fn and q.weight_scale is not None
    assert plain.blocks[0].self_attn.q.weight.dtype == torch.float32
    args = call_args(tensors, "cond")
    assert (kept(**args) - plain(**args)).abs().max() < 1e-5


def test_quantize_on_load_stores_block_linears_in_fp8(reference, tmp_path):
    config, weights, tensors = reference
    paths = write_layout(weights, "original", "bf16", tmp_path)
    model = _load(paths, quantize="fp8_e4m3fn")
    assert model.blocks[1].ffn[0].weight.dtype == torch.float8_e4m3fn
    assert model.text_embedding[0].weight.dtype == torch.float32  # small layers stay in the compute dtype
    # the same model as one holding each block weight rounded to fp8 with a per-tensor scale
    expected = {}
    for key, w in weights.items():
        w = w.to(torch.bfloat16).float()
        if key.startswith("blocks.") and w.dim() == 2:
            q, scale = quantize_fp8(w)
            assert (q.float() * scale - w).abs().max() <= 2 ** -4 * w.abs().max()
            w = q.float() * scale
        expected[key] = w
    same = build_model(config)
    same.load_state_dict(expected)
    args = call_args(tensors, "cond")
    assert (model(**args) - same(**args)).abs().max() < 1e-5


def test_bf16_compute_of_fp32_file_is_close(tmp_path):
    # Single speaker: with two, the speaker routing is an argmax, and bf16 flips it for a few
    # borderline tokens (the reference's bf16 run does too), which moves those tokens more.
    from testlib import FIXTURES

    _, weights, tensors = load_dit_fixture(FIXTURES / "dit_a_single.safetensors")
    model = _load(write_layout(weights, "original", "fp32", tmp_path), dtype="bf16")
    assert model.compute_dtype == torch.bfloat16
    assert model.blocks[0].self_attn.q.weight.dtype == torch.bfloat16
    for name in CALLS:
        out = model(**call_args(tensors, name))
        assert out.dtype == torch.float32
        assert (out - tensors[f"output.{name}"]).abs().max() < 0.1


def test_loading_straight_from_a_fixture_file_uses_its_config():
    from testlib import FIXTURES

    path = FIXTURES / "dit_a_single.safetensors"
    model = load_model(path, dtype=torch.float32, device="cpu")
    _, _, tensors = load_dit_fixture(path)
    assert (model(**call_args(tensors, "cond")) - tensors["output.cond"]).abs().max() < 1e-4


def test_plain_i2v_without_infinitetalk(reference, tmp_path):
    from safetensors.torch import save_file

    _, weights, tensors = reference
    wan = {k: v for k, v in weights.items() if not (k.startswith("audio_proj.") or ".audio_cross_attn." in k or ".norm_x." in k)}
    path = tmp_path / "wan_i2v.safetensors"
    save_file(wan, str(path))
    model = _load(path)
    assert not model.config["audio_adapter"]
    args = call_args(tensors, "cond")
    args["audio"] = None
    assert model(**args).shape == (1, 16, 5, 8, 12)


def test_loading_streams_one_tensor_at_a_time(reference, tmp_path, monkeypatch):
    """Each tensor is read from the file once and dropped before the next: no state-dict copy in memory."""
    import gc
    import weakref

    from wanvideo.model import weight_files

    _, weights, _ = reference
    paths = write_layout(weights, "comfyui", "bf16", tmp_path)
    alive, reads, most = [], [], [0]
    original = weight_files.SafetensorsSource.get

    def tracking_get(self, key):
        gc.collect()
        alive[:] = [r for r in alive if r() is not None]
        most[0] = max(most[0], len(alive))
        tensor = original(self, key)
        alive.append(weakref.ref(tensor))
        reads.append(key)
        return tensor

    monkeypatch.setattr(weight_files.SafetensorsSource, "get", tracking_get)
    model = _load(paths, dtype=torch.bfloat16)
    assert len(reads) == len(set(reads)) == len(weights)
    assert most[0] <= 1  # at most the previous raw tensor (now owned by the model, same dtype) is alive
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
