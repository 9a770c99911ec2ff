"""Run inside a REAL ComfyUI (its Python, its checkout): how the pack's nodes are registered and what the
sampler receives when ComfyUI's own executor runs the two-speaker example, saved before and after the V3 schema.

    HOST_PYTHON tests/testlib/host_v3_probe.py /path/to/ComfyUI   -> one JSON report on the last stdout line

The pack is linked into a temporary base directory's `custom_nodes/` and loaded by ComfyUI's own loader. The
prompts are validated by `execution.validate_prompt` and executed by `execution.PromptExecutor`; LoadImage,
SolidMask and MaskComposite run for real. Only nodes that would load model weights (their placeholder files are
empty) and the pack's engine calls are replaced by recorders: the probe checks the schema and the input plumbing
of the host, not the model (the end-to-end run with tiny models does that).
"""
from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEIGHT_NODES = ("CLIPLoader", "CLIPVisionLoader", "VAELoader", "CLIPTextEncode", "CLIPVisionEncode", "LoadAudio")
PACK_STUBS = ("InfiniteTalkModelLoader", "InfiniteTalkLoraSelect", "InfiniteTalkWav2VecLoader",
              "InfiniteTalkAudioEmbeds", "InfiniteTalkVideoCombine")


def new_style(prompt: dict) -> dict:
    """The two-speaker prompt as today's front end writes it for the V3 sampler (masks inside `speakers`)."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        if node["class_type"] == "InfiniteTalkSampler":
            inputs = node["inputs"]
            inputs["speakers"] = "two_speakers"
            for name in ("speaker_1_mask", "speaker_2_mask"):
                inputs[f"speakers.{name}"] = inputs.pop(name)
    return prompt


def stub(cls, returns):
    """Make a node class return `returns(kwargs)` without doing its work (V1 function or V3 execute)."""
    from comfy_api.latest import io

    if isinstance(cls, type) and issubclass(cls, io.ComfyNode) and not hasattr(cls, "V1_CLASS"):
        cls.execute = classmethod(lambda c, **kw: io.NodeOutput(*returns(kw)))
    else:
        target = getattr(cls, "V1_CLASS", cls)
        setattr(target, target.FUNCTION, lambda self, **kw: returns(kw))


def executor_args(execution) -> dict:
    """What main.py passes to PromptExecutor (0.33 needs its cache limits; 0.3.64 takes none)."""
    import inspect

    if "cache_args" not in inspect.signature(execution.PromptExecutor).parameters:
        return {}
    return {"cache_args": {"lru": 0, "ram": 0, "ram_inactive": 0}}


def main(comfy_root: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="infinitetalk_v3_probe_"))
    base = work / "base"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "ComfyUI-WanVideo-InfiniteTalk").symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(REPO / "scripts" / "comfyui"))
    from comfyui_validate_examples import placeholders  # empty model files, the examples' input media

    models = work / "models"
    placeholders(base, models)
    yaml_path = work / "extra_model_paths.yaml"
    yaml_path.write_text("probe:\n" + f"  base_path: {models}\n" + "".join(f"  {f.name}: {f.name}\n" for f in models.iterdir()))
    sys.path.insert(0, comfy_root)
    os.chdir(comfy_root)
    sys.argv = ["main.py", "--cpu", "--base-directory", str(base), "--extra-model-paths-config", str(yaml_path)]
    import comfy.options

    comfy.options.enable_args_parsing()
    import utils.extra_config  # ComfyUI's own module, from its checkout

    utils.extra_config.load_extra_path_config(str(yaml_path))
    import execution
    from comfy_api.latest import io

    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    ours = {k: v for k, v in nodes.NODE_CLASS_MAPPINGS.items() if k.startswith("InfiniteTalk")}
    report = {"v3": {k: issubclass(v, io.ComfyNode) for k, v in ours.items()},
              "info": {k: v.GET_NODE_INFO_V1() for k, v in ours.items() if issubclass(v, io.ComfyNode)},
              "runs": {}}
    for name in WEIGHT_NODES + PACK_STUBS:
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        count = len(cls.GET_SCHEMA().outputs) if issubclass(cls, io.ComfyNode) else len(cls.RETURN_TYPES)
        if name == "InfiniteTalkVideoCombine":
            stub(cls, lambda kw: {"ui": {"text": ["stub"]}, "result": ("stub.mp4",)})
        else:
            stub(cls, lambda kw, n=count: (None,) * n)
    received = []

    def sampler(kw):
        masks = {k: (list(v.shape), round(float(v.sum()), 1)) for k, v in kw.items() if k.endswith("_mask") and v is not None}
        received.append({"masks": masks, "names": sorted(kw)})
        return (None, 0, 25.0)

    stub(nodes.NODE_CLASS_MAPPINGS["InfiniteTalkSampler"], sampler)

    class Server:
        client_id, last_node_id = None, None

        def send_sync(self, *args, **kwargs):
            pass

    old = json.loads((REPO / "examples" / "api" / "infinitetalk_two_speakers_api.json").read_text())
    for label, prompt in (("saved_before_v3", old), ("v3_front_end", new_style(old))):
        valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(label, prompt, None))
        run = {"valid": valid, "error": error if not valid else None, "node_errors": node_errors}
        if valid:
            received.clear()
            executor = execution.PromptExecutor(Server(), **executor_args(execution))
            executor.execute(prompt, label, {}, outputs)
            run.update(success=executor.success, sampler=list(received),
                       messages=[m for m in executor.status_messages if m[0] == "execution_error"])
        report["runs"][label] = run
    shutil.rmtree(work, ignore_errors=True)
    return report


if __name__ == "__main__":
    print(json.dumps(main(os.path.abspath(sys.argv[1])), default=str))
