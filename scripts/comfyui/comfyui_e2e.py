"""Run the pack inside a real ComfyUI and check that an MP4 with sound comes out. Run by hand, not in CI.

    python scripts/comfyui/comfyui_e2e.py /path/to/ComfyUI [--python /path/to/comfy-venv/bin/python]

Run it with (or point --python at) the Python that runs that ComfyUI, with this pack's
requirements installed in it. What it does:

1. Makes a temporary ComfyUI base directory (`--base-directory`): `custom_nodes/` holds a link to this
   checkout (the pack, loaded exactly as ComfyUI loads any custom node folder) and a second folder
   with the test-only stand-in node of `tests/testlib/e2e_host_nodes.py`; `input/` gets a portrait and
   a short speech clip from `../shared/media`. The ComfyUI checkout itself is not modified.
2. Writes small model files into a temporary models folder, registered through an
   `extra_model_paths.yaml` (`--extra-model-paths-config`):
   - `diffusion_models/`: a tiny random-weight Wan2.1 I2V + InfiniteTalk DiT (our model loader);
   - `wav2vec2/`: a tiny random-weight wav2vec2 as a Hugging Face folder (our wav2vec loader);
   - `vae/`: a random-weight Wan 2.1 VAE at its real size (127 M parameters, 254 MB fp16) in the original
     layout, which ComfyUI's own VAELoader loads (it fixes the architecture, so it cannot be tiny);
   - `clip_vision/`: a random-weight ViT-H/14 at its real size (632 M parameters, 1.26 GB fp16), which
     ComfyUI's own CLIPVisionLoader loads (`--clip-vision stand-in` skips it, see below).
3. Starts ComfyUI on 127.0.0.1 with `--cpu`, posts an API workflow built from
   `examples/api/infinitetalk_single_speaker_api.json`, adapted to the tiny models:
   - the umt5 text encoder (CLIPLoader + CLIPTextEncode) is replaced by `InfiniteTalkE2ETinyTextEncode`,
     which returns CONDITIONING in the host's format with the tiny model's width: ComfyUI builds umt5-xxl
     at its full 5.7 B-parameter size whatever file it is given, which a test machine cannot hold;
   - with `--clip-vision stand-in`, CLIPVisionLoader + CLIPVisionEncode are replaced the same way;
   - model names point at the tiny files; size, steps and frame window are made small.
   LoadImage, LoadAudio, VAELoader (and by default CLIPVisionLoader / CLIPVisionEncode) are ComfyUI's own.
4. Listens on the websocket (progress text from the sampler), waits for the run, and checks the MP4:
   an H.264 video stream, an AAC audio stream, durations within one frame of each other and of the speech.
5. Opens that ComfyUI's own front end in Chromium (Playwright driving a local Chromium through
   `executable_path`, as the browser tests do; `--no-browser` skips this) and checks what a user sees,
   with the in-page checks of `tests/testlib/frontend_checks.py`: every template of `example_workflows/`
   loads with no missing node type, broken link, invalid widget value or overlapping nodes (the
   examples' model and input files are present as empty placeholders, as for the validation); the
   run's Video Combine output shows a visible, unmuted player with controls that plays the MP4 with its
   audio decoded; the run's progress texts give the badge `n/n done`; a new sampler's seed control is
   fixed and a new model loader does not preselect an InfiniteTalk adapter; dropping the MP4 onto the
   page restores a graph with the sampler and Video Combine. Screenshots of failures go to the work folder.

Exit status 0 when the MP4 with sound came out and passed the checks.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from e2e_common import MEDIA, REPO, adapt_workflow, check_mp4, find_video, log, run_prompt

PACK_FOLDER = "ComfyUI-WanVideo-InfiniteTalk"
DOUBLES_FOLDER = "infinitetalk_e2e_test_doubles"
EXAMPLE = REPO / "examples" / "api" / "infinitetalk_single_speaker_api.json"
TEMPLATES = REPO / "example_workflows"
BROWSER_EXAMPLE = TEMPLATES / "infinitetalk_single_speaker.json"  # the UI twin of EXAMPLE (same node ids)

# The tiny run: small enough for a CPU in a few minutes, big enough for several windows.
TINY_RUN = {"width": 64, "height": 64, "frame_window": 17, "motion_frames": 5, "steps": 2, "speech_seconds": 1.6}


# ----------------------------------------------------------------------------- model files

MAKE_HOST_FILES = r"""
import sys, torch
comfy_root, kind, path = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, comfy_root)
sys.argv = ["main.py", "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
from safetensors.torch import save_file
if kind == "vae":
    import comfy.ldm.wan.vae as wan_vae
    model = wan_vae.WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                           temperal_downsample=[False, True, True], dropout=0.0)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    ones = lambda k: k.endswith("gamma")
