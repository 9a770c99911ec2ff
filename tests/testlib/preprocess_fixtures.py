"""Loading the WanAnimate preprocessing fixtures and the stand-in ONNX files."""
import io

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file

from testlib import FIXTURES

DETECTOR = FIXTURES / "onnx" / "yolov10m_standin.onnx"
POSE = FIXTURES / "onnx" / "vitpose_h_wholebody_standin.onnx"
META_KEYS = ("keypoints_body", "keypoints_left_hand", "keypoints_right_hand", "keypoints_face")


def load(name: str) -> dict:
    path = FIXTURES / f"animate_preprocess_{name}.safetensors"
    if not path.is_file():
        pytest.fail(f"fixture missing: {path}")
    return load_file(str(path))


def png(tensors: dict, key: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(tensors[key].tobytes())))


def differing_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ in any channel (the fixtures allow 0.1 %)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = a != b
    return float((diff.any(-1) if diff.ndim == 3 else diff).mean())
