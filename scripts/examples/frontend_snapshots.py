"""Measure node sizes in the real ComfyUI front end, and take the templates' thumbnails.

    .venv/bin/python scripts/examples/frontend_snapshots.py sizes        # -> scripts/examples/frontend_node_sizes.json
    .venv/bin/python scripts/examples/build_examples.py                   # lays the examples out with those sizes
    .venv/bin/python scripts/examples/frontend_snapshots.py thumbnails   # -> example_workflows/<name>.jpg

Both boot the front-end versions of the browser tests (`tests/testlib/frontend_wheels.py`) in Debian's
Chromium against the tests' stand-in server, load every example workflow and read what the front end
draws: `sizes` records, per node type, the largest body size (previews included) the front end gives
it after loading any example, in any version, Vue nodes off or on (for the size the example asks; see build_examples.py);
`thumbnails` saves a JPEG of each loaded example, fitted to the view, as ComfyUI's template browser
shows next to the name.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from testlib.frontend_session import CHROMIUM_ARGS, boot, chromium_path
from testlib.frontend_wheels import PINNED_BY_COMFYUI, VERSIONS

TEMPLATES = REPO / "example_workflows"
SIZES = REPO / "scripts" / "examples" / "frontend_node_sizes.json"

# What the front end draws after loading: the node's size (it grows nodes saved smaller than their
# content, e.g. Load Video to its preview) and at least the height its widgets need.
MEASURE = """() => app.graph._nodes.map((n) => ({ type: n.type, size: [n.size[0], Math.max(n.size[1], n.computeSize()[1])] }))"""

# Fit the whole graph into the canvas, as the front end's "fit view" does.
FIT_VIEW = """() => {
  const nodes = app.graph._nodes;
  const title = LiteGraph.NODE_TITLE_HEIGHT;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of nodes) {
    x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - title);
    x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
  }
  const canvas = app.canvas.canvas;
  const w = canvas.clientWidth, h = canvas.clientHeight, margin = 20;
  const scale = Math.min((w - 2 * margin) / (x1 - x0), (h - 2 * margin) / (y1 - y0));
  app.canvas.ds.scale = scale;
  app.canvas.ds.offset = [margin / scale - x0 + ((w - 2 * margin) / scale - (x1 - x0)) / 2, margin / scale - y0];
  app.canvas.setDirty(true, true);
}"""

# Draw nodes in full detail (titles, widget names and values) at the thumbnail's zoom, without the
# canvas statistics in the corner.
THUMBNAIL_SETTINGS = {"LiteGraph.Canvas.MinFontSizeForLOD": 0, "Comfy.Graph.CanvasInfo": False}

# Hide the front end's menus and panels so the thumbnail shows the graph only.
THUMBNAIL_CSS = """
body > *:not(#vue-app), .side-tool-bar-container, .comfyui-menu, .p-toast, .graph-canvas-panel,
.comfyui-body-top, .comfyui-body-left, .comfyui-body-right, .comfyui-body-bottom, .comfy-menu,
.minimap-main-container, .splitter-overlay-root > *:not(.graph-canvas-container),
.workflow-tab * { visibility: hidden !important; }
"""


def measure(browser) -> dict[str, list[int]]:
    sizes: dict[str, list[int]] = {}
    for version, vue in ((v, vue) for v in VERSIONS for vue in (False, True)):
        fe = boot(browser, version, settings={"Comfy.VueNodes.Enabled": vue})  # Vue nodes draw some nodes taller
        try:
            for path in sorted(TEMPLATES.glob("*.json")):
                fe.load(json.loads(path.read_text()), settle_ms=1500)  # previews (image, audio, video) load
                for entry in fe.js(MEASURE):
                    w, h = (int(round(v)) for v in entry["size"])
                    old = sizes.get(entry["type"], [0, 0])
                    sizes[entry["type"]] = [max(old[0], w), max(old[1], h)]
        finally:
            fe.close()
        print(f"measured {len(sizes)} node types in front end {version} (Vue nodes {'on' if vue else 'off'})")
    return dict(sorted(sizes.items()))


def thumbnails(browser) -> None:
    fe = boot(browser, PINNED_BY_COMFYUI, viewport=(960, 600), settings=THUMBNAIL_SETTINGS)
    try:
        fe.page.add_style_tag(content=THUMBNAIL_CSS)
        for path in sorted(TEMPLATES.glob("*.json")):
            fe.load(json.loads(path.read_text()), settle_ms=1500)
            fe.js(FIT_VIEW)
            fe.page.wait_for_timeout(300)
            out = path.with_suffix(".jpg")
            fe.page.screenshot(path=str(out), type="jpeg", quality=80)
            print(f"wrote {out.relative_to(REPO)}")
    finally:
        fe.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("sizes", "thumbnails"))
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            if args.what == "sizes":
                sizes = measure(browser)
                SIZES.write_text("{\n" + ",\n".join(f' "{k}": {json.dumps(v)}' for k, v in sizes.items()) + "\n}\n")
                print(f"wrote {SIZES.relative_to(REPO)}")
            else:
                thumbnails(browser)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
