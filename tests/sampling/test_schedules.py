"""The reference's timestep schedule, bit for bit, and the multistep solvers on the same schedule."""
import json
import struct

import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.sampling import FlowSolver, reference_timesteps


def _hex(values):
    return [struct.pack(">f", float(v)).hex() for v in values]


def _schedules(fixtures_dir):
    data = json.loads((fixtures_dir / "schedules_and_windows.json").read_text())
    return data["timestep_schedules"]["schedules"]


@pytest.mark.parametrize("steps", [4, 8, 40])
@pytest.mark.parametrize("shift", [7, 11])
def test_euler_schedule_equals_the_reference_bit_for_bit(fixtures_dir, steps, shift):
    ref = _schedules(fixtures_dir)[f"steps={steps},shift={shift}"]
    timesteps = reference_timesteps(steps, shift)
    assert timesteps.dtype == torch.float32
    assert _hex(timesteps) == ref["timesteps_float32_hex"]
    solver = FlowSolver("euler", steps, float(shift))
    assert _hex(solver.timesteps) == ref["timesteps_float32_hex"][:-1]  # the model is called at these
    assert _hex(d for d in solver._dt) == ref["dt_float32_hex"]


def test_euler_step_moves_the_latent_by_minus_velocity_times_dt(fixtures_dir):
    ref = _schedules(fixtures_dir)["steps=4,shift=7"]
    solver = FlowSolver("euler", 4, 7.0)
    latent, velocity = torch.randn(16, 2, 3, 4), torch.randn(16, 2, 3, 4)
    dt = torch.tensor(ref["dt"][1], dtype=torch.float32)
    assert torch.equal(solver.step(1, latent, velocity), latent + (-velocity) * dt)


@pytest.mark.parametrize("kind", ["euler", "unipc", "dpm++"])
def test_every_solver_walks_the_shared_schedule_to_the_clean_sample(kind):
    # For a fixed clean sample x0 the exact flow velocity is (x - x0) / sigma; any consistent solver ends at x0.
    torch.manual_seed(0)
    x0, noise = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    solver = FlowSolver(kind, 8, 7.0)
    assert torch.equal(solver.timesteps, reference_timesteps(8, 7.0)[:-1])
    x = noise.clone()
    for i in range(solver.num_steps):
        sigma = solver.timesteps[i] / 1000.0
        x = solver.step(i, x, (x - x0) / sigma)
    assert torch.allclose(x, x0, atol=1e-4)


def test_multistep_solvers_use_the_reference_sigmas():
    ts = reference_timesteps(8, 11.0)
    for kind in ("unipc", "dpm++"):
        sched = FlowSolver(kind, 8, 11.0)._scheduler
        expected = (ts / 1000.0).clone()
        expected[0] = 1.0 - 1e-6
        assert torch.allclose(sched.sigmas.float(), expected, atol=1e-7)


def test_bad_schedule_inputs_are_explained():
    with pytest.raises(InputError, match="steps"):
        reference_timesteps(0, 7.0)
    with pytest.raises(InputError, match="shift"):
        reference_timesteps(4, 0.0)
    with pytest.raises(InputError, match="scheduler"):
        FlowSolver("ddim", 4, 7.0)
