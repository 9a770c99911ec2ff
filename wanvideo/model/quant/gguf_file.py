"""Reading .gguf model files (the GGUF loader pack's / llama.cpp's format) one tensor at a time.

Parsing is the `gguf` package's `GGUFReader` (memory-mapped). Everything GGUF-specific about
names and layouts is mapped here, so the rest of the loader sees the same thing as for a
.safetensors file (`keys`, `shape`, `get`, `metadata`):

- names: the common repacks keep the original Wan names (`blocks.0.self_attn.q.weight`),
  sometimes under `model.diffusion_model.`; that prefix is stripped by layouts.KeyMap as for
  safetensors, so key-based detection (detect.py) works unchanged for every model kind
  (Wan2.1 I2V, InfiniteTalk, and WanAnimate once its DiT is loadable: nothing here is Wan-I2V specific);
- shapes: GGUF lists dimensions fastest-first (reversed from torch); `shape()` gives torch order;
- GGUF tensors have at most 4 dimensions: the common converter stores 5-D weights (the 3-D
  convolution of the patch embedding) reshaped, with the real shape in the metadata array
  `comfy.gguf.orig_shape.<tensor name>`; `shape()` returns that real shape and every read is reshaped to it;
- block-quantised tensors (Q8_0, Q4_K, ...) come out of `get_packed()` as their raw uint8 blocks
  plus a quantized.PackedFormat, to stay packed in memory; `get()` dequantises (for small tensors
  such as norms and biases, and for every non-Linear weight).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import ModelFileError
from ...torch_inputs import check_finite
from ..file_sniff import WAN_I2V, check_start, truncated, wrong_model
from .gguf_dequant import BLOCK_TYPES, block_scales
from .quantized import PackedFormat

ORIG_SHAPE_KEY = "comfy.gguf.orig_shape."
PLAIN_TYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
SUPPORTED_TYPES = tuple(PLAIN_TYPES) + BLOCK_TYPES
USE_INSTEAD = ("use a GGUF quantised as Q8_0, Q6_K, Q5_K_M/Q5_K_S, Q5_0/Q5_1, Q4_K_M/Q4_K_S, Q4_0/Q4_1 or Q3_K_M/Q3_K_S "
               "(or F16/BF16), or a .safetensors file")
# llama.cpp language-model / text-encoder tensor names (token embedding, `blk.N.` blocks, `enc.blk.N.` in T5)
_LLM_KEYS = ("token_embd.weight", "output_norm.weight")


def _name(path) -> str:
    return os.path.basename(str(path))


def _check_magic(path: Path) -> None:
    with open(path, "rb") as f:
        start = f.read(64)
    if start.startswith(b"GGUF"):
        if len(start) < 24:
            raise truncated(path, len(start), "it ends inside its GGUF header")
        return
    check_start(path, start, path.stat().st_size)
    raise ModelFileError(f"{_name(path)} has a .gguf name but is not a GGUF file (no GGUF signature): re-download it")


def _open_reader(path: Path):
    from gguf import GGUFReader

    size = path.stat().st_size
    try:
        return GGUFReader(str(path), "r")
    except (ValueError, IndexError, KeyError, OverflowError, TypeError, UnicodeDecodeError) as exc:
        # The reader memory-maps the file and slices it by the header's offsets: a short file surfaces as a
        # failed reshape/index (data cut off) or as nonsense lengths (header cut off).
        raise ModelFileError(
            f"truncated or damaged GGUF file: {_name(path)} ({size:,} bytes) could not be read ({exc}): re-download it"
        ) from None


def _field_value(field):
    """A scalar or string metadata value (arrays: None), read from the field's parts as every gguf>=0.13 has them."""
    from gguf import GGUFValueType

    if len(field.types) != 1 or field.types[0] == GGUFValueType.ARRAY:
        return None
    try:
        if field.types[0] == GGUFValueType.STRING:
            return bytes(field.parts[-1]).decode("utf-8")
        return field.parts[-1].tolist()[0]
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _orig_shape(field, key: str, path) -> tuple:
    from gguf import GGUFValueType

    if len(field.types) != 2 or field.types[0] != GGUFValueType.ARRAY or field.types[1] in (
            GGUFValueType.STRING, GGUFValueType.ARRAY, GGUFValueType.FLOAT32, GGUFValueType.FLOAT64, GGUFValueType.BOOL):
        raise ModelFileError(f"{_name(path)}: metadata {key} should be an array of integers: the file is damaged")
    return tuple(int(field.parts[i][0]) for i in field.data)


