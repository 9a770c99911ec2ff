"""scripts/comfyui/comfyui_e2e.py (run by hand in a real ComfyUI): the prompts it adapts from the API examples are whole
graphs — every link points at a node that is still in the prompt (ComfyUI refuses the prompt otherwise)."""
import importlib
import json
import sys

import pytest
from testlib import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts" / "comfyui"))
e2e = importlib.import_module("comfyui_e2e")

NAMES = {"text_dim": 32, "clip_dim": 64, "clip_vision": "clip.safetensors", "vae": "vae.safetensors",
         "model": "m.safetensors", "model_no_audio": "m0.safetensors", "animate_model": "a.safetensors",
         "wav2vec": "w2v", "lora": "l.safetensors"}
INPUTS = {"image": "portrait.png", "audio": "speech.wav"}


def _dangling_links(prompt: dict) -> list:
    return [(nid, name, value[0]) for nid, node in prompt.items() for name, value in node["inputs"].items()
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in prompt]


@pytest.mark.parametrize("clip_vision", ["real", "stand-in"])
@pytest.mark.parametrize("example", sorted((REPO_ROOT / "examples" / "api").glob("*.json")), ids=lambda p: p.stem)
def test_adapted_example_links_only_nodes_it_keeps(example, clip_vision):
    prompt = e2e.adapt_workflow(json.loads(example.read_text()), NAMES, INPUTS, clip_vision, e2e.TINY_RUN)
    assert _dangling_links(prompt) == []
    assert not any(node["class_type"] in ("CLIPLoader", "CLIPTextEncode") for node in prompt.values())
    if clip_vision == "stand-in":
        assert not any(node["class_type"].startswith("CLIPVision") for node in prompt.values())
