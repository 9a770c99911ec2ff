"""Fixtures for the real-browser tests: the real ComfyUI front end (two versions) in Debian's Chromium.

- `rendered_video`: a real MP4 with sound written by our Video Combine node (the single-speaker example
  embedded as its workflow metadata) and the UI output the node returned for it;
- `frontend`: per front-end version, Vue nodes off and on, the stand-in server (`testlib/frontend_server.py`) and one booted page;
- failing tests leave a screenshot in `test-artifacts/browser/` (git-ignored; CI keeps it).

Chromium is driven by Playwright through `executable_path` (no browser download); `.ci/run` installs
Debian's `chromium`. Set WANVIDEO_CHROMIUM to use another binary.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from testlib import MEDIA, REPO_ROOT
from testlib.frontend_session import CHROMIUM_ARGS, boot, chromium_path
from testlib.frontend_wheels import VERSIONS, FrontendUnavailable

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
TEMPLATES = REPO_ROOT / "example_workflows"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = getattr(item, "browser_page", None)
        if page is not None:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.name)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
                report.sections.append(("screenshot", f"could not save a screenshot: {exc}"))


def render_video(tmp_path_factory, size, prefix):
    """Our Video Combine node's real output: an H.264 + AAC MP4 (1.6 s of speech) of the portrait resized to
    `size` (width, height) with the single-speaker example embedded, and its UI message."""
    from wanvideo_infinitetalk_pack.nodes.video_combine import InfiniteTalkVideoCombine

    out = tmp_path_factory.mktemp("comfy_output")
    old = {k: os.environ.get(k) for k in ("WANVIDEO_OUTPUT_DIR", "WANVIDEO_TEMP_DIR")}
    os.environ["WANVIDEO_OUTPUT_DIR"] = str(out)
    os.environ["WANVIDEO_TEMP_DIR"] = str(tmp_path_factory.mktemp("comfy_temp"))
    try:
        from PIL import Image

        portrait = np.asarray(Image.open(MEDIA / "portrait_480x832.png").convert("RGB").resize(size))
        frames = np.stack([np.roll(portrait, shift=i, axis=1) for i in range(40)]).astype(np.float32) / 255.0
        speech, rate = sf.read(MEDIA / "speech_en_mono16k.wav", dtype="float32", frames=int(1.6 * 16000))
        audio = {"waveform": torch.from_numpy(speech)[None, None], "sample_rate": rate}
        workflow = json.loads((TEMPLATES / "infinitetalk_single_speaker.json").read_text())
        result = InfiniteTalkVideoCombine().combine(
            frame_rate=25.0, filename_prefix=f"InfiniteTalk/{prefix}", images=torch.from_numpy(frames), audio=audio,
            prompt={}, extra_pnginfo={"workflow": workflow}, unique_id="16")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ui = json.loads(json.dumps(result["ui"]))  # what the websocket carries (tuples become lists)
    return {"path": Path(result["result"][0]), "ui": ui, "workflow": workflow}


@pytest.fixture(scope="session")
def rendered_video(tmp_path_factory):
    """A portrait video (240x416), as InfiniteTalk makes from the example portrait."""
    return render_video(tmp_path_factory, (240, 416), "browser")


@pytest.fixture(scope="session")
def rendered_landscape(tmp_path_factory):
    """A landscape video (416x240): the node must fit its aspect, not keep a portrait guess."""
    return render_video(tmp_path_factory, (416, 240), "landscape")


@pytest.fixture(scope="session")
def playwright_browser():
    from playwright.sync_api import sync_playwright

    try:
        executable = chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module", params=[(v, vue) for v in VERSIONS for vue in (False, True)],
                ids=lambda p: f"frontend-{p[0]}-vue-{'on' if p[1] else 'off'}")
def frontend(request, playwright_browser, rendered_video, rendered_landscape):
    version, vue = request.param
    files = {r["path"].name: r["path"] for r in (rendered_video, rendered_landscape)}
    try:
        fe = boot(playwright_browser, version, files, settings={"Comfy.VueNodes.Enabled": vue})
        fe.vue = vue
    except FrontendUnavailable as exc:
        pytest.fail(str(exc))
    yield fe
    fe.close()


@pytest.fixture
def fe(frontend, request):
    """The booted front end, with the page registered for a screenshot if the test fails."""
    request.node.browser_page = frontend.page
    return frontend
