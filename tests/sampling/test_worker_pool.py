"""The sequence-parallel worker pool (2 spawned CPU workers, gloo) makes the single-process window latents: one and
two speakers, three windows with a resume in the middle, WanAnimate, FSDP-sharded fp8 weights (each rank holding and
reading about half, the fp8 scales on every rank); Cancel stops both ranks at the same step; a killed worker is a
named error, not a hang."""
from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from parallel_runs import Recorder, driving_clip, max_dev, run_animate, run_talk
from safetensors.torch import save_file

from wanvideo.errors import InputError
from wanvideo.model import build_model, load_model, tiny_config
from wanvideo.model.parallel.pool import ModelSource, SequenceParallelPool, WorkerExitedError
from wanvideo.model.quant.fp8 import quantize_fp8
from wanvideo.sampling.settings import GenerationInterrupted
from wanvideo.tiny import tiny_animate_models, tiny_models

FAST_POOL = dict(threads=1, timeout=60, start_timeout=180)


def _source(model, path) -> ModelSource:
    save_file(model.state_dict(), str(path))
    return ModelSource((str(path),), model.config, "float32")


@pytest.fixture(scope="module")
def tiny():
    return tiny_models(seed=0)


@pytest.fixture(scope="module")
def source(tiny, tmp_path_factory):
    return _source(tiny.dit, tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="module")
def pool(source):
    executor = SequenceParallelPool(source, "cpu,cpu", **FAST_POOL)
    yield executor
    executor.close()


class Stop(Exception):
    pass


def test_three_windows_with_a_resume_equal_one_process(tiny, pool, tmp_path):
    single = Recorder()
    run_talk(tiny.dit, tiny, single, tmp_path / "single", 1, frames=33)
    rec = Recorder(pool)
    steps = []

    def crash(index, _store):
        if index == 1:
            raise Stop

    with pytest.raises(Stop):
        run_talk(tiny.dit, tiny, rec, tmp_path / "pool", 1, frames=33, on_window_done=crash,
                 on_progress=lambda p: steps.append((p.window, p.step)) if p.stage == "denoise" else None)
    assert sorted(rec.latents) == [0, 1]
    assert (1, 1) in steps and (2, 2) in steps  # per-step progress came back from the workers
    run_talk(tiny.dit, tiny, rec, tmp_path / "pool", 1, frames=33)
    assert sorted(rec.latents) == [0, 1, 2]
    assert max_dev(rec.latents, single.latents) <= 1e-5
    assert float(single.latents[2].abs().max()) > 0.1
    assert pool.pool.windows == 3  # the same warm workers for every window of both runs


def test_two_speakers_one_window_equal_one_process(tiny, pool, tmp_path):
    single, rec = Recorder(), Recorder(pool)
    run_talk(tiny.dit, tiny, single, tmp_path / "single", 2)
    run_talk(tiny.dit, tiny, rec, tmp_path / "pool", 2)
    assert len(rec.latents) == 1 and max_dev(rec.latents, single.latents) <= 1e-5


def test_cancel_mid_window_stops_both_ranks_at_the_same_step(tiny, pool, tmp_path):
    asked = []

    def stop():
        return bool(asked)

    def progress(p):
        if p.stage == "denoise" and p.step == 1:
            asked.append(time.monotonic())

    with pytest.raises(GenerationInterrupted, match="stopped"):
        run_talk(tiny.dit, tiny, Recorder(pool), tmp_path, 1, steps=4, should_stop=stop, on_progress=progress)
    assert asked
    assert set(pool.pool.last_stop) == {0, 1}
    assert len(set(pool.pool.last_stop.values())) == 1  # both ranks left at the same step
    assert 1 <= pool.pool.last_stop[0] <= 2  # within a step of the request
    assert pool.pool.alive  # still warm: the next run needs no new workers
    run_talk(tiny.dit, tiny, Recorder(pool), tmp_path / "after", 1, steps=1)