class GGUFSource:
    """Tensors of one .gguf file under their stored names (see the module notes for the mapping)."""

    def __init__(self, path):
        path = Path(path)
        self.path = str(path)
        _check_magic(path)
        reader = _open_reader(path)
        self.metadata: dict = {}
        orig_shapes: dict = {}
        for key, field in reader.fields.items():
            if key.startswith(ORIG_SHAPE_KEY):
                orig_shapes[key[len(ORIG_SHAPE_KEY):]] = _orig_shape(field, key, path)
            elif not key.startswith("GGUF."):
                value = _field_value(field)
                if value is not None:
                    self.metadata[key] = value
        self.architecture = str(self.metadata.get("general.architecture", ""))
        self._tensors = {t.name: t for t in reader.tensors}
        end = max((t.data_offset + t.n_bytes for t in reader.tensors), default=0)
        if end > path.stat().st_size:
            raise ModelFileError(f"truncated GGUF file: {_name(path)} is {end - path.stat().st_size:,} bytes shorter "
                                 "than its header says: re-download it")
        self._shapes = {}
        for name, t in self._tensors.items():
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))
            if name in orig_shapes:
                if int(np.prod(orig_shapes[name])) != int(np.prod(shape)):
                    raise ModelFileError(f"{_name(path)}: {ORIG_SHAPE_KEY}{name} = {orig_shapes[name]} does not hold "
                                         f"the tensor's {int(np.prod(shape))} values: the file is damaged")
                shape = orig_shapes[name]
            self._shapes[name] = shape
        self._check_not_language_model()

    # ----- what the loader needs ------------------------------------------------------------------------
    def keys(self):
        return list(self._tensors)

    def shape(self, key) -> tuple:
        return self._shapes[key]

    def qtype(self, key) -> str:
        return self._tensors[key].tensor_type.name

    def dtype(self, key):
        """torch dtype of a plain (F32/F16/BF16) tensor; uint8 for block-quantised ones."""
        return PLAIN_TYPES.get(self.qtype(key), torch.uint8)

    def is_packed(self, key) -> bool:
        return self.qtype(key) in BLOCK_TYPES

    def check_types(self, keys=None) -> None:
        """Raise, naming a tensor and its type, when any of `keys` (default: all) is stored in a type we cannot read."""
        bad: dict = {}
        for key in self._tensors if keys is None else keys:
            qtype = self.qtype(key)
            if qtype not in SUPPORTED_TYPES:
                bad.setdefault(qtype, key)
        if bad:
            kinds = ", ".join(f"{q} (e.g. {k})" for q, k in sorted(bad.items()))
            raise ModelFileError(f"{_name(self.path)}: quantization type {kinds} is not supported by this pack: {USE_INSTEAD}")

    def _read(self, key) -> torch.Tensor:
        """The tensor's stored bytes read from the file into a new tensor of the reader's numpy dtype and shape.

        A plain read rather than a copy out of the reader's memory map: the map's pages would count as
        resident memory a second time while the model is loading.
        """
        t = self._tensors[key]
        out = torch.empty(t.n_bytes, dtype=torch.uint8)
        with open(self.path, "rb") as f:
            f.seek(t.data_offset)
            if f.readinto(out.numpy()) != t.n_bytes:
                raise ModelFileError(f"truncated GGUF file: {_name(self.path)} ends inside {key}: re-download it")
        dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}.get(t.data.dtype, torch.uint8)
        return out.view(dtype).reshape(t.data.shape)

    def get_packed(self, key):
        """(uint8 tensor of the raw blocks, PackedFormat) of a block-quantised tensor (a copy in RAM)."""
        self.check_types([key])
        packed = self._read(key)
        check_finite(block_scales(packed, self.qtype(key)), key, self.path)  # NaN/inf values come only from scales
        return packed, PackedFormat(self.qtype(key), self._shapes[key])

    def get(self, key) -> torch.Tensor:
        """The tensor in torch order and shape: plain types as stored, block-quantised ones dequantised to float32."""
        self.check_types([key])
        qtype = self.qtype(key)
        if qtype in BLOCK_TYPES:
            packed, fmt = self.get_packed(key)
            return fmt.dequantize(packed, torch.float32)
        data = self._read(key)
        tensor = (data.view(torch.bfloat16) if qtype == "BF16" else data).reshape(self._shapes[key])
        return check_finite(tensor, key, self.path)

    # ----- wrong files --------------------------------------------------------------------------------------
    def _check_not_language_model(self) -> None:
        """llama.cpp-style files (LLMs, the umt5 text encoder as GGUF) named as such; diffusion files go on to detect.py."""
        keys = self._tensors
        if any(k.startswith("enc.blk.") for k in keys) or self.architecture in ("t5", "t5encoder"):
            raise wrong_model(self.path, WAN_I2V, "this is a T5/umt5 text encoder in GGUF form, not the video model: "
                              "load it with a GGUF text-encoder loader (models/text_encoders)")
        if any(k in keys for k in _LLM_KEYS) or any(k.startswith("blk.") for k in keys):
            raise wrong_model(self.path, WAN_I2V, f"this is a language model (llama.cpp GGUF, architecture "
                              f"{self.architecture or 'unknown'}), not a video model: InfiniteTalk needs Wan2.1 I2V "
                              "14B (e.g. wan2.1-i2v-14b-480p-Q8_0.gguf)")