else:
    import os, comfy.clip_vision
    model = comfy.clip_vision.ClipVisionModel(os.path.join(os.path.dirname(comfy.clip_vision.__file__), "clip_vision_config_h.json"))
    shapes = {k: v.shape for k, v in model.get_sd().items()}
    ones = lambda k: ("norm" in k or "layrnorm" in k) and k.endswith("weight")
del model
gen = torch.Generator().manual_seed(0)
sd = {}
for k, shape in shapes.items():
    if len(shape) >= 2:
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        sd[k] = (torch.randn(shape, generator=gen) / fan_in ** 0.5).to(torch.float16)
    elif ones(k):
        sd[k] = torch.ones(shape, dtype=torch.float16)
    else:
        sd[k] = torch.zeros(shape, dtype=torch.float16)
save_file(sd, path)
print(sum(v.numel() for v in sd.values()))
"""


def write_host_model_file(python, comfy_root, kind, path):
    """A random-weight file in the real format ComfyUI's own loader expects (made with ComfyUI's classes)."""
    t0 = time.time()
    out = subprocess.run([python, "-c", MAKE_HOST_FILES, str(comfy_root), kind, str(path)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"could not write the random {kind} file:\n{out.stderr[-3000:]}")
    params = int(out.stdout.strip().splitlines()[-1])
    log(f"wrote {path.name}: {params / 1e6:.0f} M random parameters ({time.time() - t0:.0f} s)")


TINY_LORA = r"""
import sys, torch
from safetensors.torch import save_file
path, dim = sys.argv[1], int(sys.argv[2])
gen = torch.Generator().manual_seed(5)
sd = {}
for layer, out_dim in (("blocks.0.self_attn.q", dim), ("blocks.1.ffn.0", 2 * dim)):
    sd[f"diffusion_model.{layer}.lora_down.weight"] = torch.randn(4, dim, generator=gen) * 0.1
    sd[f"diffusion_model.{layer}.lora_up.weight"] = torch.randn(out_dim, 4, generator=gen) * 0.1
    sd[f"diffusion_model.{layer}.alpha"] = torch.tensor(4.0)
save_file(sd, path)
"""


TINY_LONGCAT = r"""
import json, sys
from wanvideo.tiny.longcat import write_tiny_longcat_files
print(json.dumps(write_tiny_longcat_files(sys.argv[1])))
"""


def write_tiny_pack_models(python, models: Path, clip_dim: int) -> dict:
    """Tiny DiT and wav2vec2 files (python -m wanvideo write-tiny-models) and a tiny LoRA, for our own loaders."""
    out = subprocess.run([python, "-m", "wanvideo", "write-tiny-models", str(models), "--clip-dim", str(clip_dim)],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"could not write the tiny model files:\n{out.stderr[-3000:]}")
    names = json.loads(out.stdout.strip().splitlines()[-1])
    (models / "loras").mkdir(parents=True, exist_ok=True)
    names["lora"] = "tiny_lora_random_e2e.safetensors"
    out = subprocess.run([python, "-c", TINY_LORA, str(models / "loras" / names["lora"]), "64"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"could not write the tiny LoRA:\n{out.stderr[-3000:]}")
    out = subprocess.run([python, "-c", TINY_LONGCAT, str(models)], capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(f"could not write the tiny LongCat files:\n{out.stderr[-3000:]}")
    names.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return names


# ----------------------------------------------------------------------------- inputs

def write_inputs(input_dir: Path, seconds: float) -> dict:
    """A portrait and the first `seconds` of a 16-bit PCM speech file (stdlib wave: no extra package)."""
    import wave

    shutil.copy(MEDIA / "portrait_480x832.png", input_dir / "portrait.png")
    with wave.open(str(MEDIA / "speech_en_mono16k.wav"), "rb") as src:
        params = src.getparams()
        n = min(int(seconds * params.framerate), params.nframes)
        data = src.readframes(n)
    with wave.open(str(input_dir / "speech.wav"), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(data)
    return {"image": "portrait.png", "audio": "speech.wav", "speech_seconds": n / params.framerate}


# ----------------------------------------------------------------------------- server

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, payload=None, timeout=30):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def wait_for_server(base_url, proc, log_path, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"ComfyUI exited with {proc.returncode} while starting; log: {log_path}\n"
                             + Path(log_path).read_text()[-4000:])
        try:
            return http_json(f"{base_url}/system_stats", timeout=5)
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(1.0)
    raise SystemExit(f"ComfyUI did not answer within {timeout} s; log: {log_path}")


# ----------------------------------------------------------------------------- checks

def check_preview(base_url, history_entry) -> list[str]:
    """The UI entry Video Combine returned can be fetched the way the front end's player fetches it."""
    from urllib.parse import urlencode

    for node_out in (history_entry or {}).get("outputs", {}).values():
        for key in ("gifs", "videos", "images"):
            for item in node_out.get(key, []) or []:
                if not str(item.get("filename", "")).endswith(".mp4"):
                    continue
                query = urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                   "type": item.get("type", "output")})
                with urllib.request.urlopen(f"{base_url}/view?{query}", timeout=30) as resp:
                    kind = resp.headers.get("Content-Type", "")
                    size = len(resp.read())
                log(f"preview entry '{key}': GET /view -> {resp.status} {kind}, {size} bytes")
                if resp.status != 200 or "video" not in kind or size == 0:
                    return [f"the preview entry does not serve the video (status {resp.status}, {kind})"]
                return []
    return ["Video Combine returned no UI entry the front end can preview"]