def test_pool_refuses_what_it_cannot_run_before_sending_work(tiny, pool, tmp_path):
    windows = pool.pool.windows
    with pytest.raises(InputError, match="cannot be combined"):
        fsdp = SequenceParallelPool(pool.spec.source, "cpu,cpu", fsdp=True, **FAST_POOL)
        run_talk(tiny.dit, tiny, fsdp, tmp_path / "fsdp", 1, cache_method="teacache")
    with pytest.raises(InputError, match="another model"):
        run_talk(build_model(tiny_config(num_layers=3)), tiny, pool, tmp_path / "other", 1)
    with pytest.raises(InputError, match="at least two devices"):
        SequenceParallelPool(pool.spec.source, "cpu")
    assert pool.pool.windows == windows


def test_animate_model_equals_one_process(tmp_path):
    animate = tiny_animate_models(seed=3)
    executor = SequenceParallelPool(_source(animate.dit, tmp_path / "animate.safetensors"), "cpu,cpu", **FAST_POOL)
    clip = driving_clip(25)
    single, rec = Recorder(), Recorder(executor)
    try:
        run_animate(animate.dit, animate, single, tmp_path / "single", clip)
        run_animate(animate.dit, animate, rec, tmp_path / "pool", clip)
    finally:
        executor.close()
    assert len(rec.latents) >= 2 and max_dev(rec.latents, single.latents) <= 1e-5


@pytest.fixture(scope="module")
def fp8_model(tiny, tmp_path_factory):
    """The tiny DiT with its blocks' linear weights stored as scaled fp8 (a file like the fp8 repacks), loaded
    keeping them fp8, and the file."""
    state = {}
    for key, value in tiny.dit.state_dict().items():
        if key.startswith("blocks.") and key.endswith(".weight") and value.dim() == 2:
            state[key], state[key[:-len("weight")] + "weight_scale"] = quantize_fp8(value)
        else:
            state[key] = value
    path = tmp_path_factory.mktemp("fp8") / "tiny_fp8.safetensors"
    save_file(state, str(path))
    return load_model(str(path), torch.float32, "cpu", config=tiny.dit.config, keep_fp8=True), path


@pytest.fixture(scope="module")
def fsdp_pool(fp8_model):
    model, path = fp8_model
    executor = SequenceParallelPool(ModelSource.of_loaded(model, [str(path)]), "cpu,cpu", fsdp=True, **FAST_POOL)
    yield executor
    executor.close()


def test_fsdp_ranks_hold_and_read_half_the_fp8_weights_and_equal_one_process(tiny, fp8_model, fsdp_pool, tmp_path):
    model, path = fp8_model
    single, rec = Recorder(), Recorder(fsdp_pool)
    run_talk(model, tiny, single, tmp_path / "single", 2)
    run_talk(model, tiny, rec, tmp_path / "pool", 2)
    infos = [w.info for w in fsdp_pool.pool.workers]
    assert max_dev(rec.latents, single.latents) <= 1e-5
    file_bytes = os.path.getsize(path)
    for info in infos:
        assert 0.4 <= info["param_bytes"] / info["total_param_bytes"] <= 0.55, info
        assert info["bytes_read"] <= 0.55 * file_bytes, info  # never the whole file
        assert info["fp8_scales"] == 2 * 15  # every fp8 layer's scale on every rank (replicated, not sharded)
    assert sum(i["param_bytes"] for i in infos) == infos[0]["total_param_bytes"]  # together: every weight once


def test_killed_worker_is_a_named_error_within_the_timeout(tiny, fsdp_pool, tmp_path):
    killed = []

    def progress(p):
        if p.stage == "denoise" and p.step == 1 and not killed:
            os.kill(fsdp_pool.pool.workers[1].process.pid, signal.SIGKILL)
            killed.append(time.monotonic())

    with pytest.raises(WorkerExitedError, match=r"CPU 1 worker exited: rank 1: window 1 step 1/4") as err:
        run_talk(tiny.dit, tiny, Recorder(fsdp_pool), tmp_path, 1, steps=4, on_progress=progress)
    assert time.monotonic() - killed[0] < 10
    assert "run again to resume" in str(err.value)
    assert not fsdp_pool.pool.workers  # the pool was ended, nothing left running
