"""The pack's nodes in ComfyUI's V3 node schema (`comfy_api.latest`: `io.ComfyNode`, `io.Schema`,
`define_schema`/`execute`), registered through `comfy_entrypoint()` in the pack's `__init__.py`.

Each V3 node is declared from the node's V1 declaration (`INPUT_TYPES`, built from the option registry
`wanvideo/options.py`), so an option is still declared once and both schemas always agree: same node ids, same
input names, same widget order (saved workflows store widget values by position). What V3 adds for users:

- `advanced=True` on expert widgets (shift, scheduler details, block swap, precisions): folded away on fronts
  ends that know it;
- search aliases (`infinitetalk`, `lipsync`, `talking head`, `wananimate`);
- one vs two speakers on the sampler as a `DynamicCombo` (`speakers`): the two mask inputs appear only in
  two-speaker mode, as core's WanInfiniteTalkToVideo does. It comes after every widget the sampler had when it came,
  so the widget values of a workflow saved before it existed still land on the same widgets; a saved or API workflow that links the
  masks at the top level (`speaker_1_mask`, as before) runs unchanged (see `legacy_inputs`). A widget added to
  the sampler later (at the end of INPUT_TYPES, where any new widget must go) comes after the choice.

A host whose `comfy_api.latest` lacks one of these features gets the node without it (ComfyUI 0.3.64 has V3
nodes but no DynamicCombo, `advanced` or search aliases: the masks stay plain optional inputs there).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging

log = logging.getLogger(__name__)

try:  # the host's V3 API; absent outside ComfyUI (tests, the command line) and in hosts before V3
    from comfy_api.latest import ComfyExtension, io
except Exception:  # noqa: BLE001 - any failure means: no V3 here, register the V1 mappings
    ComfyExtension = io = None

SEARCH_ALIASES = ["infinitetalk", "lipsync", "lip sync", "talking head", "wananimate", "wan animate"]

# Expert widgets, folded away as "advanced" where the front end supports it (names are V1 input names).
ADVANCED = {
    "InfiniteTalkSampler": {"shift", "scheduler", "frame_window", "motion_frames", "color_correction", "audio_cfg",
                            "vae_precision", "frames_folder"},
    "InfiniteTalkAnimateSampler": {"shift", "scheduler", "clip_len", "refert_frames", "frames_folder"},
    "InfiniteTalkModelLoader": {"precision", "quantization", "blocks_to_swap", "attention", "offload_after_sampling"},
    "InfiniteTalkWav2VecLoader": {"precision", "device"},
    "InfiniteTalkAudioEmbeds": {"normalize_loudness", "fps", "frame_limit"},
    "InfiniteTalkVideoCombine": {"crf", "length_policy", "save_metadata"},
}

# The sampler's speaker choice: a DynamicCombo whose second option carries the mask inputs.
SPEAKERS_INPUT = "speakers"
ONE_SPEAKER, TWO_SPEAKERS = "single_speaker", "two_speakers"
SPEAKER_MASKS = ("speaker_1_mask", "speaker_2_mask")
# Saved workflows keep widget values by position: the choice sits right after the widget that was the sampler's
# last when it came, so a widget added to the sampler later (after this one in INPUT_TYPES) comes after it.
SPEAKERS_AFTER = "mask_feather"
DYNAMIC_SPEAKERS = {"InfiniteTalkSampler"}

# Core types the host's io module names; any other type (ours) is io.Custom(type).
_CORE_TYPES = {"IMAGE": "Image", "MASK": "Mask", "AUDIO": "Audio", "VAE": "Vae", "CONDITIONING": "Conditioning",
               "CLIP_VISION": "ClipVision", "CLIP_VISION_OUTPUT": "ClipVisionOutput", "STRING": "String",
               "INT": "Int", "FLOAT": "Float", "BOOLEAN": "Boolean"}
_HIDDEN = {"PROMPT": "prompt", "EXTRA_PNGINFO": "extra_pnginfo", "UNIQUE_ID": "unique_id"}
# V1 widget options and the V3 Input argument each becomes.
_WIDGET_ARGS = {"default": "default", "min": "min", "max": "max", "step": "step", "tooltip": "tooltip",
                "multiline": "multiline", "round": "round", "control_after_generate": "control_after_generate",
                "display": "display_mode", "forceInput": "force_input", "lazy": "lazy"}


def available() -> bool:
    """True where the host has V3 nodes (comfy_api.latest with io.ComfyNode and ComfyExtension)."""
    return io is not None and hasattr(io, "ComfyNode") and ComfyExtension is not None


def has_feature(name: str) -> bool:
    """Whether this host's V3 API has a feature: 'dynamic_combo', 'advanced', 'search_aliases'."""
    if not available():
        return False
    if name == "dynamic_combo":
        return hasattr(io, "DynamicCombo")
    if name == "advanced":
        return "advanced" in inspect.signature(io.Int.Input.__init__).parameters
    if name == "search_aliases":
        return "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}
    raise KeyError(name)


