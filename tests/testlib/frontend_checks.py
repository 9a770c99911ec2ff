"""In-page checks of the pack in the real ComfyUI front end, shared by the browser tests (tests/js) and
`scripts/comfyui/comfyui_e2e.py` (the same checks against a real ComfyUI). Each constant is a JavaScript function
for Playwright's `page.evaluate(expression, arg)`; it reads the front end's own objects (`app`, `LiteGraph`).
"""
from __future__ import annotations

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


PLAYER_STATE = """(id) => {
  const node = app.graph.getNodeById(id);
  const video = node?.infinitetalkPlayer?.video;
  if (!video) return null;
  const r = video.getBoundingClientRect();
  return { width: r.width, height: r.height, visible: video.checkVisibility?.() ?? true, controls: video.controls,
           muted: video.muted, volume: video.volume, src: video.currentSrc || video.src, ready: node.infinitetalkPlayer.ready,
           caption: node.infinitetalkPlayer.caption.textContent, videoWidth: video.videoWidth,
           videoHeight: video.videoHeight };
}"""

VISIBLE_VIDEOS = """(name) => [...document.querySelectorAll('video')].filter((v) => (v.currentSrc || v.src).includes(name))
  .map((v) => { const r = v.getBoundingClientRect(); return { w: r.width, h: r.height,
    visible: v.checkVisibility?.({ visibilityProperty: true, opacityProperty: true }) ?? true }; })
  .filter((v) => v.w > 0 && v.h > 0 && v.visible)"""


PLAY_WITH_SOUND = """async (id) => {
  const video = app.graph.getNodeById(id).infinitetalkPlayer.video;
  await video.play();
  const t0 = performance.now();
  while ((video.currentTime < 0.5 || !video.webkitAudioDecodedByteCount) && performance.now() - t0 < 15000)
    await new Promise((r) => setTimeout(r, 100));
  video.pause();
  return { time: video.currentTime, audioBytes: video.webkitAudioDecodedByteCount,
           videoBytes: video.webkitVideoDecodedByteCount, error: video.error?.message ?? null };
}"""

# A sampler and a model loader as a user adds them: the values they start with.
NEW_NODE_DEFAULTS = """() => {
  const sampler = LiteGraph.createNode('InfiniteTalkSampler');
  app.graph.add(sampler);
  const loader = LiteGraph.createNode('InfiniteTalkModelLoader');
  app.graph.add(loader);
  const value = (n, name) => n.widgets.find((w) => w.name === name)?.value;
  return { control: value(sampler, 'control_after_generate'), model: value(loader, 'model'),
           adapter: value(loader, 'infinitetalk') };
}"""

# Drop a file (fetched from the server) onto the canvas, as a user drags it from the desktop.
DROP_FILE = """async ({ url, name, type }) => {
  const blob = await (await fetch(url)).blob();
  const data = new DataTransfer();
  data.items.add(new File([blob], name, { type }));
  const target = document.querySelector('#graph-canvas') ?? document.body;
  target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
}"""

# The API prompt the front end builds from the loaded graph (what Queue posts to /prompt).
GRAPH_TO_PROMPT = """async () => (await app.graphToPrompt()).output"""

# Widgets the front end adds to its own preview nodes and sends along; the server ignores them.
FRONT_END_ONLY_INPUTS = {"audioUI", "video-preview"}


def prompt_differences(built: dict, twin: dict) -> list[str]:
    """Where the prompt the front end built from a UI workflow differs from its API twin (examples/api)."""
    found = []
    for node_id in sorted(set(built) | set(twin), key=str):
        ours, theirs = built.get(node_id), twin.get(node_id)
        if ours is None or theirs is None:
            found.append(f"node {node_id}: only in the {'API twin' if ours is None else 'front end prompt'}")
            continue
        if ours["class_type"] != theirs["class_type"]:
            found.append(f"node {node_id}: {ours['class_type']} in the front end, {theirs['class_type']} in the twin")
            continue
        for name in sorted((set(ours["inputs"]) | set(theirs["inputs"])) - FRONT_END_ONLY_INPUTS):
            if ours["inputs"].get(name) != theirs["inputs"].get(name):
                found.append(f"node {node_id} ({ours['class_type']}).{name}: {ours['inputs'].get(name)!r} in the "
                             f"front end, {theirs['inputs'].get(name)!r} in the twin")
    return found

# Nodes (title included) not wholly inside the canvas as the workflow opened: the saved view must show all of it.
NODES_OUT_OF_VIEW = """() => {
  const ds = app.canvas.ds, el = app.canvas.canvas;
  const w = el.clientWidth / ds.scale, h = el.clientHeight / ds.scale, x0 = -ds.offset[0], y0 = -ds.offset[1];
  const title = LiteGraph.NODE_TITLE_HEIGHT;
  return app.graph._nodes.filter((n) => n.pos[0] < x0 || n.pos[1] - title < y0 || n.pos[0] + n.size[0] > x0 + w
    || n.pos[1] + n.size[1] > y0 + h).map((n) => `${n.title} (${n.type}#${n.id}) at ${n.pos.map(Math.round)}`);
}"""
