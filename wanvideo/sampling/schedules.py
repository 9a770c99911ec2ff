"""Flow-matching timestep schedules and the solvers that walk them.

The reference (InfiniteTalk `generate_infinitetalk`) builds its schedule as
float32 `linspace(1000, 1, steps)` plus a final 0, pushes each value through
`timestep_transform` (t' = shift·u / (1 + (shift − 1)·u) · 1000 with u = t/1000)
and takes plain Euler steps `latent -= v · dt` with dt = (t_i − t_{i+1}) / 1000.
`reference_timesteps` reproduces that bit for bit (float32 throughout, the same
operation order), checked against the official values in shared/fixtures.

UniPC and DPM++ are the diffusers multistep solvers in flow-matching mode, fed
the very same sigma schedule (sigma = t / 1000), so all three solvers visit the
same noise levels and call the model at the same timesteps.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import InputError

NUM_TRAIN_TIMESTEPS = 1000
SCHEDULERS = ("euler", "unipc", "dpm++")
# Default shift per size bucket in the reference (infinitetalk-480 / infinitetalk-720).
DEFAULT_SHIFT = {"480p": 7.0, "720p": 11.0}


def timestep_transform(t: torch.Tensor, shift: float, num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """The reference's shift of a flow-matching timestep (same float32 operations, same order)."""
    t = t / num_timesteps
    new_t = shift * t / (1 + (shift - 1) * t)
    return new_t * num_timesteps


def reference_timesteps(steps: int, shift: float) -> torch.Tensor:
    """float32 [steps + 1]: the timesteps the reference loop calls the model at, then 0."""
    steps = int(steps)
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    if not (shift > 0 and math.isfinite(shift)):
        raise InputError(f"shift must be a positive number, got {shift}")
    raw = np.linspace(NUM_TRAIN_TIMESTEPS, 1, steps, dtype=np.float32)
    raw = torch.from_numpy(np.concatenate([raw, np.zeros(1, dtype=np.float32)]))
    return timestep_transform(raw, shift, NUM_TRAIN_TIMESTEPS)


def wan22_schedule(kind: str, steps: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(int64 timesteps [steps], float32 sigmas [steps + 1] ending in 0) of Wan2.2's WanAnimate loop.

    UniPC: the official FlowUniPCMultistepScheduler's schedule, linspace(0.999, 0, steps + 1)[:-1] shifted;
    DPM++ (and Euler here): `get_sampling_sigmas`, linspace(1, 0, steps + 1)[:-1] shifted. Computed in float64 as
    numpy does there; the model gets sigma * 1000 truncated to an integer, the solver the float32 sigmas.
    """
    kind = normalize_scheduler(kind)
    steps = int(steps)
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    if not (shift > 0 and math.isfinite(shift)):
        raise InputError(f"shift must be a positive number, got {shift}")
    if kind == "unipc":
        # the scheduler's training sigmas run from 1 - 1/1000 (held as float32) down to 0
        top = float(np.float32(1.0 - 1.0 / NUM_TRAIN_TIMESTEPS))
        sigmas = np.linspace(top, 0.0, steps + 1)[:-1]
    else:
        sigmas = np.linspace(1.0, 0.0, steps + 1)[:steps]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    timesteps = torch.from_numpy(sigmas * NUM_TRAIN_TIMESTEPS).to(torch.int64)
    return timesteps, torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))


class FlowSolver:
    """Walks one window's latent down a timestep schedule, one model velocity per step.

    `timesteps[i]` (float32, 0..1000) is what the model is called with at step i;
    `step(i, latent, velocity)` returns the latent at `timesteps[i + 1]`.
    A fresh solver is made per window (multistep solvers keep history).
    """

    def __init__(self, kind: str, steps: int, shift: float, schedule: str = "infinitetalk"):
        """schedule: 'infinitetalk' (the InfiniteTalk loop's float timesteps, default) or 'wan22' (the WanAnimate
        loop's: integer model timesteps, the official solver's own sigmas; see `wan22_schedule`)."""
        kind = normalize_scheduler(kind)
        self.kind = kind
        self.num_steps = int(steps)
        self._scheduler: Any = None  # a diffusers multistep scheduler (unipc, dpm++)
        if schedule == "wan22":
            self.timesteps, sigmas = wan22_schedule(kind, steps, shift)
            self.timesteps_full = sigmas * NUM_TRAIN_TIMESTEPS
            if kind == "euler":
                self._dt = [sigmas[i:i + 1] - sigmas[i + 1:i + 2] for i in range(self.num_steps)]
            else:
                self._scheduler = _diffusers_scheduler(kind, sigmas, self.timesteps, nudge_top=False)
            return
        if schedule != "infinitetalk":
            raise InputError(f"unknown schedule {schedule!r}; 'infinitetalk' or 'wan22'")
        self.timesteps_full = reference_timesteps(steps, shift)
        self.timesteps = self.timesteps_full[:-1]
        if kind == "euler":
            # Per-step dt exactly as the reference computes it (float32 difference, then / 1000).
            self._dt = [
                (self.timesteps_full[i:i + 1] - self.timesteps_full[i + 1:i + 2]) / NUM_TRAIN_TIMESTEPS
                for i in range(self.num_steps)
            ]
        else:
            self._scheduler = _diffusers_scheduler(kind, self.timesteps_full / NUM_TRAIN_TIMESTEPS)

    def step(self, i: int, latent: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        if self.kind == "euler":
            dt = self._dt[i].to(latent.device)
            # reference: noise_pred = -noise_pred; latent = latent + noise_pred * dt
            return latent + (-velocity) * dt.view((1,) * latent.ndim)
        out = self._scheduler.step(velocity, self._scheduler.timesteps[i], latent, return_dict=False)[0]
        return out.to(latent.dtype)


def normalize_scheduler(kind: str) -> str:
    name = str(kind).strip().lower().replace("_", "").replace(" ", "")
    aliases = {"euler": "euler", "unipc": "unipc", "dpm++": "dpm++", "dpmpp": "dpm++", "dpmsolver++": "dpm++"}
    if name not in aliases:
        raise InputError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULERS)}")
    return aliases[name]


def _diffusers_scheduler(kind: str, sigmas_full: torch.Tensor, timesteps=None, nudge_top: bool = True):
    """A diffusers multistep scheduler in flow-matching mode set to exactly our sigmas.

    With Wan2.2's sigmas and `nudge_top=False` its steps equal the official Flow UniPC / DPM++ schedulers' bit for
    bit (shared/fixtures animate_sampler)."""
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    sigmas = sigmas_full.double().numpy().copy()
    if nudge_top:
        # sigma = 1 exactly makes log(alpha) = -inf inside the multistep updates; diffusers' own
        # flow schedule nudges it by 1e-6 for that reason, we do the same for both solvers.
        sigmas[0] = min(sigmas[0], 1.0 - 1e-6)
    common = dict(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        solver_order=2,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=1.0,  # our sigmas are already shifted; shift 1 is the identity
        final_sigmas_type="zero",
        lower_order_final=True,
    )
    if kind == "unipc":
        sched = UniPCMultistepScheduler(**common)
    else:
        sched = DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", **common)
    steps = len(sigmas) - 1
    sched.set_timesteps(steps)
    # Replace diffusers' own flow schedule by ours (same length, same terminal 0).
    sched.sigmas = torch.from_numpy(sigmas.astype(np.float32))
    if timesteps is not None:
        sched.timesteps = timesteps.clone()
    else:
        sched.timesteps = torch.from_numpy((sigmas[:-1] * NUM_TRAIN_TIMESTEPS).astype(np.float32))
    sched.set_begin_index(0)
    return sched