def _accepted(callable_, kwargs: dict) -> dict:
    """kwargs without the ones this host's V3 class does not take (older hosts lack e.g. `advanced`)."""
    params = inspect.signature(callable_).parameters
    return {k: v for k, v in kwargs.items() if k in params and v is not None}


def _io_type(type_name: str):
    return getattr(io, _CORE_TYPES.get(type_name, ""), None) or io.Custom(type_name)


def v3_input(name: str, declaration: tuple, *, optional: bool, advanced: bool = False):
    """One V1 `INPUT_TYPES` entry as a V3 Input: a combo for a list of choices, a widget for INT/FLOAT/STRING/
    BOOLEAN, a socket for any other type."""
    kind, meta = declaration[0], (declaration[1] if len(declaration) > 1 else {})
    args = {"optional": optional, "advanced": advanced or None}
    if isinstance(kind, (list, tuple)):
        cls, args["options"] = io.Combo.Input, list(kind)
        args.update(default=meta.get("default"), tooltip=meta.get("tooltip"))
    elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        cls = _io_type(kind).Input
        args.update({arg: meta[key] for key, arg in _WIDGET_ARGS.items() if key in meta})
        if "display_mode" in args:  # V1 "display": "slider" -> io.NumberDisplay.slider
            args["display_mode"] = getattr(io.NumberDisplay, args["display_mode"], None)
    else:
        cls = _io_type(kind).Input
        args.update(tooltip=meta.get("tooltip"), lazy=meta.get("lazy"))
    return cls(name, **_accepted(cls.__init__, args))


def _schema_inputs(node_id: str, v1_cls) -> list:
    declared = v1_cls.INPUT_TYPES()
    advanced = ADVANCED.get(node_id, set()) if has_feature("advanced") else set()
    dynamic = node_id in DYNAMIC_SPEAKERS and has_feature("dynamic_combo")
    inputs = []
    for group in ("required", "optional"):
        for name, declaration in declared.get(group, {}).items():
            if dynamic and name in SPEAKER_MASKS:
                continue  # inside the speakers DynamicCombo below
            inputs.append(v3_input(name, declaration, optional=group == "optional", advanced=name in advanced))
    if dynamic:
        masks = [v3_input(name, declared["optional"][name], optional=True) for name in SPEAKER_MASKS]
        ids = [i.id for i in inputs]
        at = ids.index(SPEAKERS_AFTER) + 1 if SPEAKERS_AFTER in ids else len(inputs)
        inputs.insert(at, io.DynamicCombo.Input(
            SPEAKERS_INPUT, options=[io.DynamicCombo.Option(ONE_SPEAKER, []), io.DynamicCombo.Option(TWO_SPEAKERS, masks)],
            optional=True,  # among the optional widgets, after SPEAKERS_AFTER: saved widget values keep their places
            tooltip="One speaker, or two: then connect where each one is in the image (default masks: left and "
                    "right half). Audio embeds with two speakers need two_speakers."))
    return inputs


