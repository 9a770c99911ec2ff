"""The duck-typed contracts the engine's parts meet, written down as `typing.Protocol`s.

Any object with these methods fits (no base class to inherit): the standalone adapters here, the ComfyUI node
pack's adapters around the host's objects, the tests' doubles. The type checker (mypy, run beside ruff) holds the
annotated code that names them to these shapes. The window runner's contract is the `WindowRunner` base class
in `wanvideo/sampling/loop.py` (its docstring lists the hooks a model implements).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class VideoVAE(Protocol):
    """The video VAE as the window loop sees it, in the DiT's (per-channel normalised) latent space.

    Optional, looked up with getattr: `fingerprint() -> str` (identifies the weights, for resuming),
    `precision(name)` (a context manager: "fp32" or "host", see `SamplerSettings.vae_precision`), and `module`
    (the torch module whose `encoder` / `decoder` calls are the chunks reported as progress, vae_progress.py).
    """

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video [3, F, H, W] in [-1, 1] -> latent [16, 1 + (F - 1) // 4, H / 8, W / 8] float32."""
        ...

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [16, T, h, w] -> video [3, 1 + 4 (T - 1), 8 h, 8 w] float32 in [-1, 1]."""
        ...


@runtime_checkable
class ClipEncoder(Protocol):
    """The CLIP ViT-H image encoder: pixels [3, H, W] in 0..1 -> features [257, clip_dim] (or [1, 257, clip_dim]).

    Optional: `fingerprint() -> str` (identifies its weights, for resuming a run)."""

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...


class LoopRunner(Protocol):
    """What `run_windows` (wanvideo/sampling/loop.py) drives: `run(window, carry)` samples, decodes and stores one
    window and returns what the next needs, kept in the store under `carry_name`. The `WindowRunner` base class
    meets it with the whole window recipe; a model may also bring its own (`unit`, `should_stop` optional)."""

    carry_name: str

    def run(self, window, carry): ...


class VideoWriter(Protocol):
    """One video file being encoded: `open()`, `write(frame)` per frame, then `finish()`, or `abort()` on failure
    (removes the partial file). The ffmpeg writer and the PyAV / cv2 / imageio fallbacks (wanvideo/video/)."""

    name: str  # "ffmpeg", "pyav", "cv2", "imageio"
    path: str
    frames_written: int

    @property
    def browser_playable(self) -> bool: ...

    @property
    def muxes_audio(self) -> bool: ...

    def open(self) -> None: ...

    def write(self, frame: np.ndarray) -> None:
        """frame: H×W×3 uint8."""
        ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...
