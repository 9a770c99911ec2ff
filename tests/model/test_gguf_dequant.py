"""Every supported GGUF type read back through our reader and torch kernels equals the gguf package's own
dequantisation (gguf.quants.dequantize, the format's reference): exactly in float32, and in bf16/fp16 to the
one rounding of that exact value."""
import gguf
import numpy as np
import pytest
import torch
from gguf_testutils import random_k_blocks

from wanvideo.model.quant.gguf_dequant import BLOCK_TYPES
from wanvideo.model.quant.gguf_file import SUPPORTED_TYPES, GGUFSource
from wanvideo.model.quant.gguf_write import write_gguf

LIBRARY_QUANTISED = ["Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0"]
K_QUANTS = ["Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K"]
ROWS, COLS = 48, 512  # 2 K-quant super-blocks / 16 small blocks per row


def test_every_required_type_is_supported():
    required = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_0", "Q5_1", "Q4_K", "Q4_0", "Q4_1", "Q3_K"}
    assert required <= set(SUPPORTED_TYPES)
    assert set(LIBRARY_QUANTISED + K_QUANTS) == set(BLOCK_TYPES)


def _roundtrip(tmp_path, tensors):
    path = tmp_path / "t.gguf"
    write_gguf(path, tensors, "F32")
    return GGUFSource(path)


def _reference(source, key):
    """What the gguf package itself makes of the stored bytes (its reader + dequantize), in torch shape."""
    t = source._tensors[key]
    return torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type))).reshape(source.shape(key))


@pytest.mark.parametrize("qtype", LIBRARY_QUANTISED)
def test_library_quantised_types_match_the_reference(qtype, tmp_path):
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(ROWS, COLS, generator=gen) * 0.05
    qt = gguf.GGMLQuantizationType[qtype]
    source = _roundtrip(tmp_path, {"w": (gguf.quants.quantize(weight.numpy(), qt), qtype)})
    assert source.qtype("w") == qtype and source.shape("w") == (ROWS, COLS) and source.is_packed("w")
    reference = _reference(source, "w")
    packed, fmt = source.get_packed("w")
    assert packed.dtype == torch.uint8 and packed.numel() == source._tensors["w"].n_bytes  # stays file-sized
    assert torch.equal(fmt.dequantize(packed, torch.float32), reference)
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(fmt.dequantize(packed, dtype), reference.to(dtype))
    # and it is the weight it stands for, within the type's quantisation error
    assert float((reference - weight).norm() / weight.norm()) < {"Q8_0": 0.01, "Q5_1": 0.05, "Q5_0": 0.06}.get(qtype, 0.12)


@pytest.mark.parametrize("qtype", K_QUANTS)
def test_k_quants_match_the_reference_on_valid_random_blocks(qtype, tmp_path):
    blocks = random_k_blocks(qtype, ROWS, COLS, seed=len(qtype) + K_QUANTS.index(qtype))
    source = _roundtrip(tmp_path, {"w": (blocks, qtype)})
    assert source.qtype("w") == qtype and source.shape("w") == (ROWS, COLS)
    reference = _reference(source, "w")
    assert torch.isfinite(reference).all() and reference.abs().max() > 0
    packed, fmt = source.get_packed("w")
    assert torch.equal(fmt.dequantize(packed, torch.float32), reference)
    assert torch.equal(fmt.dequantize(packed, torch.bfloat16), reference.to(torch.bfloat16))
    assert torch.equal(source.get("w"), reference)


@pytest.mark.parametrize("qtype", ["F32", "F16", "BF16"])
def test_plain_types_read_as_stored(qtype, tmp_path):
    weight = torch.randn(ROWS, COLS, generator=torch.Generator().manual_seed(2))
    path = tmp_path / "t.gguf"
    write_gguf(path, {"w": weight}, qtype)
    source = GGUFSource(path)
    assert source.qtype("w") == qtype and not source.is_packed("w")
    got = source.get("w")
    assert got.dtype == {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[qtype]
    assert torch.equal(got.float(), _reference(source, "w").float())
    assert torch.equal(got, weight.to(got.dtype))


def test_five_dim_weight_keeps_its_shape_from_the_metadata(tmp_path):
    weight = torch.randn(64, 36, 1, 2, 2)
    path = tmp_path / "t.gguf"
    write_gguf(path, {"patch_embedding.weight": weight}, "Q8_0")
    source = GGUFSource(path)
    assert len(source._tensors["patch_embedding.weight"].shape) == 4  # stored 4-D, as the common converter does
    assert source.shape("patch_embedding.weight") == (64, 36, 1, 2, 2)
    assert torch.equal(source.get("patch_embedding.weight").float(), weight.half().float())


def test_shapes_are_torch_order(tmp_path):
    path = tmp_path / "t.gguf"
    write_gguf(path, {"a": torch.zeros(96, 64), "b": torch.zeros(3, 5, 64)}, "Q8_0")
    source = GGUFSource(path)
    assert source.shape("a") == (96, 64) and source.shape("b") == (3, 5, 64)
    assert source.get("b").shape == (3, 5, 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("qtype", K_QUANTS + LIBRARY_QUANTISED)
def test_kernels_on_the_gpu_match_the_reference(qtype, tmp_path):
    if qtype in K_QUANTS:
        blocks = random_k_blocks(qtype, ROWS, COLS)
    else:
        blocks = gguf.quants.quantize(np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32),
                                      gguf.GGMLQuantizationType[qtype])
    source = _roundtrip(tmp_path, {"w": (blocks, qtype)})
    packed, fmt = source.get_packed("w")
    got = fmt.dequantize(packed.cuda(), torch.float32)
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), _reference(source, "w"))
