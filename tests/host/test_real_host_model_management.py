"""Our model in the REAL model management of each supported ComfyUI (no double): the loader's patcher is the
host's own ModelPatcher subclass; load_models_gpu loads it (in 0.33 the hand-written patcher crashed there on
`is_dynamic`), loads it partially under a VRAM budget (blocks streamed, same output), frees room by streaming
more or evicting it, and releases it on "Free model and node cache" and after sampling.
scripts/comfyui/host_model_check.py prints each step; see its docstring for the one thing it pretends (the free
memory of a graphics card this machine does not have)."""
import pytest
from testlib import REPO_ROOT
from testlib.real_hosts import HOST_VERSIONS, real_host, run_in_host

CHECK = REPO_ROOT / "scripts" / "comfyui" / "host_model_check.py"


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_model_managed_by_the_real_host(version):
    host = real_host(version)
    out = run_in_host(host, [str(CHECK), host["root"]], timeout=600)
    steps = [line for line in out.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert out.returncode == 0, "\n".join(steps) + "\n" + out.stderr[-3000:]
    assert not [s for s in steps if s.startswith("FAIL")]
    for step in ("1.", "2. [budget] partially loaded", "3. [budget] free_memory streamed", "4.", "5."):
        assert any(s[6:].startswith(step) for s in steps), f"step {step} did not run:\n" + "\n".join(steps)


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_longcat_model_managed_by_the_real_host(version):
    """The LongCat loader's patcher the same way (scripts/comfyui/host_longcat_check.py)."""
    host = real_host(version)
    out = run_in_host(host, [str(CHECK.with_name("host_longcat_check.py")), host["root"]], timeout=600)
    steps = [line for line in out.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert out.returncode == 0, "\n".join(steps) + "\n" + out.stderr[-3000:]
    assert not [s for s in steps if s.startswith("FAIL")]
    for step in ("1. the LongCat loader's", "2. [budget] partially loaded", "4. unload_all_models", "4. [budget]"):
        assert any(s[6:].startswith(step) for s in steps), f"step {step} did not run:\n" + "\n".join(steps)
