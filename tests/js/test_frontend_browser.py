"""The pack in the REAL ComfyUI front end (1.27.10 and 1.49.6, which ComfyUI 0.3.64 and 0.33.0 pin, and the newest
checked), each with Vue nodes off and on, in Chromium.

What a user sees: every template loads with no missing node, broken link, invalid widget value or
overlapping nodes; after a run the Video Combine node shows a visible player with controls and sound
that plays our MP4 with its audio decoded; the sampler's badge follows the progress messages; a new
sampler keeps its seed between queues; dropping the MP4 onto the page restores its workflow.
"""
import json

import pytest
from testlib import REPO_ROOT
from testlib.frontend_checks import (
    DROP_FILE,
    GRAPH_PROBLEMS,
    GRAPH_TO_PROMPT,
    NEW_NODE_DEFAULTS,
    NODE_RECTS,
    NODES_OUT_OF_VIEW,
    PLAY_WITH_SOUND,
    PLAYER_STATE,
    VISIBLE_VIDEOS,
    overlaps,
    prompt_differences,
)

TEMPLATES = REPO_ROOT / "example_workflows"

TEMPLATE_FILES = sorted(TEMPLATES.glob("*.json"))

def our_errors(fe):
    return [e for e in fe.errors if "/extensions/ComfyUI-WanVideo-InfiniteTalk/" in e]


def test_the_front_end_lists_the_templates(fe):
    listed = fe.js("async () => (await (await fetch('/api/workflow_templates')).json())")
    assert listed == {"ComfyUI-WanVideo-InfiniteTalk": [p.stem for p in TEMPLATE_FILES]}


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_loads_cleanly_without_overlaps(fe, path):
    wf = json.loads(path.read_text())
    fe.load(wf, settle_ms=1500)  # previews (image, audio, video) load and resize their nodes
    assert fe.js(GRAPH_PROBLEMS, wf) == []
    if fe.version == "1.27.10" and fe.vue:
        pytest.skip("1.27.10's early Vue node renderer draws nodes wider than their saved size (it keeps no gap "
                    "between columns laid out for the canvas)")
    assert overlaps(fe.js(NODE_RECTS)) == []
    assert our_errors(fe) == []


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_opens_with_all_of_it_in_view(fe, path):
    fe.load(json.loads(path.read_text()))
    assert fe.js(NODES_OUT_OF_VIEW) == []


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_queues_the_prompt_of_its_api_twin(fe, path):
    """What Queue would post for the UI workflow is its examples/api twin, which ComfyUI validates and runs."""
    fe.load(json.loads(path.read_text()))
    twin = json.loads((REPO_ROOT / "examples" / "api" / f"{path.stem}_api.json").read_text())
    assert prompt_differences(fe.js(GRAPH_TO_PROMPT), twin) == []


def needs_video_previews(fe):
    """Front end 1.27.10's early Vue node renderer draws no video preview on a node, not even ComfyUI's own."""
    if fe.version == "1.27.10" and fe.vue:
        pytest.skip("1.27.10 with Vue nodes shows no video preview (neither the stock one nor a DOM widget)")


def show_output(fe, node_id, ui):
    """The messages ComfyUI's server sends while a prompt runs the node and returns its UI output."""
    fe.show_count = getattr(fe, "show_count", 0) + 1
    prompt_id, node = f"browser-test-{fe.show_count}", str(node_id)
    fe.server.send_json("execution_start", {"prompt_id": prompt_id, "timestamp": 0})
    fe.server.send_json("executing", {"node": node, "display_node": node, "prompt_id": prompt_id})
    fe.server.send_json("executed", {"node": node, "display_node": node, "output": ui, "prompt_id": prompt_id})
    fe.server.send_json("executing", {"node": None, "prompt_id": prompt_id})
    fe.server.send_json("execution_success", {"prompt_id": prompt_id, "timestamp": 0})


def test_video_combine_shows_a_visible_player_that_plays_with_sound(fe, rendered_video):
    needs_video_previews(fe)
    fe.load(rendered_video["workflow"])
    node_id = fe.node_id("InfiniteTalkVideoCombine")
    show_output(fe, node_id, rendered_video["ui"])
    fe.page.wait_for_function(f"() => ({PLAYER_STATE})({node_id})?.ready", timeout=30_000)  # file loaded
    fe.page.wait_for_timeout(500)
    state = fe.js(PLAYER_STATE, node_id)
    name = rendered_video["path"].name
    assert state["width"] > 100 and state["height"] > 100, f"the player is drawn {state['width']}x{state['height']} px"
    assert state["visible"] and state["controls"] and not state["muted"] and state["volume"] > 0
    details = rendered_video["ui"]["infinitetalk_video"][0]
    assert name in state["caption"] and f"{details['duration']:.2f} s" in state["caption"]
    assert f"{details['width']}×{details['height']}" in state["caption"]
    assert len(fe.js(VISIBLE_VIDEOS, name)) == 1, "exactly one player shows the video"
    played = fe.js(PLAY_WITH_SOUND, node_id)
    assert played["error"] is None and played["time"] >= 0.5, played
    assert played["audioBytes"] > 0, f"no audio decoded: {played}"
    assert our_errors(fe) == []


