"""The V3 nodes in the REAL ComfyUI 0.33.0 server and the front end it ships (1.49.6), in Chromium, with Vue nodes
on and off: every template loads with no missing node, broken link or invalid widget; a sampler shows the two mask
inputs only in two-speaker mode; a two-speaker workflow saved before the speakers choice opens in two-speaker
mode with its masks linked inside the choice, and Queue writes the prompt the V3 sampler runs.

The server runs from ../shared/hosts/ComfyUI-0.33.0.tar.gz with the host's Python (WANVIDEO_HOST_PYTHON, default
the host virtualenv in ~/.cache/wanvideo-hosts/); the examples' model and input files are empty placeholders, as
for the validation. Skipped, with the reason, where the archive or that Python is absent.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from testlib import REPO_ROOT, SHARED
from testlib.frontend_checks import GRAPH_PROBLEMS, GRAPH_TO_PROMPT

ARCHIVE = SHARED / "hosts" / "ComfyUI-0.33.0.tar.gz"
HOST_PYTHON = Path(os.environ.get("WANVIDEO_HOST_PYTHON",
                                  Path.home() / ".cache" / "wanvideo-hosts" / "venv-torch2.9.1" / "bin" / "python"))
TEMPLATES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
SAMPLER_STATE = """() => { const n = app.graph._nodes.find((n) => n.type === 'InfiniteTalkSampler');
  return { id: n.id, speakers: n.widgets.find((w) => w.name === 'speakers')?.value,
           inputs: n.inputs.filter((i) => i.name.includes('mask')).map((i) => [i.name, i.link != null]) }; }"""


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    if not ARCHIVE.is_file():
        pytest.skip(f"{ARCHIVE} is absent: the real-host tests need ../shared/hosts/")
    if not HOST_PYTHON.is_file():
        pytest.skip(f"no host Python at {HOST_PYTHON} (set WANVIDEO_HOST_PYTHON)")
    work = tmp_path_factory.mktemp("host033")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(work, filter="data")
    base, models = work / "base", work / "models"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "ComfyUI-WanVideo-InfiniteTalk").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from comfyui_validate_examples import placeholders

    placeholders(base, models)
    config = work / "extra_model_paths.yaml"
    config.write_text("t:\n" + f"  base_path: {models}\n" + "".join(f"  {f.name}: {f.name}\n" for f in models.iterdir()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / "comfyui.log", "w")
    proc = subprocess.Popen([str(HOST_PYTHON), "main.py", "--cpu", "--port", str(port), "--listen", "127.0.0.1",
                             "--base-directory", str(base), "--extra-model-paths-config", str(config),
                             "--disable-auto-launch"], cwd=work / "ComfyUI-0.33.0", stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                text = (work / "comfyui.log").read_text()
                if "ModuleNotFoundError" in text:
                    pytest.skip(f"the host Python lacks ComfyUI's requirements: {text.strip().splitlines()[-1]}")
                pytest.fail(f"ComfyUI exited: {text[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/object_info/InfiniteTalkSampler", timeout=2)
                break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module", params=[False, True], ids=["vue-off", "vue-on"])
def page(request, host_server, playwright_browser):
    page = playwright_browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(host_server)
    page.wait_for_function("() => window.app?.graph && app.extensions?.some((e) => e.name === 'InfiniteTalk.SpeakersChoice')",
                           timeout=180_000)
    page.evaluate("async (on) => { await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', on); }", request.param)
    yield page
    page.close()


def load(page, workflow):
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", workflow)
    page.wait_for_function("(n) => app.graph._nodes.length === n", arg=len(workflow["nodes"]), timeout=30_000)
    page.wait_for_timeout(1000)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_loads_cleanly_in_the_real_host(page, path):
    workflow = json.loads(path.read_text())
    load(page, workflow)
    assert page.evaluate(GRAPH_PROBLEMS, workflow) == []


def test_mask_inputs_appear_only_in_two_speaker_mode(page):
    state = page.evaluate("""async () => { app.graph.clear(); const n = LiteGraph.createNode('InfiniteTalkSampler');
      app.graph.add(n); const w = n.widgets.find((w) => w.name === 'speakers'); const masks = () => n.inputs
        .filter((i) => i.name.includes('mask')).map((i) => i.name); const out = { first: w.value, one: masks() };
      w.value = 'two_speakers'; await new Promise((r) => setTimeout(r, 300)); out.two = masks();
      w.value = 'single_speaker'; await new Promise((r) => setTimeout(r, 300)); out.back = masks(); return out; }""")
    assert state == {"first": "single_speaker", "one": [], "two": ["speakers.speaker_1_mask", "speakers.speaker_2_mask"],
                     "back": []}


def test_a_two_speaker_workflow_saved_before_v3_opens_in_two_speaker_mode(page):
    workflow = json.loads((REPO_ROOT / "example_workflows" / "infinitetalk_two_speakers.json").read_text())
    load(page, workflow)
    state = page.evaluate(SAMPLER_STATE)
    assert state["speakers"] == "two_speakers"
    assert state["inputs"] == [["speakers.speaker_1_mask", True], ["speakers.speaker_2_mask", True]]
    sent = page.evaluate(GRAPH_TO_PROMPT)[str(state["id"])]["inputs"]
    saved = json.loads((REPO_ROOT / "examples" / "api" / "infinitetalk_two_speakers_api.json").read_text())
    old = next(n["inputs"] for n in saved.values() if n["class_type"] == "InfiniteTalkSampler")
    assert sent["speakers"] == "two_speakers"
    assert [sent["speakers.speaker_1_mask"], sent["speakers.speaker_2_mask"]] == [old["speaker_1_mask"],
                                                                                 old["speaker_2_mask"]]
