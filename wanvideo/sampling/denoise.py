"""The window loop's pure helpers: per-window noise, latent sizes, the reference mask of `y`, frames to uint8,
and the denoising of one window's latent (clean motion frames kept, guidance, NaN check per step)."""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import torch

from ..errors import NonFiniteError
from .guidance import combine
from .passes import PassRunner
from .schedules import FlowSolver
from .settings import GenerationInterrupted
from .vae import TEMPORAL_STRIDE


def window_seed(seed: int, index: int) -> int:
    """The noise seed of window `index`: the user's seed for the first, a derived one for the rest."""
    if index == 0:
        return int(seed) & 0xFFFF_FFFF_FFFF_FFFF
    digest = hashlib.sha256(f"infinitetalk-window:{int(seed)}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def window_noise(seed: int, index: int, shape, device=None) -> torch.Tensor:
    """float32 N(0, 1) noise for window `index` (CPU generator: the same numbers on every device)."""
    generator = torch.Generator("cpu").manual_seed(window_seed(seed, index))
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device or "cpu")


def latent_frames(frames: int) -> int:
    return (frames - 1) // TEMPORAL_STRIDE + 1


def first_frame_mask(frames: int, lat_h: int, lat_w: int) -> torch.Tensor:
    """[4, T, lat_h, lat_w]: the reference's mask channels of `y` (ones on latent frame 0 only)."""
    mask = torch.zeros(4, latent_frames(frames), lat_h, lat_w)
    mask[:, 0] = 1.0
    return mask


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """[3, n, H, W] in [-1, 1] -> [n, H, W, 3] uint8 (rounded)."""
    pixels = ((video.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).contiguous().cpu().numpy()


def denoise_window(
    model,
    noise: torch.Tensor,
    motion_latent: torch.Tensor,
    solver: FlowSolver,
    passes: dict,
    cfg: float,
    audio_cfg: float,
    has_audio: bool,
    on_step: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    predict: Callable | None = None,
    guide: Callable | None = None,
    blend: Callable | None = None,
) -> torch.Tensor:
    """Denoise one window's latent [16, T, h, w]; `passes` maps pass name -> model keyword arguments.

    The motion latent (its first frames) is written into the latent before every model call and after
    every step, so those frames stay clean, as in the reference. `predict(x, t, step)` runs a step's passes
    (default: one model call per pass; see passes.PassRunner), `guide(preds)` combines them (default: CFG).
    `blend(latent, i)`: face-only dubbing's source blend at step i's noise level (i = steps: the clean end; see
    edit_mask.py), before every model call and after the last step.
    """
    predict = predict or PassRunner(model, passes, should_stop=should_stop)
    guide = guide or (lambda preds: combine(preds, cfg, audio_cfg, has_audio))
    latent = noise.clone()
    n_motion = motion_latent.shape[1]
    for i in range(solver.num_steps):
        if should_stop is not None and should_stop():
            raise GenerationInterrupted(f"stopped before step {i + 1}/{solver.num_steps}")
        if blend is not None:
            latent = blend(latent, i)
        latent[:, :n_motion] = motion_latent
        t = solver.timesteps[i:i + 1].to(latent.device)
        preds = predict(latent[None], t, i)
        velocity = guide(preds)
        del preds
        latent = solver.step(i, latent, velocity)
        if not bool(torch.isfinite(latent).all()):
            raise NonFiniteError(
                f"step {i + 1}/{solver.num_steps} produced NaN/infinite values: likely a damaged or wrongly "
                "quantised model or LoRA file, or fp16 overflow (use bf16 or fp32 compute)")
        latent[:, :n_motion] = motion_latent
        if on_step is not None:
            on_step(i + 1)
    if blend is not None:
        latent = blend(latent, solver.num_steps)
        latent[:, :n_motion] = motion_latent
    return latent
