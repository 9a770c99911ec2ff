"""Adaptive projected guidance (APG, Sadat et al. 2024, arXiv:2410.02416) as the reference offers it
(`generate_infinitetalk.py --use_apg`, off by default; momentum -0.75, norm threshold 55).

Each guidance difference is smoothed with a momentum buffer, its norm capped at the threshold, and only
its part orthogonal to the conditional prediction is kept (eta 0):

  cfg == 1:  v = cond + (audio_cfg − 1)·APG(cond − drop_audio)
  otherwise: v = cond + (cfg − 1)·APG_text(cond − drop_text) + (audio_cfg − 1)·APG_audio(drop_text − uncond)
  no audio:  v = cond + (cfg − 1)·APG_text(cond − uncond)

The buffers live for one window (the reference makes new ones per window), so a resumed run is unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .guidance import COND, DROP_AUDIO, DROP_TEXT, UNCOND, combine

APG_MOMENTUM = -0.75
APG_NORM_THRESHOLD = 55.0


class MomentumBuffer:
    def __init__(self, momentum: float):
        self.momentum = float(momentum)
        self.running_average = None

    def update(self, value: torch.Tensor) -> torch.Tensor:
        previous = 0.0 if self.running_average is None else self.momentum * self.running_average
        self.running_average = value + previous
        return self.running_average


def project(v0: torch.Tensor, v1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(part of v0 along v1, part orthogonal to v1), over the whole tensor, in float64."""
    dtype = v0.dtype
    a, b = v0.double(), v1.double()
    unit = b / b.norm().clamp_min(1e-12)
    parallel = (a * unit).sum() * unit
    return parallel.to(dtype), (a - parallel).to(dtype)


def apg_direction(diff: torch.Tensor, pred_cond: torch.Tensor, buffer: MomentumBuffer | None,
                  norm_threshold: float, eta: float = 0.0) -> torch.Tensor:
    if buffer is not None:
        diff = buffer.update(diff)
    if norm_threshold > 0:
        norm = diff.norm()
        if norm > 0:
            diff = diff * torch.clamp(norm_threshold / norm, max=1.0)
    parallel, orthogonal = project(diff, pred_cond)
    return orthogonal + eta * parallel


@dataclass
class APGState:
    """One window's APG momentum buffers (text and audio)."""

    momentum: float = APG_MOMENTUM
    norm_threshold: float = APG_NORM_THRESHOLD
    text: MomentumBuffer = field(init=False)
    audio: MomentumBuffer = field(init=False)

    def __post_init__(self):
        self.text = MomentumBuffer(self.momentum)
        self.audio = MomentumBuffer(self.momentum)


def combine_apg(preds: dict, cfg: float, audio_cfg: float, has_audio: bool, state: APGState) -> torch.Tensor:
    """The guided velocity with APG instead of plain CFG (passes as guidance.needed_passes gives them)."""
    cond = preds[COND]
    t = state.norm_threshold
    if not has_audio:
        if UNCOND not in preds:
            return cond
        return cond + (cfg - 1) * apg_direction(cond - preds[UNCOND], cond, state.text, t)
    if math.isclose(cfg, 1.0):
        if DROP_AUDIO not in preds:
            return cond
        return cond + (audio_cfg - 1) * apg_direction(cond - preds[DROP_AUDIO], cond, state.audio, t)
    drop_text = preds.get(DROP_TEXT, cond)
    return (cond + (cfg - 1) * apg_direction(cond - drop_text, cond, state.text, t)
            + (audio_cfg - 1) * apg_direction(drop_text - preds[UNCOND], cond, state.audio, t))


def window_guide(s, cfg: float, audio_cfg: float, has_audio: bool):
    """One window's guidance `preds -> velocity` from a sampler's settings: plain CFG, or APG (`s.apg`) with fresh
    momentum buffers (as the reference, per window)."""
    if not s.apg:
        return lambda preds: combine(preds, cfg, audio_cfg, has_audio)
    state = APGState(s.apg_momentum, s.apg_norm_threshold)
    return lambda preds: combine_apg(preds, cfg, audio_cfg, has_audio, state)
