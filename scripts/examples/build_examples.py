"""Write the example workflows: UI format in `example_workflows/` (the folder ComfyUI lists as templates,
Templates → Custom Nodes; drag-and-drop), API format in `examples/api/` (for scripts, `POST /prompt`).

    .venv/bin/python scripts/examples/build_examples.py

Each graph is described once (`example_graphs.py`); widget order, default values, sockets and links are
taken from the nodes' own declarations (ours from the pack, core ones from `tests/testlib/core_nodes.py`),
so the files stay in step with the nodes. Nodes are laid out in columns: a node placed at `(x, None)`
goes below the previous node of column x, with the size the real front end draws for its type
(`frontend_node_sizes.json`, measured by `scripts/examples/frontend_snapshots.py sizes` for the sizes asked here:
measure again after changing a node or a size), so nothing overlaps.
`tests/test_examples.py` and the browser test (`tests/js/`) check the result.
"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from example_models import MODELS
from testlib import load_pack
from testlib.workflows import all_specs, ui_to_api

TEMPLATES = REPO / "example_workflows"  # ComfyUI lists every *.json here as a template
API_EXAMPLES = REPO / "examples" / "api"  # never a template: ComfyUI reads only top-level *.json of examples/

# Body sizes (title excluded) the real front end gives each node type, previews included.
FRONTEND_SIZES_FILE = REPO / "scripts" / "examples" / "frontend_node_sizes.json"
FRONTEND_SIZES = json.loads(FRONTEND_SIZES_FILE.read_text()) if FRONTEND_SIZES_FILE.is_file() else {}
TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT: drawn above a node's pos
GAP = 30  # between a node's bottom and the next node's title in a column

class Graph:
    """A workflow under construction; nodes are added with named widget values and linked by name."""

    def __init__(self, specs):
        self.specs = specs
        self.nodes = []
        self.links = []
        self.groups = []
        self._column_bottom = {}  # x -> y where the next node of that column starts (its body)

    def add(self, node_type, pos, widgets=None, title=None, size=None, color=None, api_only=False):
        spec = self.specs[node_type]
        widgets = dict(widgets or {})
        unknown = set(widgets) - {w.name for w in spec.widgets}
        if unknown:
            raise KeyError(f"{node_type} has no widgets {sorted(unknown)}")
        values = []
        for w in spec.widgets:
            if w.name in widgets:
                value = widgets[w.name]
            elif w.default is not None:
                value = w.default
            elif w.type == "COMBO" and isinstance(w.options, list) and w.options:
                value = w.options[0]
            else:
                raise KeyError(f"{node_type}.{w.name} needs a value (no default)")
            values.append(value)
            if w.control:
                values.append("fixed")
            if w.upload in ("image", "video"):
                values.append("image")
            elif w.upload == "audio":
                values.extend([None, None])
        saved, drawn = self._sizes(node_type, spec, size)
        node = {
            "id": len(self.nodes) + 1,
            "type": node_type,
            "pos": self._place(pos, drawn),
            "size": saved,
            "flags": {},
            "order": len(self.nodes),
            "mode": 0,
            "inputs": [self._socket(i) for i in spec.sockets],
            "outputs": [{"name": name, "type": t, "slot_index": k, "links": []}
                        for k, (name, t) in enumerate(zip(spec.output_names or spec.outputs, spec.outputs, strict=False))],
            "properties": {} if spec.origin == "frontend" else {"Node name for S&R": node_type},
            "widgets_values": values,
        }
        if spec.origin == "pack":
            node["properties"]["cnr_id"] = "comfyui-wanvideo-infinitetalk"
        models = [{"name": v, "url": MODELS[v][1], "directory": MODELS[v][0]}
                  for v in widgets.values() if isinstance(v, str) and v in MODELS]
        if models:
            node["properties"]["models"] = models
        if title:
            node["title"] = title
        if color:
            node["color"], node["bgcolor"] = color
        self.nodes.append(node)
        return node

    def note(self, text, pos, size=(420, 300), markdown=True):
        node = self.add("MarkdownNote" if markdown else "Note", pos, {"text": text}, size=size,
                        color=("#432", "#653"))
        return node

    def group(self, title, bounding, color="#3f789e"):
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": list(bounding),
                            "color": color, "font_size": 24, "flags": {}})

    @staticmethod
    def _socket(spec):
        sock = {"name": spec.name, "type": spec.type, "link": None}
        if spec.section == "optional":
            sock["shape"] = 7  # the front end draws optional inputs hollow
        return sock

    @staticmethod
    def _sizes(node_type, spec, size):
        """(size saved in the file, room the front end draws it in): the saved size is the one asked for; the
        front end grows a node to its content on load (Load Video to its preview, from its saved width), and
        that drawn size was measured for the same asked size."""
        if size is None:
            rows = len(spec.widgets) + max(len(spec.sockets), len(spec.outputs))
            size = (320, 30 + 24 * rows)
        saved = [int(size[0]), int(size[1])]
        measured = FRONTEND_SIZES.get(node_type, (0, 0))
        return saved, [max(saved[0], measured[0]), max(saved[1], measured[1])]

    def _place(self, pos, size):
        x, y = pos
        if y is None:
            y = self._column_bottom.get(x, TITLE_HEIGHT)
        self._column_bottom[x] = max(self._column_bottom.get(x, 0), y + size[1] + GAP + TITLE_HEIGHT)
        return [x, y]

    def link(self, src, output, dst, input_name):
        spec_src = self.specs[src["type"]]
        names = spec_src.output_names or spec_src.outputs
        slot = names.index(output) if output in names else spec_src.outputs.index(output)
        dst_slot = next(i for i, s in enumerate(dst["inputs"]) if s["name"] == input_name)
        link_id = len(self.links) + 1
        ltype = spec_src.outputs[slot]
        self.links.append([link_id, src["id"], slot, dst["id"], dst_slot, ltype])
        src["outputs"][slot]["links"].append(link_id)
        dst["inputs"][dst_slot]["link"] = link_id
        return link_id

    def ui(self, name="example"):
        for node in self.nodes:
            for out in node["outputs"]:
                if not out["links"]:
                    out["links"] = None
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-wanvideo-infinitetalk/examples/{name}")),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": self.nodes,
            "links": self.links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": fit_view(self.nodes), "frontendVersion": "1.27.10"},
            "version": 0.4,
        }


# The canvas a template must fit when it opens: a 1366x768 laptop screen less the front end's bars (CSS px).
VIEW_SIZE = (1280, 640)
VIEW_MARGIN = 24  # px around the graph
TITLE_HEIGHT = 30  # a node's title bar sits above its `pos`


def fit_view(nodes, view=VIEW_SIZE, margin=VIEW_MARGIN) -> dict:
    """The saved view (`extra.ds`) that shows every node, notes included, when the template opens: the scale that
    fits the graph's bounding box into `view` (at most 1) and the offset that puts its top-left corner at the
    margin. The front end draws a graph point p at (p + offset) * scale."""
    x0 = min(n["pos"][0] for n in nodes)
    y0 = min(n["pos"][1] for n in nodes) - TITLE_HEIGHT
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes)
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes)
    scale = min(1.0, (view[0] - 2 * margin) / (x1 - x0), (view[1] - 2 * margin) / (y1 - y0))
    scale = int(scale * 1000) / 1000  # rounded down: the graph still fits
    return {"scale": scale, "offset": [round(margin / scale - x0, 1), round(margin / scale - y0, 1)]}


def write(name, graph):
    ui = graph.ui(name)
    api = ui_to_api(ui, graph.specs)
    TEMPLATES.mkdir(exist_ok=True)
    API_EXAMPLES.mkdir(parents=True, exist_ok=True)
    (TEMPLATES / f"{name}.json").write_text(json.dumps(ui, indent=1, ensure_ascii=False) + "\n")
    (API_EXAMPLES / f"{name}_api.json").write_text(json.dumps(api, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote example_workflows/{name}.json and examples/api/{name}_api.json ({len(ui['nodes'])} nodes)")


def main():
    specs = all_specs(load_pack().NODE_CLASS_MAPPINGS)
    from example_graphs import GRAPHS

    for name, build in GRAPHS.items():
        graph = Graph(specs)
        build(graph)
        write(name, graph)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
