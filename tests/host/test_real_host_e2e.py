"""The pack in each supported real ComfyUI, headless, through its own server and executor (scripts/comfyui/comfyui_e2e.py):
the nodes register with no import error, every API example passes the host's prompt validation, the InfiniteTalk
example and the WanAnimate example run to an MP4 with sound (tiny models; the documented stand-ins), Cancel then
resume works, and ComfyUI's log holds no traceback or error from the pack.

Minutes per host on two cores. WANVIDEO_HOST_E2E=0 skips it (the model-management check beside it stays);
WANVIDEO_HOST_E2E=0.33.0 (comma-separated versions) runs it in those hosts only."""
import os
import time

import pytest
from testlib import REPO_ROOT
from testlib.real_hosts import HOST_VERSIONS, real_host, run_in_host

E2E = REPO_ROOT / "scripts" / "comfyui" / "comfyui_e2e.py"


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_examples_run_in_the_real_host(version, tmp_path):
    wanted = os.environ.get("WANVIDEO_HOST_E2E", "")
    if wanted == "0":
        pytest.skip("WANVIDEO_HOST_E2E=0: the real-host end-to-end run is switched off")
    if wanted and version not in wanted.split(","):
        pytest.skip(f"WANVIDEO_HOST_E2E={wanted}: not run in ComfyUI {version}")
    host = real_host(version)
    t0 = time.time()
    out = run_in_host(host, [str(E2E), host["root"], "--python", host["python"], "--clip-vision", "stand-in",
                             "--no-browser", "--workdir", str(tmp_path / "work")], timeout=2400)
    print(f"ComfyUI {version}: end-to-end run {time.time() - t0:.0f} s")  # noqa: T201 - the CI log's timing
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode == 0, tail
    assert "OK: the MP4 with sound came out of a real ComfyUI" in out.stdout, tail
    for step in ("VALID ", "Cancel: queueing the same prompt again", "WanAnimate"):
        assert step in out.stdout, f"{step!r} missing from the run:\n{tail}"
