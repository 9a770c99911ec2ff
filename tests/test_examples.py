"""Every example workflow would load in the ComfyUI front end and pass the server's prompt validation.

Node classes are ours (read from the pack) or core nodes whose declarations were recorded from
ComfyUI v0.3.64 (`testlib/core_nodes.py`); every input name, link and widget value is checked
against them. UI and API versions of an example must describe the same graph, and each UI example
carries a note naming every model file it loads and the folder it goes in.
"""
import json
import re

import pytest
from testlib import REPO_ROOT, load_pack
from testlib.core_nodes import CORE_NODES
from testlib.workflows import CONTROL_VALUES, all_specs, check_api_workflow, check_ui_workflow, spec_from_core, ui_to_api

TEMPLATES = REPO_ROOT / "example_workflows"
API_DIR = REPO_ROOT / "examples" / "api"
UI_FILES = sorted(TEMPLATES.glob("*.json"))
API_FILES = sorted(API_DIR.glob("*_api.json"))
# The folders ComfyUI lists templates from (app/custom_node_manager.py): every top-level *.json in each.
COMFYUI_TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")

# The four jobs the examples must cover (file stem prefix -> what it shows).
REQUIRED = {
    "infinitetalk_single_speaker": "one portrait, one voice",
    "infinitetalk_two_speakers": "two people, two voices, speaker masks",
    "infinitetalk_video_dubbing": "a source video re-voiced",
    "wan_i2v_no_audio": "Standard I2V without audio",
    "wananimate_animation": "WanAnimate: a character image animated by a driving clip",
    "wananimate_replacement": "WanAnimate: a character replacing the person in a driving clip",
    "longcat_single_speaker": "LongCat-Video-Avatar 1.5: one portrait, one voice",
    "longcat_two_speakers": "LongCat-Video-Avatar 1.5: two people, two voices, speaker masks",
}

# Model loader widgets: (node type, widget) -> the ComfyUI models folder(s) the file goes in.
MODEL_WIDGETS = {
    ("CLIPLoader", "clip_name"): ("text_encoders",),
    ("CLIPVisionLoader", "clip_name"): ("clip_vision",),
    ("VAELoader", "vae_name"): ("vae",),
}


@pytest.fixture(scope="module")
def specs():
    return all_specs(load_pack().NODE_CLASS_MAPPINGS)


def _pack_model_widgets(specs):
    """Our loaders' file widgets, by node id: every COMBO whose options are a models folder."""
    found = {}
    for node_id, spec in specs.items():
        if spec.origin != "pack":
            continue
        for w in spec.widgets:
            if w.type == "COMBO" and isinstance(w.options, dict):
                found[(node_id, w.name)] = ()
    return found


def test_the_four_examples_exist_in_both_formats():
    stems = {p.stem for p in UI_FILES}
    api_stems = {p.stem[: -len("_api")] for p in API_FILES}
    for prefix, what in REQUIRED.items():
        assert prefix in stems, f"missing UI example {prefix}.json ({what})"
        assert prefix in api_stems, f"missing API example {prefix}_api.json ({what})"
    assert stems == api_stems, "every UI example has an API twin and vice versa"


def test_comfyui_lists_only_ui_workflows_as_templates():
    """Templates → Custom Nodes opens every *.json ComfyUI finds: each must be a UI workflow with a thumbnail."""
    listed = [p for folder in COMFYUI_TEMPLATE_FOLDERS for p in sorted((REPO_ROOT / folder).glob("*.json"))]
    assert sorted(listed) == UI_FILES, "only example_workflows/ holds top-level workflow files"
    for path in listed:
        wf = json.loads(path.read_text())
        # The front end refuses API-format files as templates ("Workflow does not contain a valid version").
        assert wf.get("version") == 0.4 and isinstance(wf.get("nodes"), list), f"{path.name} is not a UI workflow"
        thumb = path.with_suffix(".jpg")  # shown next to the name in the template browser
        assert thumb.is_file(), f"{path.name} has no thumbnail {thumb.name} (scripts/examples/frontend_snapshots.py thumbnails)"
        assert thumb.read_bytes()[:3] == b"\xff\xd8\xff", f"{thumb.name} is not a JPEG"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_ui_example_is_valid(path, specs):
    wf = json.loads(path.read_text())
    problems = check_ui_workflow(wf, specs)
    assert not problems, "\n".join(problems)
    types = {n["type"] for n in wf["nodes"]}
    assert any(specs[t].origin == "pack" for t in types), "an example must use the pack's nodes"
    assert types <= set(specs), types - set(specs)


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.name)
def test_api_example_is_valid(path, specs):
    prompt = json.loads(path.read_text())
    problems = check_api_workflow(prompt, specs)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_ui_and_api_examples_describe_the_same_graph(path, specs):
    ui = json.loads(path.read_text())
    api = json.loads((API_DIR / f"{path.stem}_api.json").read_text())
    assert ui_to_api(ui, specs) == api


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_note_says_what_to_download_and_where(path, specs):
    wf = json.loads(path.read_text())
    notes = "\n".join(v for n in wf["nodes"] if n["type"] in ("Note", "MarkdownNote")
                      for v in n.get("widgets_values", []) if isinstance(v, str))
    assert notes, "each example explains its model files in a note"
    model_widgets = dict(MODEL_WIDGETS)
    model_widgets.update(_pack_model_widgets(specs))
    for node in wf["nodes"]:
        spec = specs[node["type"]]
        named, _ = spec.split_widget_values(node.get("widgets_values", []))
        for (node_type, widget), folders in model_widgets.items():
            if node["type"] != node_type or not named.get(widget):
                continue
            file_name = named[widget]
            if file_name in ("none", "None"):
                continue
            assert file_name in notes, f"the note does not name {file_name} ({node_type}.{widget})"
            # Where it goes: the loader's own folder for core loaders; some models/<folder>/ for ours.
            if folders:
                assert any(f"models/{f}" in notes for f in folders), f"the note does not say where {file_name} goes"
            assert re.search(r"models/\w+", notes), "the note names no models/<folder>"
            # The front end's missing-model dialog reads properties.models (name, url, directory).
            listed = {m["name"] for m in node.get("properties", {}).get("models", [])}
            assert file_name in listed, f"node {node['id']} does not list {file_name} in properties.models"


