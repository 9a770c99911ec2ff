"""Two processes running the same command one after the other (the `--wait-for-lock` recovery), many times over:
the waiting run never sees the first run's work folder half removed.

Each process does what a command-line run does with its work folder: hold it, open the run's frame store (its own
lock, released when sampling ends, as the sampler does), use the windows, then remove them as the MP4 writer's
cleanup does. Without the hold on the whole work folder the second process opened the store between the first's
release and its removal, and its files vanished under it ("segment missing").
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

from testlib import REPO_ROOT

RUNS = 40

WORKER = textwrap.dedent("""
    import os, random, shutil, sys, time
    sys.path.insert(0, {repo!r})
    from wanvideo.video.frame_store import FrameStore
    from wanvideo.video.work_folder import holding_work_folder

    work, runs, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    key = "ab" * 32
    for run in range(runs):
        with holding_work_folder(work, wait=60):
            store = FrameStore.open_for_run(work, key, width=16, height=16, fps=25.0, total_frames=9,
                                            num_windows=1, lock_wait=60)
            mine = os.path.join(store.path, f"segment-{{me}}-{{run}}")
            with open(mine, "w") as handle:
                handle.write("frames")
            store.release()  # sampling over: the store's own lock goes, as at the end of the sampler
            time.sleep(random.uniform(0, 0.004))  # the MP4 is written from the store
            if not os.path.exists(mine) or not os.path.exists(os.path.join(store.path, "manifest.json")):
                print(f"run {{run}} of {{me}}: segment missing", flush=True)
                sys.exit(3)
            shutil.rmtree(store.path, ignore_errors=True)  # the windows are no longer needed
    print("ok", flush=True)
""")


def test_a_waiting_run_never_sees_a_half_removed_work_folder(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(repo=str(REPO_ROOT)))
    work = tmp_path / "out.mp4.parts"
    procs = [subprocess.Popen([sys.executable, str(script), str(work), str(RUNS), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0 and out.strip().endswith("ok"), (out, err[-2000:])
    assert not work.exists()  # the last run removed the folder it held, lock file and all
