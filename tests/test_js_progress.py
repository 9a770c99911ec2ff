"""The sampler's progress text is parsed into the badge the front-end extension draws.

Runs the extension's pure parsing module with Node.js (skipped where Node is not installed: the
browser code itself cannot run without ComfyUI's front end).
"""
import json
import shutil
import subprocess

import pytest
from testlib import REPO_ROOT

JS = REPO_ROOT / "js"


def _run_node(script: str):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not installed")
    result = subprocess.run([node, "--experimental-default-type=module", "--input-type=module", "-e", script],
                            capture_output=True, text=True, cwd=JS, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_progress_text_parsing():
    module = (JS / "infinitetalk_progress_text.js").as_uri()
    cases = ["window 2/5 · step 3/8", "Window 1/1", "window 5/5 step 8/8", "encoding frames", "window 0/3",
             "window 4/3", "resuming at window 3/4 (2 finished)", "clip 2/3"]
    out = _run_node(
        f"import {{ parseProgressText }} from {json.dumps(module)};"
        f"console.log(JSON.stringify({json.dumps(cases)}.map(parseProgressText)));"
    )
    first, single, last, other, zero, beyond, resume, clip = out
    assert first["badge"] == "2/5 · 3/8"
    assert first["fraction"] == pytest.approx((1 + 3 / 8) / 5)
    assert single == {"window": 1, "windows": 1, "step": None, "steps": None, "fraction": 0, "badge": "1/1"}
    assert last["fraction"] == 1
    assert other is None and zero is None and beyond is None
    assert resume["badge"] == "3/4"
    assert clip["badge"] == "2/3"  # the Animate sampler's "clip k/n"


def test_extension_imports_only_what_the_front_end_serves():
    # ComfyUI serves the pack's js/ under /extensions/<pack>/ and its own modules under /scripts/.
    source = (JS / "infinitetalk_progress.js").read_text()
    imports = [line.split(" from ")[1].strip(' ";') for line in source.splitlines() if line.startswith("import ")]
    assert imports == ["../../scripts/app.js", "../../scripts/api.js", "./infinitetalk_progress_text.js"]
    assert (JS / "infinitetalk_progress_text.js").is_file()
    assert 'addEventListener("progress_text"' in source
