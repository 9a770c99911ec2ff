"""`GET /object_info` as ComfyUI 0.3.64 answers it, for the browser tests' stand-in server.

Our nodes are described from their real classes (`INPUT_TYPES()` and class attributes, exactly what
ComfyUI's server.py serialises), with the model lists our loaders would show for a given set of files
in ComfyUI's model folders. Core nodes come from the declarations recorded from ComfyUI 0.3.64
(`core_nodes.py`); their file-list combos list the given files of that folder.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

from .core_nodes import CORE_NODES

PACK_MODULE = "custom_nodes.ComfyUI-WanVideo-InfiniteTalk"

# Display names and categories of the core nodes our examples use (ComfyUI 0.3.64).
CORE_DISPLAY = {
    "LoadImage": ("Load Image", "image"), "LoadImageMask": ("Load Image (as Mask)", "mask"),
    "LoadAudio": ("Load Audio", "audio"), "LoadVideo": ("Load Video", "image/video"),
    "GetVideoComponents": ("Get Video Components", "image/video"), "CLIPLoader": ("Load CLIP", "advanced/loaders"),
    "CLIPTextEncode": ("CLIP Text Encode (Prompt)", "conditioning"),
    "CLIPVisionLoader": ("Load CLIP Vision", "loaders"), "CLIPVisionEncode": ("CLIP Vision Encode", "conditioning"),
    "VAELoader": ("Load VAE", "loaders"), "ImageScale": ("Upscale Image", "image/upscaling"),
    "SolidMask": ("SolidMask", "mask"), "MaskComposite": ("MaskComposite", "mask"),
    "ImageToMask": ("Convert Image to Mask", "mask"), "PreviewAudio": ("Preview Audio", "audio"),
    "PreviewImage": ("Preview Image", "image"), "CreateVideo": ("Create Video", "image/video"),
    "SaveVideo": ("Save Video", "image/video"),
}


# Loaders the front end maps model folders to when it starts (its model-to-node store looks them up by
# name and fails if one is missing). Only their file input matters to it: (input, folder, outputs).
FRONTEND_ASSUMED_LOADERS = {
    "CheckpointLoaderSimple": ("ckpt_name", "checkpoints", ["MODEL", "CLIP", "VAE"]),
    "ImageOnlyCheckpointLoader": ("ckpt_name", "checkpoints", ["MODEL", "CLIP_VISION", "VAE"]),
    "LoraLoader": ("lora_name", "loras", ["MODEL", "CLIP"]),
    "LoraLoaderModelOnly": ("lora_name", "loras", ["MODEL"]),
    "ControlNetLoader": ("control_net_name", "controlnet", ["CONTROL_NET"]),
    "UNETLoader": ("unet_name", "diffusion_models", ["MODEL"]),
    "UpscaleModelLoader": ("model_name", "upscale_models", ["UPSCALE_MODEL"]),
    "StyleModelLoader": ("style_model_name", "style_models", ["STYLE_MODEL"]),
    "GLIGENLoader": ("gligen_name", "gligen", ["GLIGEN"]),
}


@contextmanager
def model_folders(pack, files_by_folder: dict[str, list[str]]):
    """Make the pack's host adapter list `files_by_folder` as ComfyUI's model folders would."""
    host = pack.nodes.host
    saved = {name: getattr(host, name) for name in ("model_files", "model_subfolders")}

    def is_folder(name):  # a model folder (Hugging Face layout, e.g. whisper-large-v3): its last part has no suffix
        return "." not in name.rsplit("/", 1)[-1]

    def model_files(*folders, also=()):  # `also` (extra extensions found by walking): the listed files hold them
        return sorted({f for folder in folders for f in files_by_folder.get(folder, []) if not is_folder(f)})

    def model_subfolders(*folders, **kwargs):
        return sorted({f for folder in folders for f in files_by_folder.get(folder, []) if is_folder(f)})

    try:
        host.model_files = model_files
        host.model_subfolders = model_subfolders
        yield
    finally:
        for name, original in saved.items():
            setattr(host, name, original)


def _plain(value):
    """What ComfyUI's JSON response makes of a declaration: tuples become lists, enums their value."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "value", str(v))))


def pack_node_info(node_id: str, cls, display_name: str) -> dict:
    declared = cls.INPUT_TYPES()
    outputs = [getattr(t, "value", t) for t in cls.RETURN_TYPES]
    outputs = ["COMBO" if isinstance(t, (list, tuple)) else t for t in outputs]
    info = {
        "input": _plain(declared),
        "input_order": {k: list(v) for k, v in declared.items()},
        "output": outputs,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs))),
        "output_name": list(getattr(cls, "RETURN_NAMES", None) or outputs),
        "name": node_id,
        "display_name": display_name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": PACK_MODULE,
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    return info


def core_node_info(node_id: str, files_by_folder: dict[str, list[str]]) -> dict:
    data = CORE_NODES[node_id]
    sections = {"required": {}, "optional": {}}
    for entry in data["inputs"]:
        opts = {k: v for k, v in entry.items() if k not in ("name", "section", "type", "options")}
        if entry["type"] == "COMBO":
            options = entry["options"]
            choices = sorted(files_by_folder.get(options["files"], [])) if isinstance(options, dict) else list(options)
            decl = [choices, opts] if opts else [choices]
        else:
            decl = [entry["type"], opts] if opts else [entry["type"]]
        sections[entry["section"]][entry["name"]] = decl
    sections = {k: v for k, v in sections.items() if v or k == "required"}
    name, category = CORE_DISPLAY.get(node_id, (node_id, "core"))
    return {
        "input": sections,
        "input_order": {k: list(v) for k, v in sections.items()},
        "output": list(data["outputs"]),
        "output_is_list": [False] * len(data["outputs"]),
        "output_name": list(data["output_names"]),
        "name": node_id, "display_name": name, "description": "", "python_module": "nodes",
        "category": category, "output_node": data["output_node"],
    }


def object_info(pack, files_by_folder: dict[str, list[str]]) -> dict:
    """The whole `/object_info` answer: the recorded core nodes and every node of the pack."""
    info = {node_id: core_node_info(node_id, files_by_folder) for node_id in CORE_NODES}
    for node_id, (name, folder, outputs) in FRONTEND_ASSUMED_LOADERS.items():
        sections = {"required": {name: [sorted(files_by_folder.get(folder, []))]}}
        info[node_id] = {"input": sections, "input_order": {"required": [name]}, "output": outputs,
                         "output_is_list": [False] * len(outputs), "output_name": outputs, "name": node_id,
                         "display_name": node_id, "description": "", "python_module": "nodes",
                         "category": "loaders", "output_node": False}
    with model_folders(pack, files_by_folder):
        for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
            info[node_id] = pack_node_info(node_id, cls, pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id))
    return info