def check_startup_log(text: str) -> list[str]:
    """ComfyUI's log up to "Starting server": the pack imported, with no traceback, warning or error of ours."""
    head = text.split("Starting server", 1)[0]
    problems = []
    if not re.search(rf"\d+\.\d+ seconds: .*{re.escape(PACK_FOLDER)}$", head, re.MULTILINE):
        problems.append("the pack is not in ComfyUI's 'Import times for custom nodes' list")
    for line in head.splitlines():
        if "(IMPORT FAILED): " in line and PACK_FOLDER in line:
            problems.append(f"ComfyUI's log: {line.strip()}")
        elif re.search(r"traceback|warning|error|deprecat", line, re.IGNORECASE) and (
                "infinitetalk" in line.lower() or "wanvideo" in line.lower() or PACK_FOLDER in line):
            problems.append(f"ComfyUI's log: {line.strip()}")
    if "Traceback" in head:
        problems.append("ComfyUI's log has a traceback before 'Starting server'")
    return problems


def check_object_info(info: dict, ours: list[str]) -> list[str]:
    """Every node of ours in /object_info has a description, a tooltip on every input and on every output."""
    problems = []
    for name in ours:
        spec = info[name]
        if not spec.get("description"):
            problems.append(f"/object_info: {name} has no description")
        for section in ("required", "optional"):
            for key, value in spec.get("input", {}).get(section, {}).items():
                options = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
                if not options.get("tooltip"):
                    problems.append(f"/object_info: {name} input {key} has no tooltip")
        tips = spec.get("output_tooltips") or []
        if len(tips) != len(spec.get("output", [])) or not all(tips):
            problems.append(f"/object_info: {name} outputs {spec.get('output_name')} lack tooltips ({tips})")
    return problems


# ----------------------------------------------------------------------------- the front end in a browser

