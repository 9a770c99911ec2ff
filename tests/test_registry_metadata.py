"""pyproject.toml as the Comfy Registry reads it (`comfy node publish`): the fields it requires, a node id it
accepts, the ComfyUI range we test (docs/comfyui-versions.md), and the same id in the templates' nodes (cnr_id:
what ComfyUI-Manager looks up for a workflow's missing nodes)."""
import json
import re

import pytest
from testlib import REPO_ROOT

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_registry_fields_are_complete():
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["description"] and project["license"]
    assert {"Repository", "Documentation", "Bug Tracker"} <= set(project["urls"])
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"].startswith("https://") and comfy["Icon"].endswith("assets/icon.png")
    assert (REPO_ROOT / "assets" / "icon.png").stat().st_size < 100_000
    # The oldest host the real-host tests run (tests/testlib/real_hosts.py), and every newer one.
    assert comfy["requires-comfyui"] == ">=0.3.64"


def test_node_id_follows_the_registry_rules():
    name = PYPROJECT["project"]["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*", name)


def test_templates_name_the_registry_id():
    ids = {node.get("properties", {}).get("cnr_id") for path in (REPO_ROOT / "example_workflows").glob("*.json")
           for node in json.loads(path.read_text())["nodes"] if node["type"].startswith("InfiniteTalk")}
    assert ids == {PYPROJECT["project"]["name"]}
