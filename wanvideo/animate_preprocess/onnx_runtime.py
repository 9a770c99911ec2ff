"""onnxruntime sessions for the detector and the pose model: CUDA when onnxruntime-gpu offers it, else CPU."""
from __future__ import annotations

import logging
import os
import threading

import numpy as np

from ..errors import InputError, ModelFileError

log = logging.getLogger("wanvideo")

_SESSIONS: dict[tuple[str, float], "OnnxModel"] = {}
_LOCK = threading.Lock()


def _providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError as exc:
        raise InputError("WanAnimate preprocessing needs onnxruntime: `pip install onnxruntime` "
                         "(or `onnxruntime-gpu` for CUDA).") from exc
    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxModel:
    """One ONNX model; input and output names are read from the session, never assumed."""

    def __init__(self, path: str):
        import onnxruntime

        if not os.path.isfile(path):
            raise ModelFileError(f"ONNX model file not found: {path}")
        try:
            self.session = onnxruntime.InferenceSession(path, providers=_providers())
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFileError(f"{path} is not a usable ONNX model ({exc}). If it is the split "
                                 "ViTPose-H, keep its .data file next to the .onnx file.") from exc
        self.path = path
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape
        self.output_name = self.session.get_outputs()[0].name
        log.info("onnxruntime: %s on %s", os.path.basename(path), self.session.get_providers()[0])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]


def onnx_model(path: str) -> OnnxModel:
    """A cached session for `path` (one per file and modification time, shared by every call)."""
    path = os.path.abspath(os.fspath(path))
    key = (path, os.path.getmtime(path) if os.path.exists(path) else 0.0)
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = OnnxModel(path)
        return _SESSIONS[key]
