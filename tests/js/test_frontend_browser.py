"""The pack in the REAL ComfyUI front end (1.27.10, which ComfyUI 0.3.64 pins, and the newest checked), in Chromium.

What a user sees: every template loads with no missing node, broken link, invalid widget value or
overlapping nodes; after a run the Video Combine node shows a visible player with controls and sound
that plays our MP4 with its audio decoded; the sampler's badge follows the progress messages; a new
sampler keeps its seed between queues; dropping the MP4 onto the page restores its workflow.
"""
import json

import pytest
from testlib import REPO_ROOT

TEMPLATES = REPO_ROOT / "example_workflows"

TEMPLATE_FILES = sorted(TEMPLATES.glob("*.json"))

# Problems the front end has with the loaded graph, read from its own objects.
GRAPH_PROBLEMS = """(wf) => {
  const problems = [];
  const graph = app.graph;
  for (const saved of wf.nodes) {
    if (!LiteGraph.registered_node_types[saved.type]) problems.push(`missing node type ${saved.type}`);
    const node = graph.getNodeById(saved.id);
    if (!node) { problems.push(`node ${saved.id} (${saved.type}) was not created`); continue; }
    if (node.has_errors) problems.push(`node ${saved.id} (${saved.type}) has errors`);
  }
  const links = graph.links instanceof Map ? [...graph.links.values()] : Object.values(graph.links ?? {});
  if (links.length !== wf.links.length) problems.push(`${links.length} links, the file has ${wf.links.length}`);
  for (const link of links) {
    const from = graph.getNodeById(link.origin_id), to = graph.getNodeById(link.target_id);
    if (!from || !to) { problems.push(`link ${link.id} joins a missing node`); continue; }
    if (to.inputs?.[link.target_slot]?.link !== link.id) problems.push(`link ${link.id}: input does not hold it`);
    if (!(from.outputs?.[link.origin_slot]?.links ?? []).includes(link.id)) problems.push(`link ${link.id}: output does not list it`);
  }
  for (const node of graph._nodes) {
    for (const w of node.widgets ?? []) {
      const where = `${node.type}#${node.id}.${w.name}`;
      const values = w.options?.values;
      if (w.type === "combo" && Array.isArray(values) && !values.includes(w.value)) problems.push(`${where}: ${w.value} not in the list`);
      if (w.type === "number" && typeof w.value === "number") {
        if (w.options?.min !== undefined && w.value < w.options.min) problems.push(`${where}: ${w.value} < min`);
        if (w.options?.max !== undefined && w.value > w.options.max) problems.push(`${where}: ${w.value} > max`);
      }
    }
  }
  return problems;
}"""

# Each node's drawn rectangle (title included): its size after loading (the front end grows nodes saved
# smaller than their content), at least as tall as its widgets need.
NODE_RECTS = """() => app.graph._nodes.map((n) => {
  const title = n.constructor.title_mode === LiteGraph.NO_TITLE ? 0 : LiteGraph.NODE_TITLE_HEIGHT;
  const w = n.size[0], h = Math.max(n.size[1], n.computeSize()[1]);
  return { id: n.id, type: n.type, title: n.title, x: n.pos[0], y: n.pos[1] - title, w, h: h + title };
})"""


def overlaps(rects):
    found = []
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                found.append(f"{a['title']} ({a['type']}#{a['id']}) overlaps {b['title']} ({b['type']}#{b['id']})")
    return found


def our_errors(fe):
    return [e for e in fe.errors if "/extensions/ComfyUI-WanVideo-InfiniteTalk/" in e]


def test_the_front_end_lists_the_templates(fe):
    listed = fe.js("async () => (await (await fetch('/api/workflow_templates')).json())")
    assert listed == {"ComfyUI-WanVideo-InfiniteTalk": [p.stem for p in TEMPLATE_FILES]}


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_loads_cleanly_without_overlaps(fe, path):
    wf = json.loads(path.read_text())
    fe.load(wf, settle_ms=1500)  # previews (image, audio, video) load and resize their nodes
    assert fe.js(GRAPH_PROBLEMS, wf) == []
    assert overlaps(fe.js(NODE_RECTS)) == []
    assert our_errors(fe) == []


def show_output(fe, node_id, ui):
    fe.server.send_json("executed", {"node": str(node_id), "display_node": str(node_id), "output": ui,
                                     "prompt_id": "browser-test"})


PLAYER_STATE = """(id) => {
  const node = app.graph.getNodeById(id);
  const video = node?.infinitetalkPlayer?.video;
  if (!video) return null;
  const r = video.getBoundingClientRect();
  return { width: r.width, height: r.height, visible: video.checkVisibility?.() ?? true, controls: video.controls,
           muted: video.muted, volume: video.volume, src: video.currentSrc || video.src,
           caption: node.infinitetalkPlayer.caption.textContent };
}"""

VISIBLE_VIDEOS = """(name) => [...document.querySelectorAll('video')].filter((v) => (v.currentSrc || v.src).includes(name))
  .map((v) => { const r = v.getBoundingClientRect(); return { w: r.width, h: r.height, visible: v.checkVisibility?.() ?? true }; })
  .filter((v) => v.w > 0 && v.h > 0 && v.visible)"""


