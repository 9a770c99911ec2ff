"""A small, test-only executor for API-format workflows (what ComfyUI's `POST /prompt` takes).

It does what ComfyUI's executor does for plain (V1) nodes, no more: validate the prompt, run only
the nodes the output nodes need, in dependency order, calling `getattr(cls(), cls.FUNCTION)(**inputs)`
with widget values and upstream outputs, filling the hidden inputs (PROMPT, EXTRA_PNGINFO,
UNIQUE_ID), calling VALIDATE_INPUTS where a node has it, and collecting each node's `ui` dict.
The classes come from our pack plus the core-node test doubles in `comfy_doubles.py`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .workflows import check_api_workflow, specs_for_classes


class PromptError(AssertionError):
    """The prompt would be refused by ComfyUI's validation."""


@dataclass
class RunResult:
    outputs: dict = field(default_factory=dict)  # node id -> tuple of outputs
    ui: dict = field(default_factory=dict)  # node id -> the node's "ui" dict
    order: list = field(default_factory=list)  # node ids in execution order


def _is_link(value):
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _needed(prompt, classes):
    """Node ids that output nodes depend on (ComfyUI executes nothing else)."""
    stack = [nid for nid, node in prompt.items() if getattr(classes[node["class_type"]], "OUTPUT_NODE", False)]
    needed = set()
    while stack:
        nid = stack.pop()
        if nid in needed:
            continue
        needed.add(nid)
        stack.extend(v[0] for v in prompt[nid]["inputs"].values() if _is_link(v))
    return needed


def _topological(prompt, needed):
    order, state = [], {}

    def visit(nid):
        if state.get(nid) == "done":
            return
        if state.get(nid) == "visiting":
            raise PromptError(f"cycle through node {nid}")
        state[nid] = "visiting"
        for value in prompt[nid]["inputs"].values():
            if _is_link(value):
                visit(value[0])
        state[nid] = "done"
        order.append(nid)

    for nid in sorted(needed, key=lambda n: (len(n), n)):
        visit(nid)
    return order


def run_prompt(prompt: dict, classes: dict, extra_pnginfo: dict | None = None) -> RunResult:
    """Validate and execute `prompt` with `classes` ({class_type: node class})."""
    unknown = sorted({n["class_type"] for n in prompt.values()} - set(classes))
    if unknown:
        raise PromptError(f"no node class for {unknown}")
    specs = specs_for_classes(classes)
    problems = check_api_workflow(prompt, specs)
    if problems:
        raise PromptError("prompt refused:\n  " + "\n  ".join(problems))

    result = RunResult()
    for nid in _topological(prompt, _needed(prompt, classes)):
        node = prompt[nid]
        cls = classes[node["class_type"]]
        kwargs = {}
        for name, value in node["inputs"].items():
            kwargs[name] = result.outputs[value[0]][value[1]] if _is_link(value) else value
        hidden = cls.INPUT_TYPES().get("hidden", {})
        for name, kind in hidden.items():
            kind = kind[0] if isinstance(kind, (tuple, list)) else kind
            if kind == "PROMPT":
                kwargs[name] = prompt
            elif kind == "EXTRA_PNGINFO":
                kwargs[name] = extra_pnginfo
            elif kind == "UNIQUE_ID":
                kwargs[name] = nid
        validate = getattr(cls, "VALIDATE_INPUTS", None)
        if validate is not None:
            params = inspect.signature(validate).parameters
            wanted = {k: v for k, v in kwargs.items() if k in params and not _is_link(node["inputs"].get(k))}
            verdict = validate(**wanted)
            if verdict is not True:
                raise PromptError(f"node {nid} ({node['class_type']}) failed validation: {verdict}")
        returned = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(returned, dict):
            if "ui" in returned:
                result.ui[nid] = returned["ui"]
            returned = returned.get("result", ())
        returned = tuple(returned or ())
        declared = len(cls.RETURN_TYPES)
        if len(returned) != declared:
            raise AssertionError(f"node {nid} ({node['class_type']}) returned {len(returned)} values, declares {declared}")
        result.outputs[nid] = returned
        result.order.append(nid)
    return result
