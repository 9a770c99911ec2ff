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
         "wav2vec": "w2v", "lora": "l.safetensors", "longcat_model": "longcat_tiny/base_model",
         "whisper": "whisper_tiny_longcat"}
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


def test_run_log_check_flags_the_packs_tracebacks_and_failures_not_a_cancel():
    cancel = ("[INFO] WanVideo InfiniteTalk: window 2/3 stopped on request; 1 finished windows (17 frames) are kept\n"
              "[INFO] Processing interrupted\n")
    assert e2e.check_run_log(cancel) == []
    failed = "[ERROR] WanVideo InfiniteTalk: window 2/3 failed; 1 finished windows (17 frames) are kept in x\n"
    assert len(e2e.check_run_log(failed)) == 1
    traceback = ("Traceback (most recent call last):\n  File \"/x/custom_nodes/ComfyUI-WanVideo-InfiniteTalk/nodes/"
                 "host.py\", line 3, in f\nAttributeError: boom\n\n")
    other = "Traceback (most recent call last):\n  File \"/x/comfy/sd.py\", line 3, in f\nValueError: theirs\n\n"
    assert len(e2e.check_run_log(traceback + other)) == 1


def test_longcat_example_points_at_the_tiny_longcat_folders():
    prompt = e2e.adapt_workflow(json.loads((REPO_ROOT / "examples" / "api" / "longcat_two_speakers_api.json").read_text()),
                                NAMES, INPUTS, "stand-in", e2e.TINY_RUN)
    by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert by_class["InfiniteTalkLongCatModelLoader"]["model"] == "longcat_tiny/base_model"
    assert by_class["InfiniteTalkLongCatModelLoader"]["distill_lora"] == "none"
    assert by_class["InfiniteTalkLongCatWhisperLoader"]["model"] == "whisper_tiny_longcat"
    assert (by_class["InfiniteTalkLongCatSampler"]["width"], by_class["InfiniteTalkLongCatSampler"]["height"]) == (64, 64)