def test_stock_preview_stays_when_our_player_has_nothing_to_show(fe, rendered_video):
    """An output without our details (e.g. from an older version of the node) keeps ComfyUI's own preview."""
    needs_video_previews(fe)
    fe.load(rendered_video["workflow"])
    node_id = fe.node_id("InfiniteTalkVideoCombine")
    stock_only = {k: v for k, v in rendered_video["ui"].items() if k != "infinitetalk_video"}
    show_output(fe, node_id, stock_only)
    name = rendered_video["path"].name
    fe.page.wait_for_function(f"() => ({VISIBLE_VIDEOS})({json.dumps(name)}).length > 0", timeout=30_000)
    assert fe.js(PLAYER_STATE, node_id) is None


def test_badge_follows_the_progress_messages(fe, rendered_video):
    fe.load(rendered_video["workflow"])
    sampler = fe.node_id("InfiniteTalkSampler")
    label = f"() => app.graph.getNodeById({sampler}).infinitetalkProgress?.label ?? null"

    def shows(text):
        fe.page.wait_for_function(f"() => ({label})() === {json.dumps(text)}", timeout=10_000)

    fe.server.send_json("execution_start", {"prompt_id": "browser-test"})
    fe.server.send_progress_text(sampler, "window 1/3 · step 6/6")
    shows("1/3 · 6/6")
    fe.server.send_progress_text(sampler, "window 1/3 done (81 frames)")
    shows("1/3 done")
    fe.server.send_progress_text(sampler, "window 2/3 · step 4/6")
    shows("2/3 · 4/6")
    fe.server.send_progress_text(sampler, "window 2/3 · decode 3/21")  # the VAE's chunks move the badge too
    shows("2/3 · decode 3/21")
    # Cancel during window 2: one window is finished on disk, as the log says.
    fe.server.send_json("execution_interrupted", {"prompt_id": "browser-test", "node_id": str(sampler),
                                                  "node_type": "InfiniteTalkSampler", "executed": []})
    shows("1/3 done (stopped)")
    assert our_errors(fe) == []


def test_a_new_sampler_keeps_its_seed_and_a_new_loader_picks_the_wan_model(fe):
    created = fe.js(NEW_NODE_DEFAULTS)
    assert created["control"] == "fixed", "a rerun after Cancel must resume: the seed stays fixed by default"
    assert created["model"] == "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors"
    assert created["adapter"] == "none"


def test_dropping_the_mp4_restores_its_workflow(fe, rendered_video):
    fe.js("() => app.graph.clear()")
    name = rendered_video["path"].name
    fe.js(DROP_FILE, {"url": f"/api/view?filename={name}&type=output&subfolder=InfiniteTalk", "name": name,
                      "type": "video/mp4"})
    expected = sorted(n["type"] for n in rendered_video["workflow"]["nodes"])
    fe.page.wait_for_function(f"() => app.graph._nodes.length === {len(expected)}", timeout=20_000)
    assert sorted(fe.js("() => app.graph._nodes.map((n) => n.type)")) == expected


def test_player_fits_a_landscape_video_without_black_bars(fe, rendered_landscape):
    """The node takes the video's aspect (it guesses portrait until the output arrives), on every front end."""
    needs_video_previews(fe)
    fe.load(rendered_landscape["workflow"])
    node_id = fe.node_id("InfiniteTalkVideoCombine")
    show_output(fe, node_id, rendered_landscape["ui"])
    fe.page.wait_for_function(f"() => ({PLAYER_STATE})({node_id})?.ready", timeout=30_000)
    fe.page.wait_for_timeout(800)
    state = fe.js(PLAYER_STATE, node_id)
    assert state["width"] > 100 and state["height"] > 50, f"the player is drawn {state['width']}x{state['height']} px"
    shown, video = state["width"] / state["height"], state["videoWidth"] / state["videoHeight"]
    assert abs(shown / video - 1) < 0.06, f"player {state['width']:.0f}x{state['height']:.0f} px for a " \
        f"{state['videoWidth']}x{state['videoHeight']} video: black bars"
