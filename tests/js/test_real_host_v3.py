"""The V3 nodes in the REAL ComfyUI servers with real front ends, in Chromium, with Vue nodes on and off: ComfyUI
0.33.0 with the front end it pins (1.49.6) and the newest checked (1.58.1), ComfyUI 0.3.64 with its pin (1.27.10).
Every template loads with no missing node, broken link or invalid widget, and opens with all of it in view; where the
host has DynamicCombo (0.33) a sampler shows the two mask inputs only in two-speaker mode, and a two-speaker workflow
saved before the speakers choice opens in two-speaker mode with its masks linked inside the choice, so that Queue
writes the prompt the V3 sampler runs; on 0.3.64 the masks stay plain inputs, linked as saved.

The servers run from ../shared/hosts/ComfyUI-*.tar.gz (`--front-end-root`: the front-end wheels of
testlib/frontend_wheels.py) with the host's Python (WANVIDEO_HOST_PYTHON, default the host virtualenv in
~/.cache/wanvideo-hosts/); the examples' model and input files are empty placeholders, as for the validation.
Skipped, with the reason, where an archive or that Python is absent.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from testlib import REPO_ROOT, SHARED
from testlib.frontend_checks import DROP_FILE, GRAPH_PROBLEMS, GRAPH_TO_PROMPT, NODES_OUT_OF_VIEW
from testlib.frontend_wheels import NEWEST_CHECKED, PINNED_BY_COMFYUI, PINNED_BY_COMFYUI_033, static_dir

# (host, front end): each host with the front end it pins, and today's host with the newest front end checked.
MATRIX = [("0.33.0", PINNED_BY_COMFYUI_033), ("0.33.0", NEWEST_CHECKED), ("0.3.64", PINNED_BY_COMFYUI)]


def host_python(host: str) -> Path:
    """WANVIDEO_HOST_PYTHON_0_3_64 (per host, e.g. where the hosts need different packages) or WANVIDEO_HOST_PYTHON."""
    default = Path.home() / ".cache" / "wanvideo-hosts" / "venv-torch2.9.1" / "bin" / "python"
    return Path(os.environ.get(f"WANVIDEO_HOST_PYTHON_{host.replace('.', '_')}")
                or os.environ.get("WANVIDEO_HOST_PYTHON") or default)
TEMPLATES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
SAMPLER_STATE = """() => { const n = app.graph._nodes.find((n) => n.type === 'InfiniteTalkSampler');
  return { id: n.id, speakers: n.widgets.find((w) => w.name === 'speakers')?.value,
           inputs: n.inputs.filter((i) => /speaker_\\d_mask/.test(i.name)).map((i) => [i.name, i.link != null]) }; }"""


@pytest.fixture(scope="module", params=MATRIX, ids=lambda p: f"comfyui-{p[0]}-frontend-{p[1]}")
def host_server(request, tmp_path_factory):
    host, frontend = request.param
    archive = SHARED / "hosts" / f"ComfyUI-{host}.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent: the real-host tests need ../shared/hosts/")
    python = host_python(host)
    if not python.is_file():
        pytest.skip(f"no host Python at {python} (set WANVIDEO_HOST_PYTHON)")
    work = tmp_path_factory.mktemp("host033")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    base, models = work / "base", work / "models"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "ComfyUI-WanVideo-InfiniteTalk").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(REPO_ROOT / "scripts" / "comfyui"))
    from comfyui_validate_examples import placeholders

    placeholders(base, models)
    config = work / "extra_model_paths.yaml"
    config.write_text("t:\n" + f"  base_path: {models}\n" + "".join(f"  {f.name}: {f.name}\n" for f in models.iterdir()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / "comfyui.log", "w")
    proc = subprocess.Popen([str(python), "main.py", "--cpu", "--port", str(port), "--listen", "127.0.0.1",
                             "--base-directory", str(base), "--extra-model-paths-config", str(config),
                             "--front-end-root", str(static_dir(frontend)), "--disable-auto-launch"],
                            cwd=work / f"ComfyUI-{host}", stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                text = (work / "comfyui.log").read_text()
                if "comfyui_workflow_templates/templates" in text and host == "0.3.64":
                    pytest.skip(f"{python} has ComfyUI 0.33's workflow templates package, which 0.3.64 cannot start "
                                "with: set WANVIDEO_HOST_PYTHON_0_3_64 to a Python with 0.3.64's requirements")
                if "ModuleNotFoundError" in text:
                    pytest.skip(f"the host Python lacks ComfyUI's requirements: {text.strip().splitlines()[-1]}")
                pytest.fail(f"ComfyUI exited: {text[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/object_info/InfiniteTalkSampler", timeout=2)
                break
            except OSError:
                time.sleep(1)
        yield host, url, base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module", params=[False, True], ids=["vue-off", "vue-on"])
def page(request, host_server, playwright_browser):
    page = playwright_browser.new_page(viewport={"width": 1366, "height": 768})  # a laptop screen
    host, url, _ = host_server
    page.goto(url)
    page.wait_for_function("() => window.app?.graph && app.extensions?.some((e) => e.name === 'InfiniteTalk.SpeakersChoice')",
                           timeout=180_000)
    page.evaluate("async (on) => { await app.extensionManager.setting.set('Comfy.VueNodes.Enabled', on); }", request.param)
    page.wait_for_timeout(500)
    page.keyboard.press("Escape")  # whatever the first start opens
    page.host = host
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
    assert page.evaluate(NODES_OUT_OF_VIEW) == [], "the template must open with all of it in view"


def needs_dynamic_combo(page):
    if page.host == "0.3.64":
        pytest.skip("ComfyUI 0.3.64 has no DynamicCombo: the masks are plain optional inputs there")


def test_mask_inputs_appear_only_in_two_speaker_mode(page):
    needs_dynamic_combo(page)
    state = page.evaluate("""async () => { app.graph.clear(); const n = LiteGraph.createNode('InfiniteTalkSampler');
      app.graph.add(n); const w = n.widgets.find((w) => w.name === 'speakers'); const masks = () => n.inputs
        .filter((i) => /speaker_\\d_mask/.test(i.name)).map((i) => i.name); const out = { first: w.value, one: masks() };
      w.value = 'two_speakers'; await new Promise((r) => setTimeout(r, 300)); out.two = masks();
      w.value = 'single_speaker'; await new Promise((r) => setTimeout(r, 300)); out.back = masks(); return out; }""")
    assert state == {"first": "single_speaker", "one": [], "two": ["speakers.speaker_1_mask", "speakers.speaker_2_mask"],
                     "back": []}


def test_a_two_speaker_workflow_saved_before_v3_opens_in_two_speaker_mode(page):
    needs_dynamic_combo(page)
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


def test_a_one_speaker_workflow_saved_before_v3_stays_one_speaker(page):
    needs_dynamic_combo(page)
    load(page, json.loads((REPO_ROOT / "example_workflows" / "infinitetalk_single_speaker.json").read_text()))
    assert page.evaluate(SAMPLER_STATE)["speakers"] == "single_speaker"
    page.wait_for_timeout(300)
    assert page.evaluate(SAMPLER_STATE)["inputs"] == [], "the old empty mask slots go"


def test_two_speaker_masks_stay_linked_as_saved_without_dynamic_combo(page):
    if page.host != "0.3.64":
        pytest.skip("hosts with DynamicCombo move the masks into the speakers choice (test above)")
    workflow = json.loads((REPO_ROOT / "example_workflows" / "infinitetalk_two_speakers.json").read_text())
    load(page, workflow)
    state = page.evaluate(SAMPLER_STATE)
    assert state["speakers"] is None and state["inputs"] == [["speaker_1_mask", True], ["speaker_2_mask", True]]


BLUEPRINT = REPO_ROOT / "subgraphs" / "Talking portrait (InfiniteTalk).json"
# Drop the blueprint, feed it the example's portrait and speech, and post what Queue would post.
QUEUE_BLUEPRINT = """async (blueprint) => {
  await app.loadGraphData(blueprint);
  const portrait = app.graph._nodes[0];
  const image = LiteGraph.createNode('LoadImage'), audio = LiteGraph.createNode('LoadAudio');
  app.graph.add(image); app.graph.add(audio);
  image.widgets.find((w) => w.name === 'image').value = 'portrait.png';
  audio.widgets.find((w) => w.name === 'audio').value = 'speech.wav';
  image.connect(0, portrait, portrait.inputs.findIndex((i) => i.type === 'IMAGE'));
  audio.connect(0, portrait, portrait.inputs.findIndex((i) => i.type === 'AUDIO'));
  const { output } = await app.graphToPrompt();
  const answer = await fetch('/api/prompt', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                               body: JSON.stringify({ prompt: output }) });
  await fetch('/api/interrupt', { method: 'POST' });  // validation is the point: stop the placeholder run
  return { status: answer.status, body: await answer.json(), types: Object.values(output).map((n) => n.class_type) };
}"""


def needs_blueprints(host):
    if host == "0.3.64":
        pytest.skip("ComfyUI 0.3.64 serves no subgraph blueprints")


def test_the_real_server_lists_the_blueprint(host_server):
    host, url, _ = host_server
    needs_blueprints(host)
    listed = json.loads(urllib.request.urlopen(f"{url}/api/global_subgraphs", timeout=30).read())
    ours = {k: v for k, v in listed.items() if v["source"] == "custom_node"}
    assert [(v["name"], v["info"]["node_pack"]) for v in ours.values()] == [
        ("Talking portrait (InfiniteTalk)", "custom_nodes.ComfyUI-WanVideo-InfiniteTalk")]
    (entry_id,) = ours
    served = json.loads(urllib.request.urlopen(f"{url}/api/global_subgraphs/{entry_id}", timeout=30).read())
    assert json.loads(served["data"]) == json.loads(BLUEPRINT.read_text())


def test_the_blueprint_expands_to_a_prompt_the_server_accepts(page):
    needs_blueprints(page.host)
    result = page.evaluate(QUEUE_BLUEPRINT, json.loads(BLUEPRINT.read_text()))
    assert result["status"] == 200 and not result["body"].get("node_errors"), result["body"]
    assert {"InfiniteTalkSampler", "InfiniteTalkVideoCombine", "LoadImage", "LoadAudio"} <= set(result["types"])


POST_PROMPT = """async () => {
  const { output } = await app.graphToPrompt();
  const answer = await fetch('/api/prompt', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                               body: JSON.stringify({ prompt: output }) });
  await fetch('/api/interrupt', { method: 'POST' });  // validation is the point: stop the placeholder run
  return { status: answer.status, body: await answer.json() };
}"""


def test_an_mp4_from_todays_video_combine_restores_a_workflow_the_server_accepts(page, host_server, rendered_video):
    """The MP4 (written by the Video Combine node of today, the single-speaker example embedded) dropped onto the
    real front end: its workflow comes back on the V3 nodes and Queue's prompt passes POST /prompt."""
    _, _, base = host_server
    name = rendered_video["path"].name
    (base / "output" / "InfiniteTalk").mkdir(parents=True, exist_ok=True)
    shutil.copy(rendered_video["path"], base / "output" / "InfiniteTalk" / name)
    page.evaluate("() => app.graph.clear()")
    page.evaluate(DROP_FILE, {"url": f"/api/view?filename={name}&type=output&subfolder=InfiniteTalk", "name": name,
                              "type": "video/mp4"})
    expected = sorted(n["type"] for n in rendered_video["workflow"]["nodes"])
    page.wait_for_function(f"() => app.graph._nodes.length === {len(expected)}", timeout=30_000)
    assert sorted(page.evaluate("() => app.graph._nodes.map((n) => n.type)")) == expected
    assert page.evaluate(GRAPH_PROBLEMS, rendered_video["workflow"]) == []
    result = page.evaluate(POST_PROMPT)
    assert result["status"] == 200 and not result["body"].get("node_errors"), result["body"]
