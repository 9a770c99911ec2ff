"""Every API example passes the prompt validation of each supported real ComfyUI (scripts/comfyui/comfyui_validate_examples.py:
ComfyUI's own loader and validator, the pack as a custom node, empty placeholder files under the examples' model
names): node classes, inputs, links, ranges, file lists. Seconds per host; the end-to-end run beside it repeats this
check before generating, but CI runs that heavy run in the newest host only (see docs/developing.md)."""
import pytest
from testlib import REPO_ROOT
from testlib.real_hosts import HOST_VERSIONS, real_host, run_in_host

VALIDATE = REPO_ROOT / "scripts" / "comfyui" / "comfyui_validate_examples.py"
API_EXAMPLES = sorted((REPO_ROOT / "examples" / "api").glob("*_api.json"))


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_api_examples_pass_the_real_hosts_validation(version):
    host = real_host(version)
    out = run_in_host(host, [str(VALIDATE), host["root"]], timeout=600)
    report = [line for line in out.stdout.splitlines() if line.startswith(("VALID", "INVALID", "  "))]
    assert out.returncode == 0, "\n".join(report) + "\n" + out.stderr[-3000:]
    assert sorted(line.split()[1].rstrip(":") for line in report if line.startswith("VALID ")) == [
        p.name for p in API_EXAMPLES]
