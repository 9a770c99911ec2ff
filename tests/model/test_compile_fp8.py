"""torch.compile of the blocks and fp8 matmuls: same outputs as the plain paths where they run on the CPU,
a clear error where they cannot run."""
import pytest
import torch
from torch._dynamo.utils import counters

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.model.compile import compile_unavailable_reason
from wanvideo.model.layers import Linear
from wanvideo.model.quant import fp8 as fp8_module
from wanvideo.model.quant.fp8 import quantize_fp8


def inputs(model, batch=2, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    audio_frames = 1 + cfg["vae_scale"] * (frames - 1)
    return dict(
        x=torch.randn(batch, 16, frames, 8, 8, generator=g), t=torch.tensor([500.0]),
        context=torch.randn(batch, 5, cfg["text_dim"], generator=g),
        clip_fea=torch.randn(1, 257, cfg["clip_dim"], generator=g), y=torch.randn(1, 20, frames, 8, 8, generator=g),
        audio=torch.randn(batch, 1, audio_frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"],
                          generator=g),
    )


def quantize_blocks(model, dtype=torch.float8_e4m3fn):
    """What the loader's keep_fp8 / fp8_e4m3fn quantisation leaves: the blocks' linear weights in fp8 with a scale."""
    for module in model.blocks.modules():
        if isinstance(module, Linear):
            weight, scale = quantize_fp8(module.weight.data, dtype)
            module._parameters["weight"] = torch.nn.Parameter(weight, requires_grad=False)
            module.weight_scale = scale


def test_compiled_blocks_equal_eager_and_compile_once_per_shape():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    args = inputs(model)
    eager = model(**args)
    counters.clear()
    model.compile_blocks(backend="eager")  # dynamo capture without a C++ build: CI-sized
    compiled = model(**args)
    assert torch.allclose(compiled, eager, atol=1e-6)
    for step in range(3):  # further steps and "windows" of the same size: no new graph, no recompile
        args["x"] = args["x"] * 0.9
        args["t"] = torch.tensor([400.0 - step])
        model(**args)
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["recompiles"]


def test_compile_errors_say_what_is_missing(monkeypatch):
    assert "unknown compile backend" in compile_unavailable_reason("tensorrt", "cpu")
    assert "cudagraphs" in compile_unavailable_reason("cudagraphs", "cpu")
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert "C++ compiler" in compile_unavailable_reason("inductor", "cpu")
    model = build_model(tiny_config())
    with pytest.raises(InputError, match="turn the compile option off"):
        model.compile_blocks(backend="inductor")


def test_fp8_matmul_equals_the_dequantising_path_within_fp8_precision():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    quantize_blocks(model)
    args = inputs(model)
    dequantised = model(**args)
    assert model.set_fp8_matmul("on") > 0
    calls = []
    real = fp8_module.scaled_fp8_linear
    import wanvideo.model.layers as layers

    layers.scaled_fp8_linear = lambda *a: calls.append(1) or real(*a)
    try:
        fp8 = model(**args)
    finally:
        layers.scaled_fp8_linear = real
    assert calls, "the fp8 matmul path was not taken"
    rel = ((fp8 - dequantised).norm() / dequantised.norm()).item()
    assert rel < 0.05, rel
    model.set_fp8_matmul("off")
    assert torch.equal(model(**args), dequantised)


def test_fp8_matmul_refuses_clearly_where_it_cannot_run(monkeypatch):
    model = build_model(tiny_config())
    with pytest.raises(InputError, match="needs fp8 weights"):
        model.set_fp8_matmul("on")
    assert model.set_fp8_matmul("auto") == 0
    quantize_blocks(model)
    monkeypatch.setattr(fp8_module, "fp8_matmul_unavailable_reason",
                        lambda device: "fp8 matmuls need an NVIDIA GPU of compute capability 8.9 or newer; X is 8.6")
    with pytest.raises(InputError, match="compute capability 8.9.*turn it off"):
        model.set_fp8_matmul("on")
    assert model.set_fp8_matmul("auto") == 0  # auto: the dequantising path, logged
    with pytest.raises(InputError, match="fp8 matmul must be one of"):
        model.set_fp8_matmul("fast")


def test_gpu_capability_check_names_the_card(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA GeForce RTX 3090")
    reason = fp8_module.fp8_matmul_unavailable_reason("cuda:0")
    assert "RTX 3090 is 8.6" in reason
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert fp8_module.fp8_matmul_unavailable_reason("cuda:0") is None
