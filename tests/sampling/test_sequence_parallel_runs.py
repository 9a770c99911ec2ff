"""Generations split across torchrun ranks (gloo on the CPU) make the single-process frames, and a run killed
under torchrun resumes with a different number of ranks."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import sp_job
from testlib import REPO_ROOT
from testlib.ranks import free_port

from wanvideo.video.frame_store import FrameStore


def _torchrun(ranks: int, root: Path, kill_after: int, mode: str = "ulysses"):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(Path(sp_job.__file__).parent)]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), sp_job.__file__, str(root), str(kill_after), mode]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_killed_two_rank_run_resumes_on_four_ranks_with_the_single_process_frames(tmp_path):
    root = tmp_path / "frames"
    killed = _torchrun(2, root, kill_after=0)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    (store_dir,) = root.iterdir()
    assert sorted(p.name for p in store_dir.glob("window_*")) == ["window_00000.mkv"]

    resumed = _torchrun(4, root, kill_after=-1)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming at window 2/2" in resumed.stdout + resumed.stderr
    assert f"frames={sp_job.FRAMES} complete=True" in resumed.stdout
    assert [p.name for p in root.iterdir()] == [store_dir.name]  # the same run: its key ignores the rank count

    split = FrameStore(str(store_dir)).read_frames()
    single = sp_job.run(sp_job.dit(), tmp_path / "single").read_frames()
    assert split.shape == single.shape == (sp_job.FRAMES, 32, 48, 3)
    # window 1 by 2 ranks, window 2 (from window 1's motion frames) by 4: equal within 8-bit rounding
    assert np.abs(split.astype(int) - single.astype(int)).max() <= 1
    assert single.std() > 1  # real pictures, not a constant
