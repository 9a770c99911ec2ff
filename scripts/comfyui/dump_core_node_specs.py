"""Print the input/output declarations of the ComfyUI core nodes our examples use.

Run it with ComfyUI's own Python, giving the ComfyUI checkout:

    /path/to/comfy-venv/bin/python scripts/comfyui/dump_core_node_specs.py /path/to/ComfyUI > specs.json

The example checks (`tests/testlib/core_nodes.py`) hold this data as a literal,
taken from ComfyUI v0.3.64, so CI needs no ComfyUI. Re-run this after a ComfyUI
upgrade and compare. Folder-backed file lists (models, input files) are written
as {"files": <folder>} because their contents depend on the machine.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

CORE_NODES = (
    "LoadImage", "LoadImageMask", "LoadAudio", "LoadVideo", "GetVideoComponents",
    "CLIPLoader", "CLIPTextEncode", "CLIPVisionLoader", "CLIPVisionEncode", "VAELoader",
    "ImageScale", "SolidMask", "MaskComposite", "ImageToMask", "PreviewAudio", "PreviewImage",
    "CreateVideo", "SaveVideo",
)

# Which folder a file-list combo reads, by (node, input).
FILE_LISTS = {
    ("LoadImage", "image"): "input",
    ("LoadImageMask", "image"): "input",
    ("LoadAudio", "audio"): "input",
    ("LoadVideo", "file"): "input",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("VAELoader", "vae_name"): "vae",
}


def _plain(value):
    return value.value if hasattr(value, "value") else value


def describe(node_id, cls):
    spec = cls.INPUT_TYPES()
    inputs = []
    for section in ("required", "optional"):
        for name, decl in spec.get(section, {}).items():
            kind = _plain(decl[0])
            options = dict(decl[1]) if len(decl) > 1 else {}
            options.pop("tooltip", None)
            entry = {"name": name, "section": section}
            if isinstance(kind, (list, tuple)) or kind == "COMBO":
                entry["type"] = "COMBO"
                choices = list(kind) if isinstance(kind, (list, tuple)) else list(options.pop("options", []))
                folder = FILE_LISTS.get((node_id, name))
                entry["options"] = {"files": folder} if folder else choices
            else:
                entry["type"] = kind
            for key in ("default", "min", "max", "step", "multiline", "image_upload", "audio_upload",
                        "video_upload", "control_after_generate", "forceInput"):
                if key in options:
                    entry[key] = options[key]
            inputs.append(entry)
    outputs = [_plain(t) for t in cls.RETURN_TYPES]
    names = list(getattr(cls, "RETURN_NAMES", None) or outputs)
    return {"inputs": inputs, "outputs": outputs, "output_names": names,
            "output_node": bool(getattr(cls, "OUTPUT_NODE", False))}


def main(comfy_root):
    sys.path.insert(0, comfy_root)
    os.chdir(comfy_root)
    sys.argv = ["main.py", "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfyui_version

    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    data = {"comfyui_version": comfyui_version.__version__,
            "nodes": {n: describe(n, nodes.NODE_CLASS_MAPPINGS[n]) for n in CORE_NODES}}
    json.dump(data, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/comfyui/dump_core_node_specs.py /path/to/ComfyUI")
    main(os.path.abspath(sys.argv[1]))
