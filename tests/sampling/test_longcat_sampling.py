"""LongCat-Video-Avatar sampling: schedules, full denoising loops and the long-video bookkeeping, against the
official code's numbers (fixtures longcat_sampler, longcat_loop)."""
import json

import pytest
import torch
from safetensors import safe_open

from wanvideo.errors import InputError
from wanvideo.model.longcat_loading import load_longcat_model
from wanvideo.sampling.longcat_plan import longcat_plan, longcat_timesteps
from wanvideo.sampling.longcat_sample import longcat_sample


def _read(fixtures_dir, name):
    with safe_open(fixtures_dir / f"longcat_{name}.safetensors", "pt") as f:
        return json.loads(f.metadata()["call"]), {k: f.get_tensor(k) for k in f.keys()}


def test_schedules_match_official(fixtures_dir):
    call, tensors = _read(fixtures_dir, "sampler")
    checked = 0
    for sched in call["schedules"]:
        for tail in (False, True):
            if tail and sched["use_distill"]:
                continue
            key = f"output.schedule.{sched['key']}" + (".enhance_hf" if tail else "")
            timesteps, sigmas = longcat_timesteps(sched["num_inference_steps"], sched["use_distill"], sched["shift"],
                                                  enhance_hf=tail)
            ref_t, ref_s = tensors[f"{key}.timesteps"], tensors[f"{key}.sigmas"]
            assert timesteps.shape == ref_t.shape and sigmas.shape == ref_s.shape, key
            assert (sigmas - ref_s).abs().max() < 1e-5, key
            assert (timesteps / 1000 - ref_t / 1000).abs().max() < 1e-5, key
            checked += 1
    assert checked == 20  # 12 schedules + the enhance_hf tails of the 8 base ones


@pytest.mark.parametrize("loop", ["ai2v_distill", "ai2v_cfg", "avc_distill"])
def test_full_loops_match_official(fixtures_dir, loop):
    call, tensors = _read(fixtures_dir, "sampler")
    spec = next(item for item in call["loops"] if item["name"] == loop)
    model = load_longcat_model(fixtures_dir / "longcat_sampler.safetensors", dtype=torch.float32)

    def inp(key):
        return tensors.get(f"input.{loop}.{key}")

    mode = "avc" if loop.startswith("avc") else "ai2v"
    steps = []
    out = longcat_sample(
        model, mode, inp("noise"), inp("cond_latents") if mode == "avc" else inp("cond_latent"), inp("prompt_embeds"),
        inp("prompt_attention_mask"), inp("negative_prompt_embeds"), inp("negative_prompt_attention_mask"),
        inp("audio_emb"), spec["num_inference_steps"], spec["use_distill"], spec["text_guidance_scale"],
        spec["audio_guidance_scale"], spec["shift"], ref_latent=inp("ref_latent"),
        ref_img_index=spec.get("ref_img_index"), mask_frame_range=spec.get("mask_frame_range"),
        num_cond_frames=spec.get("num_cond_frames"), callback=lambda i, n: steps.append((i, n)))
    ref = tensors[f"output.{loop}.latents"]
    assert out.shape == ref.shape and out.dtype == torch.float32
    err = (out - ref).abs().max().item()
    assert err < 5e-4, f"{loop}: max error {err}"
    assert steps[-1] == (spec["num_inference_steps"], spec["num_inference_steps"])


def test_continuation_tables_exact(fixtures_dir):
    call, tensors = _read(fixtures_dir, "loop")
    for i, case in enumerate(call["cases"]):
        plan = longcat_plan(case["n_samples"], case["num_segments"], sample_rate=16000, fps=case["fps"],
                            num_frames=case["num_frames"], num_cond_frames=case["num_cond_frames"],
                            audio_stride=case["audio_stride"], ref_img_index=case["ref_img_index"],
                            mask_frame_range=case["mask_frame_range"])
        for key, value in case.items():
            if key in plan:
                assert plan[key] == value, (i, key, plan[key], value)
        for key in tensors:
            if key.startswith(f"output.case{i}."):
                name = key.rsplit(".", 1)[1]
                assert torch.equal(torch.as_tensor(plan[name]), tensors[key]), (i, name)


def test_bad_sampling_inputs_named():
    with pytest.raises(InputError, match="8 steps"):
        longcat_timesteps(6, use_distill=True)
    with pytest.raises(InputError, match="enhance_hf"):
        longcat_timesteps(8, use_distill=True, enhance_hf=True)
    with pytest.raises(InputError, match="num_segments"):
        longcat_plan(16000, 0)
