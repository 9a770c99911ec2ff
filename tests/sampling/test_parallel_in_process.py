"""Guidance split and layer split (in the calling process, several devices; on this CPU-only machine the devices
are all the CPU) make the single-process window latents: one and two speakers, three windows with a resume in the
middle, and WanAnimate."""
from __future__ import annotations

import pytest
import torch
from parallel_runs import Recorder, driving_clip, max_dev, run_animate, run_talk

from wanvideo.errors import InputError
from wanvideo.model import build_model, tiny_config
from wanvideo.model.parallel.guidance_split import GuidanceSplit, split_passes
from wanvideo.model.parallel.layer_split import LayerSplit, plan_layers
from wanvideo.tiny import tiny_animate_models, tiny_models

GiB = 1 << 30


@pytest.fixture(scope="module")
def tiny():
    return tiny_models(seed=0)


@pytest.fixture(scope="module")
def single(tiny, tmp_path_factory):
    """Single-process latents: {speakers: {window: latent}} of a 3-window run (guidance batched on one device)."""
    out = {}
    for speakers in (1, 2):
        rec = Recorder()
        run_talk(tiny.dit, tiny, rec, tmp_path_factory.mktemp(f"single{speakers}"), speakers, frames=33,
                 guidance_batching="batched")
        assert len(rec.latents) == 3
        out[speakers] = rec.latents
    return out


class Stop(Exception):
    pass


def _interrupted_then_resumed(model, tiny, executor, root, speakers):
    """Window 1 and 2, a crash, then a rerun that resumes at window 3: every latent this executor made."""
    rec = Recorder(executor)

    def crash(index, _store):
        if index == 1:
            raise Stop

    with pytest.raises(Stop):
        run_talk(model, tiny, rec, root, speakers, frames=33, on_window_done=crash)
    assert sorted(rec.latents) == [0, 1]
    run_talk(model, tiny, rec, root, speakers, frames=33)
    return rec.latents


@pytest.mark.parametrize("speakers", [1, 2])
def test_guidance_split_equals_batched_guidance_on_one_device(tiny, single, tmp_path, speakers):
    split = GuidanceSplit("cpu,cpu")
    latents = _interrupted_then_resumed(tiny.dit, tiny, split, tmp_path, speakers)
    assert max_dev(latents, single[speakers]) <= 1e-5
    assert float(single[speakers][2].abs().max()) > 0.1
    assert len(split._replicas[tiny.dit][1]) == 1  # one copy for the second device, kept across windows and runs


def test_guidance_split_puts_each_pass_on_its_own_device():
    assert split_passes(["cond", "drop_text", "drop_audio"], 2) == [["cond", "drop_audio"], ["drop_text"]]
    assert split_passes(["cond", "drop_text", "drop_audio"], 3) == [["cond"], ["drop_text"], ["drop_audio"]]


@pytest.mark.parametrize("speakers", [1, 2])
def test_layer_split_equals_one_device(tiny, single, tmp_path, speakers):
    model = tiny_models(seed=0).dit  # its own copy: hooks are placed on it
    split = LayerSplit("cpu,cpu", free_memory=[3 * GiB, 3 * GiB], reserve_bytes=0)
    latents = _interrupted_then_resumed(model, tiny, split, tmp_path, speakers)
    assert split.plan == [0, 1]  # two blocks, equal free memory: one each
    assert max_dev(latents, single[speakers]) <= 1e-5
    # the hidden states cross once per boundary (into block 1, back for the head) per model call
    assert split.transfers > 0 and split.transfers % 2 == 0


def test_layer_plan_follows_free_memory_and_refuses_what_does_not_fit():
    assert plan_layers([1] * 8, [30, 10]) == [0] * 6 + [1] * 2
    assert plan_layers([1] * 8, [10, 10]) == [0] * 4 + [1] * 4
    assert plan_layers([1] * 6, [2, 2, 2]) == [0, 0, 1, 1, 2, 2]
    assert plan_layers([2, 2, 2, 2], [8, 4]) == [0, 0, 0, 1]
    assert plan_layers([2, 2, 2, 2], [8, 4], first_used=4) == [0, 0, 1, 1]  # the rest of the model is on the first
    with pytest.raises(InputError, match="blocks need .* block swap"):
        plan_layers([GiB] * 10, [4 * GiB, 4 * GiB])


def test_layer_split_with_block_swap_keeps_the_swapped_blocks_on_the_main_device(tiny, tmp_path):
    def four_blocks():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_model(tiny_config(num_layers=4))

    one = Recorder()
    run_talk(four_blocks(), tiny, one, tmp_path / "one", 1)
    model = four_blocks()
    model.enable_block_swap(1)
    # the first device has no room beyond what the model holds there now: the resident blocks go to the second
    split = LayerSplit("cpu,cpu", free_memory=[0, GiB], reserve_bytes=0)
    rec = Recorder(split)
    run_talk(model, tiny, rec, tmp_path / "split", 1)
    assert split.plan[0] == 0 and split.plan[-1] == 1 and model.block_swap.loads > 0
    assert max_dev(rec.latents, one.latents) <= 1e-5


def test_animate_model_in_both_modes_equals_one_device(tmp_path):
    animate = tiny_animate_models(seed=3)
    clip = driving_clip(25)
    one = Recorder()
    run_animate(animate.dit, animate, one, tmp_path / "one", clip, guidance_batching="batched")
    assert len(one.latents) >= 2
    for name, executor in (("guidance", GuidanceSplit(["cpu", "cpu"])),
                           ("layers", LayerSplit("cpu,cpu", free_memory=[GiB, GiB], reserve_bytes=0))):
        model = tiny_animate_models(seed=3).dit
        rec = Recorder(executor)
        run_animate(model, animate, rec, tmp_path / name, clip)
        assert max_dev(rec.latents, one.latents) <= 1e-5, name
    assert executor.plan.count(1) > 0  # some blocks (and their face blocks) ran on the second device


def test_modes_refuse_what_they_cannot_run(tiny):
    with pytest.raises(InputError, match="at least two devices"):
        GuidanceSplit("cpu")
    model = tiny_models(seed=0).dit
    model.enable_block_swap(1)
    with pytest.raises(InputError, match="turn block swap off"):
        GuidanceSplit("cpu,cpu").replicas(model)
    with pytest.raises(InputError, match="list the model's device first"):
        LayerSplit([torch.device("meta"), "cpu"]).place(tiny.dit)
