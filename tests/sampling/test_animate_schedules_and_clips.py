"""WanAnimate solvers and clip bookkeeping against the official Wan2.2 numbers (shared/fixtures)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from wanvideo.errors import InputError
from wanvideo.sampling.animate_clips import padded_source_index, plan_clips, valid_length
from wanvideo.sampling.schedules import FlowSolver, wan22_schedule


@pytest.fixture
def clips_json(fixtures_dir):
    return json.loads((fixtures_dir / "animate_clips.json").read_text())


def test_every_official_clip_plan(clips_json):
    plans = clips_json["clip_plans"]["plans"]
    assert len(plans) >= 8
    for name, plan in plans.items():
        clips, target = plan_clips(plan["real_len"], plan["clip_len"], plan["refert_num"])
        assert target == plan["target_len"], name
        padded = padded_source_index(plan["real_len"], target)
        assert padded == plan["padded_source_index"], name
        assert len(clips) == len(plan["clips"]), name
        out_pos = 0
        for ours, theirs in zip(clips, plan["clips"], strict=True):
            assert (ours.start, ours.end, ours.drop) == (theirs["start"], theirs["end"], theirs["mask_reft_len"]), name
            assert padded[ours.start:ours.end] == theirs["source_frames"], name
            refert = list(range(ours.start, ours.start + ours.drop))
            assert refert == theirs["refert_frames_from_previous_output"], name
            assert [ours.drop, ours.length] == theirs["frames_kept_from_clip"], name
            assert [out_pos, out_pos + ours.length - ours.drop] == theirs["output_frames"], name
            out_pos += ours.length - ours.drop
        # after the cut back to the driving length exactly real_len frames remain, each clip's kept part in order
        assert sum(c.keep for c in clips) == plan["real_len"], name
        assert all(c.first_kept == sum(p.keep for p in clips[:c.index]) for c in clips), name


def test_valid_length_table(clips_json):
    for key, table in clips_json["get_valid_len_clip_len_77"].items():
        refert = int(key.split("=")[1])
        for real_len, target in table.items():
            assert valid_length(int(real_len), 77, refert) == target, (key, real_len)


def test_bad_clip_settings_are_explained():
    with pytest.raises(InputError, match="4n\\+1"):
        plan_clips(100, 76, 1)
    with pytest.raises(InputError, match="1 or 5"):
        plan_clips(100, 77, 3)
    with pytest.raises(InputError, match="more than the 5 refert"):
        plan_clips(5, 77, 5)


def test_official_timestep_schedules(clips_json):
    schedules = clips_json["timestep_schedules"]["schedules"]
    for name, expected in schedules.items():
        kind, steps, shift = name.split(",")
        timesteps, sigmas = wan22_schedule(kind, int(steps.split("=")[1]), float(shift.split("=")[1]))
        assert timesteps.dtype == torch.int64 and timesteps.tolist() == expected["timesteps_int64"], name
        assert [f"{v & 0xFFFFFFFF:08x}" for v in sigmas.view(torch.int32).tolist()] == expected["sigmas_float32_hex"], name


@pytest.mark.parametrize("kind,key", [("unipc", "unipc"), ("dpm++", "dpmpp")])
def test_official_solver_steps(fixtures_dir, kind, key):
    tensors = load_file(str(fixtures_dir / "animate_sampler.safetensors"))
    outputs = tensors["input.model_outputs"]
    solver = FlowSolver(kind, outputs.shape[0], 5.0, schedule="wan22")
    assert solver.timesteps.tolist() == tensors[f"input.timesteps.{key}"].tolist()
    latent = tensors["input.latent"][None]
    for i in range(outputs.shape[0]):
        latent = solver.step(i, latent, outputs[i][None])
        torch.testing.assert_close(latent[0], tensors[f"output.latents.{key}"][i], atol=1e-5, rtol=1e-5)


def test_euler_walks_the_same_sigmas_to_zero():
    solver = FlowSolver("euler", 4, 5.0, schedule="wan22")
    _, sigmas = wan22_schedule("euler", 4, 5.0)
    x0, noise = torch.zeros(1, 2, 3), torch.randn(1, 2, 3)
    latent = noise.clone()
    for i in range(4):  # a perfect velocity (noise - x0) lands exactly on x0
        latent = solver.step(i, latent, noise - x0)
    torch.testing.assert_close(latent, x0, atol=1e-6, rtol=0)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
