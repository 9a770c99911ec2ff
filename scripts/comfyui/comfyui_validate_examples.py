"""Check every API example with ComfyUI's own prompt validator, the pack loaded as a custom node.

    /path/to/comfy-venv/bin/python scripts/comfyui/comfyui_validate_examples.py /path/to/ComfyUI

Runs by hand next to `scripts/comfyui/comfyui_e2e.py` (CI has no ComfyUI). In a temporary base directory it
links the pack into `custom_nodes/`, creates empty placeholder files under the example's model file
names (models/<folder>/...) and input file names (input/...), loads ComfyUI's nodes and the pack the
way `main.py` does, and calls `execution.validate_prompt` on each `examples/api/*_api.json`: node classes,
input names, link types, value ranges and combo choices (file lists included) as the server checks
them on `POST /prompt`. Nothing is executed. Exit status 0 when every example is valid.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "comfyui"))
from sample_media import media_dir  # noqa: E402 - ../shared/media, or generated media in a plain clone

MEDIA = media_dir()
sys.path.insert(0, str(REPO / "scripts" / "examples"))


def placeholders(base: Path, models: Path) -> None:
    from example_models import MODELS

    for name, (folder, _url) in MODELS.items():
        path = models / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    inputs = base / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    media = {"portrait.png": "portrait_480x832.png", "two_people.png": "two_people_832x480.jpg",
             "speech.wav": "speech_en_mono16k.wav", "speech_1.wav": "speaker_a.wav", "speech_2.wav": "speaker_b.wav",
             "new_speech.wav": "speech_en_mono16k.wav", "source_clip.mp4": "source_talk_4s.mp4",
             "character.png": "portrait_480x832.png", "pose.mp4": "animate_pose_3s.mp4", "face.mp4": "animate_face_3s.mp4",
             "driving.mp4": "source_talk_4s.mp4", "background.mp4": "animate_background_3s.mp4", "mask.mp4": "animate_mask_3s.mp4"}
    for name, src in media.items():
        shutil.copy(MEDIA / src, inputs / name)


def main(comfy_root: str) -> int:
    work = Path(tempfile.mkdtemp(prefix="infinitetalk_validate_"))
    base, models = work / "base", work / "models"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "ComfyUI-WanVideo-InfiniteTalk").symlink_to(REPO, target_is_directory=True)
    placeholders(base, models)
    yaml_path = work / "extra_model_paths.yaml"
    folders = sorted(p.name for p in models.iterdir())
    yaml_path.write_text("validate:\n" + f"  base_path: {models}\n" + "".join(f"  {f}: {f}\n" for f in folders))

    sys.path.insert(0, comfy_root)
    os.chdir(comfy_root)
    sys.argv = ["main.py", "--cpu", "--base-directory", str(base), "--extra-model-paths-config", str(yaml_path)]
    import comfy.options

    comfy.options.enable_args_parsing()
    import utils.extra_config  # noqa: F401 - ComfyUI's own module, from its checkout

    utils.extra_config.load_extra_path_config(str(yaml_path))
    import execution

    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    ours = sorted(k for k in nodes.NODE_CLASS_MAPPINGS if k.startswith("InfiniteTalk"))
    print(f"ComfyUI nodes loaded; pack nodes: {ours}")
    failures = 0
    for path in sorted((REPO / "examples" / "api").glob("*_api.json")):
        prompt = json.loads(path.read_text())
        valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("validate", prompt, None))
        if valid:
            print(f"VALID   {path.name}: outputs {outputs}")
        else:
            failures += 1
            print(f"INVALID {path.name}: {json.dumps(error)}\n  {json.dumps(node_errors, indent=1)[:4000]}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/comfyui/comfyui_validate_examples.py /path/to/ComfyUI")
    sys.exit(main(os.path.abspath(sys.argv[1])))
