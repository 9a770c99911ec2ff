"""Node declarations and workflow checks shared by the example tests and `scripts/examples/build_examples.py`.

ComfyUI saves a graph two ways:
- UI format (what you drag into the browser): `nodes` with `inputs` (sockets), `outputs`,
  `widgets_values` (the widget values in the order the front end creates the widgets) and
  `links` `[link_id, from_node, from_slot, to_node, to_slot, type]`.
- API format (what `POST /prompt` takes): `{node_id: {"class_type", "inputs": {name: value or [node_id, slot]}}}`.

`NodeSpec` turns a node's `INPUT_TYPES()` (our classes) or the recorded core declarations
(`core_nodes.py`) into one form, and reproduces the front end's widget rules (ComfyUI front end
1.27): INT/FLOAT/STRING/BOOLEAN/COMBO inputs are widgets unless `forceInput`; an INT named `seed` /
`noise_seed` or with `control_after_generate` carries a second value ("fixed", "randomize", ...);
an image/video upload combo carries an extra "image" value, an audio upload combo two extra values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .core_nodes import CORE_NODES, FRONTEND_ONLY

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}

# File extensions a file-list combo accepts, by ComfyUI folder.
FOLDER_EXTENSIONS = {
    "input": (".png", ".jpg", ".jpeg", ".webp", ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".mp4", ".webm", ".mov", ".mkv"),
    "default": (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf"),
}


@dataclass
class InputSpec:
    name: str
    type: str
    section: str = "required"
    options: object = None  # COMBO: list of choices, or {"files": folder}
    min: float | None = None
    max: float | None = None
    step: float | None = None
    default: object = None
    force_input: bool = False
    control: bool = False  # seed-like: an extra "control after generate" widget value
    upload: str | None = None  # "image" / "audio" / "video"

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.force_input

    @property
    def extra_values(self) -> int:
        n = 1 if self.control else 0
        if self.upload in ("image", "video"):
            n += 1
        elif self.upload == "audio":
            n += 2
        return n

    def check_value(self, value, where: str) -> list[str]:
        """Problems with `value` for this widget (empty list when it is valid)."""
        t = self.type
        if t == "INT":
            if isinstance(value, bool) or not isinstance(value, int):
                return [f"{where}: {value!r} is not an integer"]
        elif t == "FLOAT":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return [f"{where}: {value!r} is not a number"]
        elif t == "BOOLEAN":
            if not isinstance(value, bool):
                return [f"{where}: {value!r} is not a boolean"]
        elif t == "STRING":
            if not isinstance(value, str):
                return [f"{where}: {value!r} is not a string"]
        elif t == "COMBO":
            if isinstance(self.options, dict):
                if value in self.options.get("also", ()):
                    return []  # a fixed choice beside the files, e.g. "none"
                folder = self.options["files"]
                exts = FOLDER_EXTENSIONS.get(folder, FOLDER_EXTENSIONS["default"])
                if not isinstance(value, str) or not value:
                    return [f"{where}: {value!r} is not a file name"]
                if ".." in value.replace("\\", "/").split("/") or value.startswith("/"):
                    return [f"{where}: {value!r} escapes the {folder} folder"]
                # A model folder may also hold a Hugging Face folder (no extension), e.g. wav2vec2.
                if "." in value.rsplit("/", 1)[-1] and not value.lower().endswith(exts):
                    return [f"{where}: {value!r} is not a {'/'.join(exts)} file for models/{folder}"]
            elif value not in (self.options or []):
                return [f"{where}: {value!r} is not one of {self.options}"]
        if t in ("INT", "FLOAT"):
            if self.min is not None and value < self.min:
                return [f"{where}: {value} is below the minimum {self.min}"]
            if self.max is not None and value > self.max:
                return [f"{where}: {value} is above the maximum {self.max}"]
        return []


@dataclass
class NodeSpec:
    node_id: str
    inputs: list[InputSpec]
    outputs: list[str]
    output_names: list[str] = field(default_factory=list)
    output_node: bool = False
    origin: str = "core"  # "core", "pack" or "frontend"

    def input(self, name):
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None

    @property
    def widgets(self) -> list[InputSpec]:
        return [i for i in self.inputs if i.is_widget]

    @property
    def sockets(self) -> list[InputSpec]:
        return [i for i in self.inputs if not i.is_widget]

    def widget_value_count(self) -> int:
        return sum(1 + w.extra_values for w in self.widgets)

    def split_widget_values(self, values):
        """Map the UI `widgets_values` list to {widget name: value}, checking the extra values."""
        problems, named, i = [], {}, 0
        for w in self.widgets:
            if i >= len(values):
                break
            named[w.name] = values[i]
            i += 1
            for extra in range(w.extra_values):
                if i >= len(values):
                    break
                v = values[i]
                if w.control and extra == 0 and v not in CONTROL_VALUES:
                    problems.append(f"{self.node_id}.{w.name}: control value {v!r} is not one of {sorted(CONTROL_VALUES)}")
                i += 1
        return named, problems


def _input_from_decl(node_id, name, decl, section, origin):
    kind = decl[0]
    opts = dict(decl[1]) if len(decl) > 1 and isinstance(decl[1], dict) else {}
    kind = getattr(kind, "value", kind)
    if isinstance(kind, (list, tuple)):
        choices = list(kind)
        options = choices if choices or origin == "core" else {"files": "default"}
        kind = "COMBO"
    elif kind == "COMBO":
        choices = list(opts.get("options", []))
        options = choices if choices else {"files": "default"}
    else:
        options = None
    upload = None
    for key, val in (("image_upload", "image"), ("audio_upload", "audio"), ("video_upload", "video")):
        if opts.get(key):
            upload = val
    control = kind == "INT" and (bool(opts.get("control_after_generate")) or name in ("seed", "noise_seed"))
    return InputSpec(name=name, type=kind, section=section, options=options, min=opts.get("min"),
                     max=opts.get("max"), step=opts.get("step"), default=opts.get("default"),
                     force_input=bool(opts.get("forceInput")), control=control, upload=upload)


def spec_from_class(node_id: str, cls) -> NodeSpec:
    """A NodeSpec from a V1 node class (ours), read from its INPUT_TYPES().

    Core-node test doubles (`CORE_SPEC = True`) get the recorded core declaration instead.
    """
    if getattr(cls, "CORE_SPEC", False):
        return spec_from_core(node_id)
    declared = cls.INPUT_TYPES()
    inputs = []
    for section in ("required", "optional"):
        for name, decl in declared.get(section, {}).items():
            inputs.append(_input_from_decl(node_id, name, decl, section, "pack"))
    outputs = [getattr(t, "value", t) for t in cls.RETURN_TYPES]
    outputs = ["COMBO" if isinstance(t, (list, tuple)) else t for t in outputs]
    names = list(getattr(cls, "RETURN_NAMES", None) or outputs)
    return NodeSpec(node_id, inputs, outputs, names, bool(getattr(cls, "OUTPUT_NODE", False)), "pack")


def spec_from_core(node_id: str) -> NodeSpec:
    data = CORE_NODES[node_id]
    inputs = []
    for entry in data["inputs"]:
        upload = next((u for k, u in (("image_upload", "image"), ("audio_upload", "audio"),
                                      ("video_upload", "video")) if entry.get(k)), None)
        kind = entry["type"]
        inputs.append(InputSpec(
            name=entry["name"], type=kind, section=entry["section"], options=entry.get("options"),
            min=entry.get("min"), max=entry.get("max"), step=entry.get("step"), default=entry.get("default"),
            force_input=bool(entry.get("forceInput")), upload=upload,
            control=kind == "INT" and (bool(entry.get("control_after_generate")) or entry["name"] in ("seed", "noise_seed")),
        ))
    return NodeSpec(node_id, inputs, list(data["outputs"]), list(data["output_names"]), data["output_node"], "core")


def spec_frontend(node_id: str) -> NodeSpec:
    return NodeSpec(node_id, [InputSpec(name=n, type="STRING") for n in FRONTEND_ONLY[node_id]], [], [], False, "frontend")


PROBE_FILE = "__infinitetalk_probe__.safetensors"


def _probe_file_combos(pack_classes: dict) -> dict[str, dict[str, list]]:
    """Which of our combos list model files: call INPUT_TYPES() with the host adapter reporting one
    probe file in every folder. Returns {node_id: {input: [fixed extra choices such as "none"]}}."""
    import sys

    hosts = {getattr(sys.modules.get(cls.__module__), "host", None) for cls in pack_classes.values()} - {None}
    saved = [(h, name, getattr(h, name)) for h in hosts for name in ("model_files", "model_subfolders")
             if hasattr(h, name)]
    try:
        for h, name, _ in saved:
            setattr(h, name, (lambda *a, **k: [PROBE_FILE]) if name == "model_files" else (lambda *a, **k: []))
        found = {}
        for node_id, cls in pack_classes.items():
            for section in ("required", "optional"):
                for name, decl in cls.INPUT_TYPES().get(section, {}).items():
                    if isinstance(decl[0], (list, tuple)) and PROBE_FILE in decl[0]:
                        found.setdefault(node_id, {})[name] = [c for c in decl[0] if c != PROBE_FILE]
        return found
    finally:
        for h, name, original in saved:
            setattr(h, name, original)


def specs_for_classes(classes: dict) -> dict[str, NodeSpec]:
    """NodeSpecs of node classes (ours read from INPUT_TYPES with file combos probed; core doubles from data)."""
    ours = {n: c for n, c in classes.items() if not getattr(c, "CORE_SPEC", False)}
    probed = _probe_file_combos(ours)
    specs = {}
    for node_id, cls in classes.items():
        spec = spec_from_class(node_id, cls)
        for name, extras in probed.get(node_id, {}).items():
            spec.input(name).options = {"files": "default", "also": extras}
        specs[node_id] = spec
    return specs


def all_specs(pack_classes: dict) -> dict[str, NodeSpec]:
    specs = {n: spec_from_core(n) for n in CORE_NODES}
    specs.update({n: spec_frontend(n) for n in FRONTEND_ONLY})
    specs.update(specs_for_classes(pack_classes))
    return specs


def types_compatible(out_type: str, in_type: str) -> bool:
    if "*" in (out_type, in_type):
        return True
    return in_type in out_type.split(",") or out_type in in_type.split(",")


# --------------------------------------------------------------------------- UI format

def check_ui_workflow(wf: dict, specs: dict[str, NodeSpec]) -> list[str]:
    """Every problem the front end or the server would have with a UI-format workflow."""
    problems = []
    if wf.get("version") != 0.4:
        problems.append(f"version is {wf.get('version')!r}, expected 0.4")
    nodes = {}
    for node in wf.get("nodes", []):
        if node["id"] in nodes:
            problems.append(f"duplicate node id {node['id']}")
        nodes[node["id"]] = node
    links = {}
    for link in wf.get("links", []):
        if len(link) != 6:
            problems.append(f"link {link} does not have 6 fields")
            continue
        if link[0] in links:
            problems.append(f"duplicate link id {link[0]}")
        links[link[0]] = link
    if nodes and wf.get("last_node_id", -1) < max(nodes):
        problems.append("last_node_id is below the largest node id")
    if links and wf.get("last_link_id", -1) < max(links):
        problems.append("last_link_id is below the largest link id")

    for nid, node in nodes.items():
        where = f"node {nid} ({node.get('type')})"
        spec = specs.get(node.get("type"))
        if spec is None:
            problems.append(f"{where}: unknown node type")
            continue
        # Sockets (and widgets turned into sockets)
        for slot, inp in enumerate(node.get("inputs", [])):
            decl = spec.input(inp["name"])
            if decl is None:
                problems.append(f"{where}: no input named {inp['name']!r}")
                continue
            if decl.is_widget and "widget" not in inp:
                problems.append(f"{where}: widget input {inp['name']!r} listed as a socket without 'widget'")
            if not types_compatible(inp["type"], decl.type if decl.type != "COMBO" else "COMBO"):
                problems.append(f"{where}: input {inp['name']!r} has type {inp['type']}, declared {decl.type}")
            if inp.get("link") is not None:
                link = links.get(inp["link"])
                if link is None:
                    problems.append(f"{where}: input {inp['name']!r} points at missing link {inp['link']}")
                elif link[3] != nid or link[4] != slot:
                    problems.append(f"{where}: link {link[0]} targets node {link[3]} slot {link[4]}, not this input")
        listed = {i["name"] for i in node.get("inputs", [])}
        for decl in spec.sockets:
            if decl.section == "required":
                inp = next((i for i in node.get("inputs", []) if i["name"] == decl.name), None)
                if inp is None or inp.get("link") is None:
                    problems.append(f"{where}: required input {decl.name!r} is not connected")
            elif decl.name not in listed and spec.origin != "frontend":
                problems.append(f"{where}: optional input {decl.name!r} missing from the node's inputs")
        # Outputs
        outs = node.get("outputs", [])
        if len(outs) != len(spec.outputs):
            problems.append(f"{where}: {len(outs)} outputs, the node declares {len(spec.outputs)}")
        for slot, out in enumerate(outs[: len(spec.outputs)]):
            if out["type"] != spec.outputs[slot]:
                problems.append(f"{where}: output {slot} has type {out['type']}, declared {spec.outputs[slot]}")
            for lid in out.get("links") or []:
                link = links.get(lid)
                if link is None or link[1] != nid or link[2] != slot:
                    problems.append(f"{where}: output {slot} lists link {lid} that does not start here")
        # Widgets
        values = node.get("widgets_values", [])
        if isinstance(values, dict):
            problems.append(f"{where}: widgets_values is a dict; this checker expects the list form")
            continue
        expected = spec.widget_value_count()
        if len(values) != expected:
            problems.append(f"{where}: {len(values)} widget values, expected {expected} "
                            f"for {[w.name for w in spec.widgets]}")
        named, extra = spec.split_widget_values(values)
        problems += extra
        for w in spec.widgets:
            if w.name in named:
                problems += w.check_value(named[w.name], f"{where}.{w.name}")

    for lid, (_, src, src_slot, dst, dst_slot, ltype) in links.items():
        if src not in nodes or dst not in nodes:
            problems.append(f"link {lid}: joins missing node {src if src not in nodes else dst}")
            continue
        outs = nodes[src].get("outputs", [])
        ins = nodes[dst].get("inputs", [])
        if src_slot >= len(outs) or lid not in (outs[src_slot].get("links") or []):
            problems.append(f"link {lid}: node {src} output {src_slot} does not list it")
        elif not types_compatible(outs[src_slot]["type"], ltype):
            problems.append(f"link {lid}: type {ltype} differs from the output's {outs[src_slot]['type']}")
        if dst_slot >= len(ins) or ins[dst_slot].get("link") != lid:
            problems.append(f"link {lid}: node {dst} input {dst_slot} does not hold it")
        elif not types_compatible(ltype, ins[dst_slot]["type"]):
            problems.append(f"link {lid}: type {ltype} does not fit input {ins[dst_slot]['name']} ({ins[dst_slot]['type']})")
    return problems


# --------------------------------------------------------------------------- API format

def check_api_workflow(prompt: dict, specs: dict[str, NodeSpec]) -> list[str]:
    """Every problem ComfyUI's `POST /prompt` validation would report for an API-format workflow."""
    problems = []
    for nid, node in prompt.items():
        where = f"node {nid} ({node.get('class_type')})"
        spec = specs.get(node.get("class_type"))
        if spec is None or spec.origin == "frontend":
            problems.append(f"{where}: unknown class_type for the server")
            continue
        given = node.get("inputs", {})
        for name in given:
            if spec.input(name) is None:
                problems.append(f"{where}: no input named {name!r}")
        for decl in spec.inputs:
            value = given.get(decl.name)
            if value is None:
                if decl.section == "required":
                    problems.append(f"{where}: required input {decl.name!r} missing")
                continue
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = prompt.get(value[0])
                if src is None:
                    problems.append(f"{where}.{decl.name}: links to missing node {value[0]}")
                    continue
                src_spec = specs.get(src.get("class_type"))
                if src_spec is None:
                    continue
                if not isinstance(value[1], int) or not 0 <= value[1] < len(src_spec.outputs):
                    problems.append(f"{where}.{decl.name}: node {value[0]} has no output {value[1]}")
                    continue
                out_type = src_spec.outputs[value[1]]
                if not types_compatible(out_type, decl.type):
                    problems.append(f"{where}.{decl.name}: gets {out_type}, wants {decl.type}")
            elif not decl.is_widget:
                problems.append(f"{where}.{decl.name}: a {decl.type} input must be a link, got {value!r}")
            else:
                problems += decl.check_value(value, f"{where}.{decl.name}")
    if not any(specs[n["class_type"]].output_node for n in prompt.values() if n.get("class_type") in specs):
        problems.append("no output node: the server would refuse the prompt")
    return problems


def ui_to_api(wf: dict, specs: dict[str, NodeSpec]) -> dict:
    """The API prompt the front end sends for a UI workflow (frontend-only nodes and muted nodes dropped)."""
    links = {link[0]: link for link in wf.get("links", [])}
    prompt = {}
    for node in wf["nodes"]:
        spec = specs[node["type"]]
        if spec.origin == "frontend" or node.get("mode", 0) in (2, 4):
            continue
        inputs = {}
        named, _ = spec.split_widget_values(node.get("widgets_values", []))
        inputs.update(named)
        for inp in node.get("inputs", []):
            if inp.get("link") is not None:
                link = links[inp["link"]]
                inputs[inp["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
