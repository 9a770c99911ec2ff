"""Write the node pages `js/docs/<NodeId>.md` that ComfyUI shows in its node documentation panel.

    .venv/bin/python scripts/docs/build_node_docs.py           # write the pages
    .venv/bin/python scripts/docs/build_node_docs.py --check   # exit 1 if a committed page is out of date

The front end fetches `/extensions/<pack>/docs/<NodeId>.md` (the pack's `WEB_DIRECTORY` is `js/`). Each page is
made from the node's own declaration, whose inputs come from the engine's option registry
(`wanvideo/options.py`): the description, every input with its type, default, range or choices and tooltip,
and every output. Nothing is typed by hand here except the pointer to the manual's topic page, so the pages cannot
drift from the nodes; `tests/test_node_docs.py` fails when a committed page differs from what this writes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from testlib import load_pack
from testlib.object_info import model_folders, pack_node_info

DOCS = REPO / "js" / "docs"

# The manual's topic page for each node family (by id prefix match; the first that matches wins).
TOPIC_PAGES = (
    ("InfiniteTalkAnimatePreprocess", "wananimate-preprocess.md"),
    ("InfiniteTalkAnimate", "wananimate.md"),
    ("InfiniteTalkWav2Vec", "audio.md"),
    ("InfiniteTalkAudio", "audio.md"),
    ("InfiniteTalkModelLoader", "models.md"),
    ("InfiniteTalkLora", "models.md"),
    ("InfiniteTalkVideoCombine", "video-combine.md"),
    ("InfiniteTalkFramesToImages", "video-combine.md"),
    ("InfiniteTalkStepCache", "speed.md"),
    ("InfiniteTalkGuidance", "speed.md"),
    ("InfiniteTalkModelSpeed", "speed.md"),
    ("InfiniteTalkMultiGPU", "several-gpus.md"),
    ("InfiniteTalkLongCat", "longcat.md"),
    ("InfiniteTalkPromptsPerWindow", "controls.md"),
    ("InfiniteTalk", "sampler.md"),
)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _limits(kind, opts: dict) -> str:
    if isinstance(kind, list):
        return "one of " + ", ".join(f"`{c}`" for c in kind) if kind else "a file of your model folders"
    parts = []
    if "min" in opts or "max" in opts:
        parts.append(f"{opts.get('min', '')} … {opts.get('max', '')}")
    if opts.get("step") not in (None, 1):
        parts.append(f"step {opts['step']}")
    if opts.get("multiline"):
        parts.append("text (several lines)")
    return ", ".join(parts)


def _type_name(kind) -> str:
    return "choice" if isinstance(kind, list) else str(kind)


def _inputs_table(info: dict) -> list[str]:
    rows = ["| input | type | default | range / choices | what it does |", "|---|---|---|---|---|"]
    for section in ("required", "optional"):
        for name, decl in info["input"].get(section, {}).items():
            kind = decl[0]
            opts = decl[1] if len(decl) > 1 and isinstance(decl[1], dict) else {}
            default = opts.get("default", "")
            default = f"`{default}`" if default != "" else ("—" if section == "required" else "optional")
            tip = opts.get("tooltip", "")
            rows.append(f"| `{name}` | {_type_name(kind)} | {_cell(default)} | {_cell(_limits(kind, opts))} | "
                        f"{_cell(tip)} |")
    return rows


def _outputs_table(info: dict) -> list[str]:
    tips = info.get("output_tooltips") or [""] * len(info["output"])
    rows = ["| output | type | what it is |", "|---|---|---|"]
    for name, kind, tip in zip(info["output_name"], info["output"], tips, strict=True):
        rows.append(f"| `{name}` | {kind} | {_cell(tip)} |")
    return rows


def topic_page(node_id: str) -> str:
    return next(page for prefix, page in TOPIC_PAGES if node_id.startswith(prefix))


def node_page(node_id: str, info: dict) -> str:
    lines = [f"# {info['display_name']}", "", f"Node id `{node_id}` · category *{info['category']}*", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    lines += ["## Inputs", ""] + _inputs_table(info) + [""]
    if info["output"]:
        lines += ["## Outputs", ""] + _outputs_table(info) + [""]
    lines += [f"More in the pack's manual: `docs/{topic_page(node_id)}`. This page is generated from the node's "
              "declaration (`scripts/docs/build_node_docs.py`).", ""]
    return "\n".join(lines)


def all_pages() -> dict[str, str]:
    """{file name: text} of every node page, from the pack's node classes."""
    pack = load_pack()
    pages = {}
    with model_folders(pack, {}):  # file lists empty: a page must not depend on the writer's model folders
        for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
            info = pack_node_info(node_id, cls, pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id))
            pages[f"{node_id}.md"] = node_page(node_id, info)
    return pages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a page is out of date")
    args = parser.parse_args(argv)
    pages = all_pages()
    stale = [name for name, text in pages.items()
             if not (DOCS / name).is_file() or (DOCS / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.name for p in DOCS.glob("*.md") if p.name not in pages) if DOCS.is_dir() else []
    if args.check:
        for name in stale + extra:
            print(f"out of date: js/docs/{name}")
        return 1 if stale or extra else 0
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (DOCS / name).unlink()
    for name in stale:
        (DOCS / name).write_text(pages[name], encoding="utf-8")
    print(f"{len(pages)} node pages in js/docs ({len(stale)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
