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
             "window 4/3", "resuming at window 3/4 (2 finished)", "window 2/5 · decode 4/21",
             "window 2/5 done (160 frames)", "clip 2/3", "segment 2/4 done (180 frames)"]
    out = _run_node(
        f"import {{ parseProgressText, badgeLabel }} from {json.dumps(module)};"
        f"const parsed = {json.dumps(cases)}.map(parseProgressText);"
        "const stopped = [badgeLabel(parsed[7], 1, true), badgeLabel(parsed[8], 2, true), badgeLabel(parsed[7], 1, false)];"
        "console.log(JSON.stringify([...parsed, stopped]));"
    )
    first, single, last, other, zero, beyond, resume, decode, done, clip, segment, labels = out
    assert first["badge"] == "2/5 · 3/8"
    assert first["fraction"] == pytest.approx((1 + 3 / 8) / 5)
    assert single == {"window": 1, "windows": 1, "step": None, "steps": None, "stage": None, "chunk": None,
                      "chunks": None, "finished": None, "fraction": 0, "badge": "1/1"}
    assert last["fraction"] == 1
    assert other is None and zero is None and beyond is None
    assert resume["badge"] == "3/4" and resume["finished"] == 2
    assert clip["badge"] == "2/3"  # the Animate sampler's "clip k/n"
    assert segment["badge"] == "2/4 done"  # the LongCat sampler's "segment k/n"
    assert decode["badge"] == "2/5 · decode 4/21" and (decode["stage"], decode["chunk"], decode["chunks"]) == ("decode", 4, 21)
    assert done["finished"] == 2 and done["fraction"] == pytest.approx(2 / 5) and done["badge"] == "2/5 done"
    # After Cancel the badge counts the windows on disk, not the window that was running.
    assert labels == ["1/5 done (stopped)", "2/5 done (stopped)", "2/5 · decode 4/21"]


def test_extension_imports_only_what_the_front_end_serves():
    # ComfyUI serves the pack's js/ under /extensions/<pack>/ and its own modules under /scripts/.
    source = (JS / "infinitetalk_progress.js").read_text()
    imports = [line.split(" from ")[1].strip(' ";') for line in source.splitlines() if line.startswith("import ")]
    assert imports == ["../../scripts/app.js", "../../scripts/api.js", "./infinitetalk_progress_text.js"]
    assert (JS / "infinitetalk_progress_text.js").is_file()
    assert 'addEventListener("progress_text"' in source
