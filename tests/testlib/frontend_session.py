"""The real ComfyUI front end booted in Chromium against the stand-in server (browser tests, example builder).

`boot()` starts `FrontendServer` for one front-end version, opens a page in a Playwright browser, waits
until the pack's extensions are registered and returns a `Frontend` to drive it. The node lists match
the example workflows: the model files they name (by ComfyUI folder) and their input files.
"""
from __future__ import annotations

import os
import shutil
import sys

from . import MEDIA, REPO_ROOT, load_pack
from .frontend_server import FrontendServer
from .frontend_wheels import static_dir
from .object_info import object_info

# Files in ComfyUI's input folder the examples load, and the test media served for them.
INPUT_FILES = {
    "portrait.png": "portrait_480x832.png", "two_people.png": "two_people_832x480.jpg",
    "speech.wav": "speech_en_mono16k.wav", "speech_1.wav": "speaker_a.wav", "speech_2.wav": "speaker_b.wav",
    "new_speech.wav": "speech_en_mono16k.wav", "source_clip.mp4": "source_talk_4s.mp4",
    # WanAnimate examples
    "character.png": "portrait_480x832.png", "pose.mp4": "animate_pose_3s.mp4", "face.mp4": "animate_face_3s.mp4",
    "background.mp4": "animate_background_3s.mp4", "mask.mp4": "animate_mask_3s.mp4",
    "driving.mp4": "source_talk_4s.mp4",
}
# A distractor sorted before the Wan model ("W" < "w"): the model loader must still preselect the Wan file.
EXTRA_DIFFUSION_MODELS = ["Wan2_1-InfiniteTalk-Multi_fp16.safetensors"]
CHROMIUM_ARGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--mute-audio"]


def chromium_path() -> str:
    path = os.environ.get("WANVIDEO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium not found: install Debian's `chromium` (apt-get install chromium; .ci/run "
                           "does) or set WANVIDEO_CHROMIUM to a Chromium binary")
    return path


def model_files() -> dict[str, list[str]]:
    sys.path.insert(0, str(REPO_ROOT / "scripts" / "examples"))
    from example_models import MODELS  # the model files the examples name, by folder

    files: dict[str, list[str]] = {"input": sorted(INPUT_FILES)}
    for name, (folder, _url) in MODELS.items():
        files.setdefault(folder, []).append(name)
    files["diffusion_models"] += EXTRA_DIFFUSION_MODELS
    return files


class Frontend:
    """One version of the real front end, booted in a page against the stand-in server."""

    def __init__(self, version, server, page, errors):
        self.version, self.server, self.page, self.errors = version, server, page, errors

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def load(self, workflow: dict, settle_ms: int = 300):
        self.js("async (wf) => { await app.loadGraphData(wf); }", workflow)
        # Newer front ends open the workflow in a new tab and switch to it asynchronously: wait for its nodes.
        self.page.wait_for_function(
            "(ids) => ids.every((id) => app.graph?.getNodeById(id)) && app.graph._nodes.length === ids.length",
            arg=[n["id"] for n in workflow["nodes"]], timeout=30_000)
        self.page.wait_for_timeout(settle_ms)  # DOM widgets and previews settle

    def node_id(self, node_type: str) -> int:
        return self.js("(t) => app.graph._nodes.find((n) => n.type === t)?.id ?? null", node_type)

    def close(self):
        self.page.close()
        self.server.stop()


def boot(browser, version: str, view_files: dict | None = None, settings: dict | None = None,
         viewport=(1600, 1000)) -> Frontend:
    files = model_files()
    view = {name: MEDIA / src for name, src in INPUT_FILES.items()}
    view.update(view_files or {})
    server = FrontendServer(static_dir(version), object_info(load_pack(), files), view, model_files=files,
                            settings=settings)
    url = server.start()
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    errors = []
    page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
    # Nothing leaves the machine: the front end's calls to comfy.org and the like are refused.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    page.goto(url)
    page.wait_for_function(
        "() => window.app?.graph && app.extensions?.some((e) => e.name === 'InfiniteTalk.VideoCombinePreview')",
        timeout=180_000)
    page.wait_for_timeout(500)
    page.keyboard.press("Escape")  # whatever the first start opens (dialogs about the default graph)
    return Frontend(version, server, page, errors)