def browser_checks(base_url, history_entry, texts, video: Path, chromium: str, shots: Path) -> list[str]:
    """What a user sees in this ComfyUI's own front end (see the module doc, step 5)."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return ["Playwright is not installed in this Python: pip install playwright==1.65.2 (no browser download "
                "is needed: a local Chromium is driven), or pass --no-browser"]
    from testlib.frontend_checks import (
        DROP_FILE,
        GRAPH_PROBLEMS,
        GRAPH_TO_PROMPT,
        NEW_NODE_DEFAULTS,
        NODE_RECTS,
        PLAY_WITH_SOUND,
        PLAYER_STATE,
        overlaps,
        prompt_differences,
    )

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--mute-audio"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base_url) else route.abort())

        def check(name, ok, detail=""):
            log(f"browser: {'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail and not ok else ''}")
            if not ok:
                problems.append(f"browser: {name}: {detail}")
                page.screenshot(path=str(shots / f"browser_{len(problems)}.png"))

        def load(wf):
            page.evaluate("async (wf) => { await app.loadGraphData(wf); }", wf)
            page.wait_for_function("(ids) => ids.every((id) => app.graph?.getNodeById(id))",
                                   arg=[n["id"] for n in wf["nodes"]], timeout=30_000)
            page.wait_for_timeout(1500)

        try:
            page.goto(base_url)
            page.wait_for_function("() => window.app?.graph && app.extensions?.some((e) => "
                                   "e.name === 'InfiniteTalk.VideoCombinePreview')", timeout=180_000)
            page.keyboard.press("Escape")
            for path in sorted(TEMPLATES.glob("*.json")):
                wf = json.loads(path.read_text())
                load(wf)
                found = page.evaluate(GRAPH_PROBLEMS, wf) + overlaps(page.evaluate(NODE_RECTS))
                check(f"template {path.name} loads cleanly", not found, found)
                twin = json.loads((REPO / "examples" / "api" / f"{path.stem}_api.json").read_text())
                found = prompt_differences(page.evaluate(GRAPH_TO_PROMPT), twin)
                check(f"template {path.name} queues its API twin's prompt", not found, found)

            wf = json.loads(BROWSER_EXAMPLE.read_text())
            load(wf)
            combine = next(n["id"] for n in wf["nodes"] if n["type"] == "InfiniteTalkVideoCombine")
            output = next((o for o in (history_entry or {}).get("outputs", {}).values() if "infinitetalk_video" in o), None)
            check("Video Combine returned its player details", output is not None, "no infinitetalk_video output")
            if output is not None:
                page.evaluate("([id, out]) => app.graph.getNodeById(id).onExecuted(out)", [combine, output])
                page.wait_for_function(f"() => ({PLAYER_STATE})({combine})?.ready", timeout=30_000)
                page.wait_for_timeout(1000)
                state = page.evaluate(PLAYER_STATE, combine)
                check("the player is visible with controls and sound on", state["width"] > 100 and state["height"] > 100
                      and state["visible"] and state["controls"] and not state["muted"], state)
                check("the caption names the file", video.name in state["caption"], state["caption"])
                played = page.evaluate(PLAY_WITH_SOUND, combine)
                check("the player plays the MP4 with its audio decoded",
                      played["error"] is None and played["time"] >= 0.5 and played["audioBytes"] > 0, played)

            for node_id, text in texts:
                page.evaluate("async ([nodeId, text]) => (await import('/scripts/api.js')).api"
                              ".dispatchCustomEvent('progress_text', { nodeId, text })", [node_id, text])
            windows = [re.search(r"window (\d+)/(\d+) done", t) for _, t in texts]
            windows = [m for m in windows if m]
            sampler = next(n["id"] for n in wf["nodes"] if n["type"] == "InfiniteTalkSampler")
            label = page.evaluate(f"() => app.graph.getNodeById({sampler}).infinitetalkProgress?.label ?? null")
            expected = f"{windows[-1].group(2)}/{windows[-1].group(2)} done" if windows else "(no 'done' texts)"
            check("the badge counts the finished windows", label == expected, f"{label!r}, expected {expected!r}")

            created = page.evaluate(NEW_NODE_DEFAULTS)
            check("a new sampler's seed is fixed", created["control"] == "fixed", created)
            check("a new model loader does not preselect an adapter", "infinitetalk" not in str(created["model"]).lower(),
                  created)

            page.evaluate("() => app.graph.clear()")
            query = f"filename={video.name}&subfolder={output['images'][0]['subfolder'] if output else ''}&type=output"
            page.evaluate(DROP_FILE, {"url": f"/api/view?{query}", "name": video.name, "type": "video/mp4"})
            try:
                page.wait_for_function("() => ['InfiniteTalkSampler', 'InfiniteTalkVideoCombine'].every("
                                       "(t) => app.graph._nodes.some((n) => n.type === t))", timeout=30_000)
                restored = True
            except Exception:  # noqa: BLE001 - reported as a failed check below
                restored = False
            check("dropping the MP4 restores its graph", restored, "no sampler / Video Combine after the drop")
        finally:
            browser.close()
    return problems


# ----------------------------------------------------------------------------- main

def further_runs(args, base_url, base, names, inputs, prompt, video) -> list[str]:
    """The WanAnimate run and the Cancel-and-resume run (scripts/comfyui/comfyui_e2e_more_runs.py), unless skipped."""
    from comfyui_e2e_more_runs import animate_run, cancel_and_resume, other_examples

    problems = []
    if not args.no_cancel:
        problems += cancel_and_resume(base_url, base, prompt, video, args.timeout)
    if not args.no_animate:
        problems += animate_run(base_url, base, names, inputs, args.clip_vision, args.timeout)
    if args.all_examples:
        problems += other_examples(base_url, base, names, inputs, args.clip_vision, TINY_RUN, args.timeout)
    if args.multi_gpu:
        from comfyui_e2e_multi_gpu import multi_gpu_runs

        problems += multi_gpu_runs(base_url, base, prompt, args.timeout)
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("comfyui", type=Path, help="ComfyUI checkout (the folder holding main.py)")
    ap.add_argument("--python", default=sys.executable, help="Python that runs ComfyUI (default: this one)")
    ap.add_argument("--workflow", type=Path, default=EXAMPLE, help="API-format example to adapt")
    ap.add_argument("--clip-vision", choices=("real", "stand-in"), default="real",
                    help="'real': ComfyUI's CLIPVisionLoader/Encode on a random ViT-H file (1.3 GB on disk); "
                         "'stand-in': the test-only node")
    ap.add_argument("--workdir", type=Path, help="keep everything here instead of a temporary folder")
    ap.add_argument("--keep", action="store_true", help="do not delete the temporary folder")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-validate", action="store_true", help="skip validating the four API examples first")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                    help="Chromium binary for the front-end checks (default: chromium on PATH)")
    ap.add_argument("--no-browser", action="store_true", help="skip the checks in the front end (step 5)")
    ap.add_argument("--no-cancel", action="store_true", help="skip the Cancel-and-resume run (step 6)")
    ap.add_argument("--no-animate", action="store_true", help="skip the WanAnimate run (step 7)")
    ap.add_argument("--multi-gpu", action="store_true", help="also run the InfiniteTalk Multi-GPU node (guidance "
                    "split and the worker pool on cpu,cpu; scripts/comfyui/comfyui_e2e_multi_gpu.py)")
    ap.add_argument("--all-examples", action="store_true",
                    help="also run the other four API examples (two speakers, dubbing, no audio, replacement)")
    args = ap.parse_args(argv)

    comfy = args.comfyui.resolve()
    if not (comfy / "main.py").is_file():
        raise SystemExit(f"{comfy} is not a ComfyUI checkout (no main.py)")
    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="infinitetalk_e2e_"))
    base, models = work / "base", work / "models"
    for sub in ("custom_nodes", "input", "output", "temp", "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    log(f"work folder {work}")

    link = base / "custom_nodes" / PACK_FOLDER
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    doubles = base / "custom_nodes" / DOUBLES_FOLDER
    doubles.mkdir(exist_ok=True)
    shutil.copy(REPO / "tests" / "testlib" / "e2e_host_nodes.py", doubles / "__init__.py")

    t0 = time.time()
    clip_dim = 1280 if args.clip_vision == "real" else 32
    names = write_tiny_pack_models(args.python, models, clip_dim)
    (models / "vae").mkdir(parents=True, exist_ok=True)
    names["vae"] = "wan_2.1_vae_random_e2e.safetensors"
    if not (models / "vae" / names["vae"]).exists():
        write_host_model_file(args.python, comfy, "vae", models / "vae" / names["vae"])
    if args.clip_vision == "real":
        (models / "clip_vision").mkdir(parents=True, exist_ok=True)
        names["clip_vision"] = "clip_vision_h_random_e2e.safetensors"
        if not (models / "clip_vision" / names["clip_vision"]).exists():
            write_host_model_file(args.python, comfy, "clip_vision", models / "clip_vision" / names["clip_vision"])
    if not args.no_browser:
        # The templates' model and input files, as empty placeholders, so the front end lists their choices.
        from comfyui_validate_examples import placeholders

        placeholders(base, models)
    inputs = write_inputs(base / "input", TINY_RUN["speech_seconds"])
    log(f"model and input files ready ({time.time() - t0:.0f} s)")

    yaml_path = work / "extra_model_paths.yaml"
    folders = sorted(p.name for p in models.iterdir() if p.is_dir())
    yaml_path.write_text("infinitetalk_e2e:\n" + f"  base_path: {models}\n"
                         + "".join(f"  {f}: {f}\n" for f in folders))

    if not args.no_validate:
        log("validating every API example with ComfyUI's own validator")
        check = subprocess.run([args.python, str(REPO / "scripts" / "comfyui" / "comfyui_validate_examples.py"), str(comfy)],
                               capture_output=True, text=True)
        for line in check.stdout.splitlines():
            if line.startswith(("VALID", "INVALID", "  ")):
                log(line)
        if check.returncode != 0:
            raise SystemExit("an example failed ComfyUI's validation:\n" + check.stdout[-4000:] + check.stderr[-2000:])

    prompt = adapt_workflow(json.loads(args.workflow.read_text()), names, inputs, args.clip_vision, TINY_RUN)
    (work / "prompt_api.json").write_text(json.dumps(prompt, indent=1))

    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = work / "comfyui.log"
    cmd = [args.python, str(comfy / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--base-directory", str(base), "--extra-model-paths-config", str(yaml_path),
           "--database-url", "sqlite:///:memory:", "--disable-auto-launch"]
    log("starting: " + " ".join(cmd))
    logf = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=comfy, stdout=logf, stderr=subprocess.STDOUT)
    ok = False
    try:
        wait_for_server(base_url, proc, log_path, timeout=300)
        info = http_json(f"{base_url}/object_info")
        ours = sorted(k for k in info if k.startswith("InfiniteTalk") and not k.startswith("InfiniteTalkE2E"))
        log(f"ComfyUI is up; pack nodes registered: {ours}")
        found = check_startup_log(log_path.read_text()) + check_object_info(info, ours)
        if found:
            raise SystemExit("the pack does not load cleanly:\n  " + "\n  ".join(found))
        log("ComfyUI's log shows the pack imported with no warning or error; every input and output has a tooltip")
        # The front end loads every .js of the pack's WEB_DIRECTORY from /extensions.
        scripts = [u for u in http_json(f"{base_url}/extensions") if f"/{PACK_FOLDER}/" in u]
        log(f"front-end scripts served for the pack: {scripts}")
        expected_js = sorted(p.name for p in (REPO / "js").glob("*.js"))
        if sorted(u.rsplit("/", 1)[-1] for u in scripts) != expected_js:
            raise SystemExit(f"the host serves {scripts}, the pack has {expected_js}")
        for url in scripts:
            with urllib.request.urlopen(base_url + url, timeout=10) as resp:
                if resp.status != 200 or not resp.read():
                    raise SystemExit(f"{url} is not served (status {resp.status})")
        missing = sorted({n["class_type"] for n in prompt.values()} - set(info))
        if missing:
            raise SystemExit(f"node classes missing in the host: {missing}; see {log_path}")
        t1 = time.time()
        entry, texts, events = asyncio.run(run_prompt(base_url, prompt, args.timeout))
        log(f"run finished in {time.time() - t1:.0f} s; status: {json.dumps((entry or {}).get('status', {}))[:400]}")
        video = find_video(entry, base / "output")
        if video is None or not video.exists():
            raise SystemExit(f"no video in the outputs; see {log_path}")
        log(f"output: {video} ({video.stat().st_size} bytes)")
        problems = check_mp4(video, inputs["speech_seconds"])
        problems += check_preview(base_url, entry)
        if not args.no_browser:
            if not args.chromium:
                problems.append("no Chromium found for the front-end checks: install chromium, pass --chromium PATH "
                                "or --no-browser")
            else:
                problems += browser_checks(base_url, entry, texts, video, args.chromium, work)
        window_texts = [t for _, t in texts if re.search(r"(window|segment) \d+/\d+", t)]
        if not window_texts:
            problems.append("the sampler sent no 'window k/n' (LongCat: 'segment k/n') progress text")
        else:
            log(f"{len(window_texts)} progress texts, last: {window_texts[-1]!r}")
        if not problems:
            problems += further_runs(args, base_url, base, names, inputs, prompt, video)
        leftovers = sorted(p.name for p in (base / "output").rglob("*") if p.is_file() and p != video)
        if leftovers:
            log(f"other files in the output folder: {leftovers}")
        if problems:
            log("FAILED:\n  " + "\n  ".join(problems))
        else:
            ok = True
            log("OK: the MP4 with sound came out of a real ComfyUI")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
        if not ok:
            log(f"ComfyUI log tail ({log_path}):\n" + log_path.read_text()[-5000:])
        if not (args.keep or args.workdir) and ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