def test_video_combine_shows_a_visible_player_that_plays_with_sound(fe, rendered_video):
    fe.load(rendered_video["workflow"])
    node_id = fe.node_id("InfiniteTalkVideoCombine")
    show_output(fe, node_id, rendered_video["ui"])
    fe.page.wait_for_function(f"() => ({PLAYER_STATE})({node_id})?.src", timeout=20_000)
    fe.page.wait_for_timeout(500)
    state = fe.js(PLAYER_STATE, node_id)
    name = rendered_video["path"].name
    assert state["width"] > 100 and state["height"] > 100, f"the player is drawn {state['width']}x{state['height']} px"
    assert state["visible"] and state["controls"] and not state["muted"] and state["volume"] > 0
    details = rendered_video["ui"]["infinitetalk_video"][0]
    assert name in state["caption"] and f"{details['duration']:.2f} s" in state["caption"]
    assert f"{details['width']}×{details['height']}" in state["caption"]
    assert len(fe.js(VISIBLE_VIDEOS, name)) == 1, "exactly one player shows the video"
    played = fe.page.evaluate(f"""async () => {{
      const video = app.graph.getNodeById({node_id}).infinitetalkPlayer.video;
      await video.play();
      const t0 = performance.now();
      while ((video.currentTime < 0.5 || !video.webkitAudioDecodedByteCount) && performance.now() - t0 < 15000)
        await new Promise((r) => setTimeout(r, 100));
      video.pause();
      return {{ time: video.currentTime, audioBytes: video.webkitAudioDecodedByteCount,
               videoBytes: video.webkitVideoDecodedByteCount, error: video.error?.message ?? null }};
    }}""")
    assert played["error"] is None and played["time"] >= 0.5, played
    assert played["audioBytes"] > 0, f"no audio decoded: {played}"
    assert our_errors(fe) == []


def test_stock_preview_stays_when_our_player_has_nothing_to_show(fe, rendered_video):
    """An output without our details (e.g. from an older version of the node) keeps ComfyUI's own preview."""
    fe.load(rendered_video["workflow"])
    node_id = fe.node_id("InfiniteTalkVideoCombine")
    stock_only = {k: v for k, v in rendered_video["ui"].items() if k != "infinitetalk_video"}
    show_output(fe, node_id, stock_only)
    name = rendered_video["path"].name
    fe.page.wait_for_function(f"() => ({VISIBLE_VIDEOS})({json.dumps(name)}).length > 0", timeout=30_000)
    assert fe.js(PLAYER_STATE, node_id) is None


def test_badge_follows_the_progress_messages(fe, rendered_video):
    fe.load(rendered_video["workflow"])
    sampler = fe.node_id("InfiniteTalkSampler")
    badge = f"() => app.graph.getNodeById({sampler}).infinitetalkProgress?.parsed?.badge ?? null"
    fe.server.send_json("execution_start", {"prompt_id": "browser-test"})
    fe.server.send_progress_text(sampler, "window 2/3 · step 4/6")
    fe.page.wait_for_function(f"() => ({badge})() === '2/3 · 4/6'", timeout=10_000)
    fe.server.send_progress_text(sampler, "window 3/3 · step 1/6")
    fe.page.wait_for_function(f"() => ({badge})() === '3/3 · 1/6'", timeout=10_000)


def test_a_new_sampler_keeps_its_seed_and_a_new_loader_picks_the_wan_model(fe):
    created = fe.js("""() => {
      const sampler = LiteGraph.createNode('InfiniteTalkSampler');
      app.graph.add(sampler);
      const loader = LiteGraph.createNode('InfiniteTalkModelLoader');
      app.graph.add(loader);
      const value = (n, name) => n.widgets.find((w) => w.name === name)?.value;
      return { control: value(sampler, 'control_after_generate'), model: value(loader, 'model'),
               adapter: value(loader, 'infinitetalk') };
    }""")
    assert created["control"] == "fixed", "a rerun after Cancel must resume: the seed stays fixed by default"
    assert created["model"] == "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"
    assert created["adapter"] == "none"


def test_dropping_the_mp4_restores_its_workflow(fe, rendered_video):
    fe.js("() => app.graph.clear()")
    name = rendered_video["path"].name
    fe.page.evaluate(f"""async () => {{
      const blob = await (await fetch('/api/view?filename={name}&type=output&subfolder=InfiniteTalk')).blob();
      const file = new File([blob], {json.dumps(name)}, {{ type: 'video/mp4' }});
      const data = new DataTransfer();
      data.items.add(file);
      const target = document.querySelector('#graph-canvas') ?? document.body;
      target.dispatchEvent(new DragEvent('drop', {{ dataTransfer: data, bubbles: true, cancelable: true }}));
    }}""")
    expected = sorted(n["type"] for n in rendered_video["workflow"]["nodes"])
    fe.page.wait_for_function(f"() => app.graph._nodes.length === {len(expected)}", timeout=20_000)
    assert sorted(fe.js("() => app.graph._nodes.map((n) => n.type)")) == expected
