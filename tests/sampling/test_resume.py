"""A run killed mid-way (SIGKILL, like an out-of-memory kill) resumes on rerun without redoing finished windows."""
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import resume_job
import torch
from testlib import REPO_ROOT

from wanvideo.sampling import GenerationInterrupted, generate


def _count_calls(model):
    """Counts guidance passes run (rows of the model's batches: the passes of a step may share one call)."""
    counter = {"n": 0}
    handle = model.register_forward_pre_hook(lambda m, args: counter.__setitem__("n", counter["n"] + args[0].shape[0]))
    return counter, handle


def test_killed_run_resumes_at_the_first_unfinished_window(tmp_path, caplog):
    root = tmp_path / "frames"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(Path(resume_job.__file__).parent)]))
    proc = subprocess.run([sys.executable, resume_job.__file__, str(root), "1", str(torch.get_num_threads())],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (store_dir,) = root.iterdir()
    assert sorted(p.name for p in store_dir.iterdir() if p.name != ".lock") == [
        "manifest.json", "state_00000.safetensors", "state_00001.safetensors", "window_00000.mkv", "window_00001.mkv"]

    models, embeddings, image = resume_job.inputs()
    counter, handle = _count_calls(models.dit)
    with caplog.at_level(logging.INFO, logger="wanvideo"):
        store = resume_job.run(root, models, embeddings, image)
    assert "resuming at window 3/4" in caplog.text
    assert counter["n"] == 2 * resume_job.SETTINGS.steps * resume_job.PASSES  # windows 3 and 4 only
    assert store.complete and len(store) == resume_job.FRAMES == embeddings.num_frames

    # the resumed video is the video an uninterrupted run makes
    counter["n"] = 0
    straight = resume_job.run(tmp_path / "straight", models, embeddings, image)
    assert counter["n"] == 4 * resume_job.SETTINGS.steps * resume_job.PASSES
    assert np.array_equal(store.read_frames(), straight.read_frames())

    # a third run with the same inputs finds everything done
    counter["n"] = 0
    again = resume_job.run(root, models, embeddings, image)
    handle.remove()
    assert counter["n"] == 0 and again.path == store.path


def test_interrupt_stops_at_the_next_step_and_keeps_finished_windows(tmp_path):
    models, embeddings, image = resume_job.inputs()
    counter, handle = _count_calls(models.dit)
    calls_per_window = resume_job.SETTINGS.steps * resume_job.PASSES
    stop = lambda: counter["n"] >= calls_per_window + resume_job.PASSES  # noqa: E731 - one step into window 2
    with pytest.raises(GenerationInterrupted, match="window 2/4.*1 finished windows") as info:
        generate(models.dit, models.vae, image, models.clip_fea, audio=embeddings, context=models.context,
                 context_null=models.context_null, settings=resume_job.SETTINGS, store_root=str(tmp_path),
                 should_stop=stop)
    assert counter["n"] == calls_per_window + resume_job.PASSES  # no model call after the request
    assert info.value.store.finished_windows == 1 and len(info.value.store) == 17
    counter["n"] = 0
    store = resume_job.run(tmp_path, models, embeddings, image)
    handle.remove()
    assert counter["n"] == 3 * calls_per_window and len(store) == resume_job.FRAMES