def test_checker_catches_broken_workflows(specs):
    """The checks above can fail: break a valid example in the ways users' files break."""
    path = TEMPLATES / "infinitetalk_single_speaker.json"
    good = json.loads(path.read_text())
    assert check_ui_workflow(good, specs) == []

    def broken(mutate):
        wf = json.loads(path.read_text())
        mutate(wf)
        return check_ui_workflow(wf, specs)

    def node_of(wf, node_type):
        return next(n for n in wf["nodes"] if n["type"] == node_type)

    assert any("unknown node type" in p for p in broken(lambda wf: node_of(wf, "LoadImage").update(type="LoadImg")))
    assert any("widget values" in p for p in broken(lambda wf: node_of(wf, "VAELoader")["widgets_values"].append(1)))
    assert any("not one of" in p for p in broken(
        lambda wf: node_of(wf, "CLIPLoader")["widgets_values"].__setitem__(1, "t5")))
    assert any("does not hold it" in p or "not connected" in p or "missing link" in p
               for p in broken(lambda wf: wf["links"].__setitem__(0, [wf["links"][0][0], *wf["links"][0][1:3],
                                                                      wf["links"][0][3], 99, wf["links"][0][5]])))
    sampler = next(s for s in specs.values() if s.origin == "pack" and any(w.type == "INT" and w.max for w in s.widgets))

    def too_big(wf):
        node = node_of(wf, sampler.node_id)
        widget = next(w for w in sampler.widgets if w.type == "INT" and w.max is not None)
        index, i = None, 0
        for w in sampler.widgets:
            if w is widget:
                index = i
            i += 1 + w.extra_values
        node["widgets_values"][index] = widget.max + 1

    assert any("above the maximum" in p for p in broken(too_big))
    api = json.loads((API_DIR / "infinitetalk_single_speaker_api.json").read_text())
    first = next(iter(api))
    api[first]["inputs"]["no_such_input"] = 1
    assert any("no input named" in p for p in check_api_workflow(api, specs))


def test_core_declarations_match_the_recorded_comfyui():
    # Guard the data the checks rely on: these are ComfyUI 0.3.64's own declarations.
    assert [i["name"] for i in CORE_NODES["CLIPLoader"]["inputs"]] == ["clip_name", "type", "device"]
    assert "wan" in CORE_NODES["CLIPLoader"]["inputs"][1]["options"]
    assert spec_from_core("LoadAudio").widget_value_count() == 3  # file, upload button, player
    assert spec_from_core("LoadImage").widget_value_count() == 2  # file, upload button
    assert CORE_NODES["CLIPVisionEncode"]["outputs"] == ["CLIP_VISION_OUTPUT"]
    assert {"fixed", "randomize"} <= CONTROL_VALUES


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_saved_view_shows_every_node_at_the_size_the_front_end_draws(path):
    """A node saved smaller than its content (height 0: let the front end size it) is drawn at its measured size
    (scripts/examples/frontend_node_sizes.json), so the saved view must hold that size, not the saved one; notes
    are drawn at their saved size. The real front end checks the same in tests/js/test_real_host_v3.py."""
    wf = json.loads(path.read_text())
    measured = json.loads((REPO_ROOT / "scripts" / "examples" / "frontend_node_sizes.json").read_text())
    view_w, view_h = 1280, 640  # build_examples.VIEW_SIZE: a laptop screen less the front end's bars
    scale, (ox, oy) = wf["extra"]["ds"]["scale"], wf["extra"]["ds"]["offset"]
    outside = []
    for n in wf["nodes"]:
        w, h = n["size"] if n["type"] in ("MarkdownNote", "Note") else (
            max(n["size"][0], measured.get(n["type"], (0, 0))[0]), max(n["size"][1], measured.get(n["type"], (0, 0))[1]))
        x, y = n["pos"]
        if x + ox < 0 or y - 30 + oy < 0 or (x + w + ox) * scale > view_w or (y + h + oy) * scale > view_h:
            outside.append(f"{n['type']}#{n['id']}")
    assert outside == [], f"drawn outside the saved view: {outside}"
