"""The V3 node schema in the REAL ComfyUI hosts (0.33.0 and 0.3.64, from ../shared/hosts/), run by the host's own
loader, validator and executor (tests/testlib/host_v3_probe.py): every node is an io.ComfyNode, node ids and input
names are the V1 ones, the sampler's two-speaker masks sit in the `speakers` DynamicCombo where the host has it, and
the two-speaker example saved before V3 (masks linked at the top level) and as today's front end writes it both
deliver the masks to the sampler.

The host's Python: WANVIDEO_HOST_PYTHON (default: the host virtualenv in ~/.cache/wanvideo-hosts/). Skipped, with
the reason, where the host archives or that Python are absent (a user's clone).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from testlib import REPO_ROOT, SHARED

HOSTS = SHARED / "hosts"
HOST_PYTHON = Path(os.environ.get("WANVIDEO_HOST_PYTHON",
                                  Path.home() / ".cache" / "wanvideo-hosts" / "venv-torch2.9.1" / "bin" / "python"))
PROBE = REPO_ROOT / "tests" / "testlib" / "host_v3_probe.py"


@pytest.fixture(scope="module", params=["0.33.0", "0.3.64"], ids=lambda v: f"comfyui-{v}")
def probe(request, tmp_path_factory):
    archive = HOSTS / f"ComfyUI-{request.param}.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent: the real-host tests need ../shared/hosts/")
    if not HOST_PYTHON.is_file():
        pytest.skip(f"no host Python at {HOST_PYTHON} (set WANVIDEO_HOST_PYTHON to a Python with ComfyUI's "
                    "requirements)")
    where = tmp_path_factory.mktemp("host")
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    done = subprocess.run([str(HOST_PYTHON), str(PROBE), str(where / f"ComfyUI-{request.param}")],
                          capture_output=True, text=True, timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if "ModuleNotFoundError" in done.stderr and done.returncode != 0:
        pytest.skip(f"the host Python lacks ComfyUI's requirements: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr[-4000:]
    return request.param, json.loads(done.stdout.strip().splitlines()[-1])


def v1_input_names(node_id: str) -> set[str]:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from testlib import load_pack

    declared = load_pack().nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    return set(declared.get("required", {})) | set(declared.get("optional", {}))


def v3_input_names(info: dict) -> set[str]:
    names = set()
    for group in ("required", "optional"):
        for name, (kind, meta) in info["input"].get(group, {}).items():
            names.add(name)
            for option in meta.get("options", []) if kind == "COMFY_DYNAMICCOMBO_V3" else []:
                for nested in option["inputs"].values():
                    names.update(nested)
    return names


def test_every_node_is_a_v3_node_with_its_v1_id_and_input_names(probe):
    _, report = probe
    assert report["v3"] and all(report["v3"].values()), report["v3"]
    for node_id, info in report["info"].items():
        assert v3_input_names(info) - {"speakers"} == v1_input_names(node_id), node_id


def test_two_speaker_masks_only_in_two_speaker_mode_where_the_host_has_dynamic_combo(probe):
    version, report = probe
    info = report["info"]["InfiniteTalkSampler"]["input"]
    if version == "0.3.64":  # no DynamicCombo: the masks stay plain optional inputs
        assert {"speaker_1_mask", "speaker_2_mask"} <= set(info["optional"]) and "speakers" not in info["optional"]
        return
    kind, meta = info["optional"]["speakers"]
    assert kind == "COMFY_DYNAMICCOMBO_V3"
    options = {o["key"]: o["inputs"] for o in meta["options"]}
    assert options["single_speaker"] == {"required": {}}
    assert set(options["two_speakers"]["optional"]) == {"speaker_1_mask", "speaker_2_mask"}
    assert not {"speaker_1_mask", "speaker_2_mask"} & (set(info["required"]) | set(info["optional"]))
    widgets = [n for n, (kind, _) in info["optional"].items() if kind in ("INT", "FLOAT", "BOOLEAN", "COMBO", "STRING",
                                                                         "COMFY_DYNAMICCOMBO_V3")]
    assert widgets[-1] == "speakers", "after every earlier widget: saved widget values keep their places"
    assert info["required"]["shift"][1].get("advanced") is True
    assert "lipsync" in report["info"]["InfiniteTalkSampler"]["search_aliases"]


@pytest.mark.parametrize("saved", ["saved_before_v3", "v3_front_end"])
def test_two_speaker_prompt_runs_in_the_host_executor_with_both_masks(probe, saved):
    _, report = probe
    run = report["runs"][saved]
    assert run["valid"], run["node_errors"]
    assert run["success"], run.get("messages")
    (received,) = run["sampler"]
    assert set(received["masks"]) == {"speaker_1_mask", "speaker_2_mask"}
    assert all(shape == [1, 480, 832] for shape, _ in received["masks"].values())
    assert not [n for n in received["names"] if n.startswith("speakers")]
