"""The Ray backend of the worker pool: two Ray actors (a real local Ray cluster of 2 CPUs, not local mode), gloo,
make the single-process window latents, as the local worker processes do (test_worker_pool.py)."""
from __future__ import annotations

import time

import pytest
from parallel_runs import Recorder, max_dev, run_talk
from safetensors.torch import save_file

from wanvideo.model.parallel.pool import ModelSource, SequenceParallelPool, WorkerExitedError
from wanvideo.tiny import tiny_models

ray = pytest.importorskip("ray", reason="the Ray backend is optional: pip install ray (requirements-test.txt pins it)")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_actors_equal_one_process_and_a_lost_actor_is_named(ray_cluster, tmp_path):
    tiny = tiny_models(seed=0)
    save_file(tiny.dit.state_dict(), str(tmp_path / "tiny.safetensors"))
    source = ModelSource((str(tmp_path / "tiny.safetensors"),), tiny.dit.config, "float32")
    executor = SequenceParallelPool(source, "cpu,cpu", backend="ray", threads=1, timeout=60, start_timeout=300)
    single, rec = Recorder(), Recorder(executor)
    try:
        run_talk(tiny.dit, tiny, single, tmp_path / "single", 2)
        started = time.monotonic()
        run_talk(tiny.dit, tiny, rec, tmp_path / "ray", 2)
        print(f"ray pool: first window (actors started) in {time.monotonic() - started:.1f} s")
        assert len(rec.latents) == 1 and max_dev(rec.latents, single.latents) <= 1e-5
        pool = executor.pool
        assert all(type(w.process).__name__ == "_ActorProcess" for w in pool.workers)

        killed = []

        def progress(p):
            if p.stage == "denoise" and p.step == 1 and not killed:
                ray.kill(pool.workers[1].process.actor)
                killed.append(time.monotonic())

        with pytest.raises(WorkerExitedError, match=r"CPU 1 worker exited: rank 1: window 1 step 1/3"):
            run_talk(tiny.dit, tiny, Recorder(executor), tmp_path / "killed", 1, steps=3, on_progress=progress)
        assert time.monotonic() - killed[0] < 15
    finally:
        executor.close()