def _schema_outputs(v1_cls) -> list:
    names = getattr(v1_cls, "RETURN_NAMES", None) or v1_cls.RETURN_TYPES
    tips = getattr(v1_cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(names)
    return [_io_type(kind).Output(display_name=name, tooltip=tip)
            for kind, name, tip in zip(v1_cls.RETURN_TYPES, names, tips, strict=True)]


def legacy_inputs(kwargs: dict) -> dict:
    """The V1 keyword arguments from what V3 hands to `execute`: the speakers DynamicCombo arrives as a dict
    {'speakers': choice, 'speaker_1_mask': ..., ...}; its masks become the V1 `speaker_*_mask` arguments. A mask
    linked at the top level (a workflow saved before the combo existed) is kept as it is."""
    out = dict(kwargs)
    for name in SPEAKER_MASKS:  # a V3 front end's prompt run where the host has no DynamicCombo (0.3.64)
        nested = out.pop(f"{SPEAKERS_INPUT}.{name}", None)
        if nested is not None:
            out[name] = nested
    chosen = out.pop(SPEAKERS_INPUT, None)
    if isinstance(chosen, dict):
        if chosen.get(SPEAKERS_INPUT) == TWO_SPEAKERS:
            for name in SPEAKER_MASKS:
                if chosen.get(name) is not None:
                    out[name] = chosen[name]
    return out


def v3_node(node_id: str, v1_cls, display_name: str):
    """A V3 node class (io.ComfyNode) for the V1 node class `v1_cls`, which keeps doing the work."""
    hidden_v1 = v1_cls.INPUT_TYPES().get("hidden", {})

    @classmethod
    def define_schema(cls):
        fields = {
            "node_id": node_id, "display_name": display_name, "category": v1_cls.CATEGORY,
            "description": getattr(v1_cls, "DESCRIPTION", ""), "inputs": _schema_inputs(node_id, v1_cls),
            "outputs": _schema_outputs(v1_cls), "is_output_node": bool(getattr(v1_cls, "OUTPUT_NODE", False)),
            "hidden": [getattr(io.Hidden, _HIDDEN[kind]) for kind in hidden_v1.values()],
            "search_aliases": SEARCH_ALIASES,
        }
        return io.Schema(**_accepted(io.Schema, fields))

    @classmethod
    def execute(cls, **kwargs):
        hidden = {name: getattr(cls.hidden, _HIDDEN[kind]) for name, kind in hidden_v1.items()}
        result = getattr(v1_cls(), v1_cls.FUNCTION)(**legacy_inputs(kwargs), **hidden)
        if isinstance(result, dict):  # {"ui": ..., "result": ...} as V1 output nodes return
            return io.NodeOutput(*result.get("result", ()), ui=result.get("ui"))
        return io.NodeOutput(*result)

    return type(v1_cls.__name__, (io.ComfyNode,), {
        "__doc__": v1_cls.__doc__ or f"V3 declaration of {node_id}.", "__module__": __name__,
        "define_schema": define_schema, "execute": execute, "V1_CLASS": v1_cls,
    })


def v3_nodes(class_mappings: dict, display_names: dict) -> list:
    """V3 node classes for every node of the pack, in registry order."""
    return [v3_node(node_id, cls, display_names.get(node_id, node_id)) for node_id, cls in class_mappings.items()]


def extension(class_mappings: dict, display_names: dict):
    """The ComfyExtension that `comfy_entrypoint()` returns."""
    nodes = v3_nodes(class_mappings, display_names)

    class InfiniteTalkExtension(ComfyExtension):
        async def get_node_list(self):
            return list(nodes)

    return InfiniteTalkExtension()
