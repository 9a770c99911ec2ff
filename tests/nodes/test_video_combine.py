"""InfiniteTalk Video Combine as ComfyUI calls it: IMAGE or INFINITETALK_FRAMES + AUDIO in, one MP4 with sound out."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from wanvideo_infinitetalk_pack.nodes import host
from wanvideo_infinitetalk_pack.nodes.video_combine import InfiniteTalkVideoCombine
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.video import EncodingInterrupted

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "video"))
from video_testutils import comfy_metadata_mp4, comfy_metadata_webm, listing, moving_frames, probe, psnr, tone  # noqa: E402

WORKFLOW = {"last_node_id": 2, "nodes": [{"id": 1, "type": "LoadImage"}, {"id": 2, "type": "InfiniteTalkVideoCombine"}]}
PROMPT = {"2": {"class_type": "InfiniteTalkVideoCombine", "inputs": {"frame_rate": 25}}}


def _images(n=50, h=48, w=64):
    return torch.from_numpy(moving_frames(n, h, w)).float() / 255.0  # IMAGE: float32 [B,H,W,3] 0..1


def _audio(wave, rate):
    wave = np.asarray(wave, np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    return {"waveform": torch.from_numpy(wave.copy())[None], "sample_rate": rate}  # AUDIO: [1, C, T]


class FakeFrameStore:
    """The INFINITETALK_FRAMES contract: len, fps, width, height, iter_frames() of H×W×3 uint8."""

    def __init__(self, frames, fps):
        self._frames, self.fps = frames, fps
        self.height, self.width = frames.shape[1:3]
        self.iterations = 0

    def __len__(self):
        return len(self._frames)

    def iter_frames(self):
        self.iterations += 1
        for frame in self._frames:
            yield frame.copy()


def _run(**kwargs):
    args = dict(frame_rate=25.0, filename_prefix="InfiniteTalk/talk", format="h264-mp4", crf=19,
                length_policy="fit_audio_to_video", save_output=True, save_metadata=True,
                prompt=PROMPT, extra_pnginfo={"workflow": WORKFLOW}, unique_id="2")
    args.update(kwargs)
    return InfiniteTalkVideoCombine().combine(**args)


def test_images_and_audio_make_one_numbered_mp4_with_sound_and_a_preview(comfy_dirs):
    out, temp = comfy_dirs
    result = _run(images=_images(), audio=_audio(tone(3.0, 24000, 2), 24000))
    path = result["result"][0]
    assert path == str(out / "InfiniteTalk" / "talk_00001.mp4")
    assert listing(out) == {os.path.join("InfiniteTalk", "talk_00001.mp4")}

    p = probe(path)
    assert p.video_codec == "h264" and p.pix_fmt == "yuv420p" and p.frames == 50
    assert p.video_duration == pytest.approx(2.0)
    assert p.audio_codec == "aac" and abs(p.audio_duration - 2.0) <= 1 / 25
    assert comfy_metadata_mp4(path) == {"workflow": WORKFLOW, "prompt": PROMPT}

    ui = result["ui"]
    assert ui["images"] == [{"filename": "talk_00001.mp4", "subfolder": "InfiniteTalk", "type": "output"}]
    assert ui["animated"] == (True,)
    details = ui["infinitetalk_video"][0]
    assert details["format"] == "video/mp4" and details["has_audio"] and details["browser_playable"]
    assert details["frames"] == 50 and details["duration"] == 2.0

    second = _run(images=_images(10))
    assert second["result"][0] == str(out / "InfiniteTalk" / "talk_00002.mp4")
    assert listing(out) == {os.path.join("InfiniteTalk", f"talk_0000{i}.mp4") for i in (1, 2)}
    assert probe(path).frames == 50  # the first file was not touched


def test_frames_from_the_sampler_stream_at_their_own_rate(comfy_dirs, media_dir):
    wave, rate = sf.read(str(media_dir / "speech_en_mono16k.wav"), dtype="float32")
    store = FakeFrameStore(moving_frames(160), fps=20.0)
    result = _run(frames=store, frame_rate=25.0, audio=_audio(wave, rate), length_policy="trim_video_to_audio")
    p = probe(result["result"][0])
    assert store.iterations == 1
    assert p.fps == pytest.approx(20.0)  # the store's rate, so lips stay on the audio
    assert p.frames == 149  # 7.41 s of speech at 20 fps -> 149 frames (the rest is dropped)
    assert abs(p.audio_duration - 149 / 20) <= 1 / 20


def test_the_samplers_real_frame_store_streams_in(comfy_dirs, tmp_path):
    from wanvideo_infinitetalk_pack.wanvideo.video.frame_store import FrameStore

    src = moving_frames(60)
    store = FrameStore.open_for_run(str(tmp_path / "frames"), "abcdef12", width=64, height=48, fps=25.0,
                                    total_frames=60, num_windows=2)
    store.write_window(0, src[:33])
    store.write_window(1, src[33:])
    result = _run(frames=store, audio=_audio(tone(2.0), 16000))
    p = probe(result["result"][0], keep_frames=True)
    assert p.frames == 60 and abs(p.audio_duration - 2.4) <= 1 / 25
    assert result["ui"]["infinitetalk_video"][0]["frames"] == 60
    assert np.mean([psnr(a, b) for a, b in zip(p.decoded, src, strict=False)]) > 30


def test_webm_in_temp_folder_without_metadata(comfy_dirs):
    out, temp = comfy_dirs
    result = _run(images=_images(20), format="vp9-webm", crf=32, save_output=False, save_metadata=False,
                  audio=_audio(tone(1.0), 16000))
    path = result["result"][0]
    assert os.path.dirname(path) == str(temp / "InfiniteTalk")
    assert result["ui"]["images"][0]["type"] == "temp"
    assert listing(out) == set()
    p = probe(path)
    assert p.video_codec == "vp9" and p.audio_codec == "opus"
    assert comfy_metadata_webm(path) == {}


def test_disable_metadata_flag_of_the_host_is_honoured(comfy_dirs, monkeypatch):
    monkeypatch.setattr(host, "metadata_disabled", lambda: True)
    path = _run(images=_images(5))["result"][0]
    assert comfy_metadata_mp4(path) == {}


@pytest.mark.parametrize("kwargs, message", [
    ({}, "connect `images` \\(IMAGE\\) or `frames`"),
    ({"images": "both"}, "both `images` and `frames`"),
    ({"filename_prefix": "../escape"}, "contains '..'"),
    ({"filename_prefix": "/tmp/abs"}, "absolute path"),
    ({"filename_prefix": "-vf"}, "starts with '-'"),
    ({"frame_rate": 0.0}, "frame_rate 0: out of range, give a number from 0.01 to 240"),
    ({"audio": {"waveform": torch.zeros(1, 1, 0), "sample_rate": 16000}}, "the audio is empty"),
    ({"audio": "speech.wav"}, "not an AUDIO value"),
    ({"crf": 60}, "out of range for h264-mp4"),
])
def test_bad_inputs_get_clear_errors_and_leave_no_file(comfy_dirs, kwargs, message):
    out, temp = comfy_dirs
    if kwargs.get("images") == "both":
        kwargs = {"images": _images(3), "frames": FakeFrameStore(moving_frames(3), 25.0)}
    elif kwargs:
        kwargs = {"images": _images(3), **kwargs}
    with pytest.raises(InputError, match=message):
        _run(**kwargs)
    assert listing(out) == set() and listing(temp) == set()


def test_cancel_keeps_the_frames_so_far(comfy_dirs, monkeypatch):
    calls = []
    monkeypatch.setattr(host, "interrupt_requested", lambda: calls.append(1) or len(calls) > 12)
    with pytest.raises(EncodingInterrupted) as err:
        _run(images=_images(40), audio=_audio(tone(2.0), 16000))
    p = probe(err.value.path)
    assert p.frames == 12 and abs(p.audio_duration - 12 / 25) <= 1 / 25


def test_progress_goes_to_the_host_bar(comfy_dirs, monkeypatch):
    seen = []

    class Bar:
        def __init__(self, total):
            seen.append(("total", total))

        def update_absolute(self, value, total=None):
            seen.append((value, total))

    monkeypatch.setattr(host, "progress_bar", Bar)
    _run(images=_images(8))
    assert seen == [("total", 8)] + [(i, 8) for i in range(1, 9)]


# -- the front-end player (js/video_combine_preview.js), run in Node.js with stand-ins for ComfyUI ----------
# (the real front end in a real browser: tests/js/test_frontend_browser.py)

_JS_HOOKS = """const STUBS = {
  "app.js": `export const app = globalThis.__stubApp;`,
  "api.js": `export const api = globalThis.__stubApi;`,
};
export async function resolve(specifier, context, next) {
  for (const [name, code] of Object.entries(STUBS)) {
    if (specifier.endsWith("/scripts/" + name)) {
      return { url: "data:text/javascript," + encodeURIComponent(code), shortCircuit: true };
    }
  }
  return next(specifier, context);
}
"""

_JS_REGISTER = """import { register } from "node:module";
register(new URL("./hooks.mjs", import.meta.url));
"""

_JS_RUN = """function el(tag) {
  const e = { tag, style: {}, children: [], listeners: {}, attrs: {},
    append(...c) { this.children.push(...c); }, addEventListener(t, f) { (this.listeners[t] ??= []).push(f); },
    removeAttribute(a) { delete this[a]; }, load() { this.loaded = (this.loaded ?? 0) + 1; }, pause() { this.paused = true; } };
  return e;
}
globalThis.document = { createElement: el };
const extensions = [];
globalThis.__stubApp = { registerExtension: (e) => extensions.push(e), canvas: {} };
globalThis.__stubApi = { apiURL: (p) => "/api" + p };
await import(process.argv[2]);
const ext = extensions[0];
function NodeType() {}
ext.beforeRegisterNodeDef(NodeType, { name: "InfiniteTalkVideoCombine" });
const node = new NodeType();
let removed = 0;
node.size = [400, 300];
node.widgets = [{ name: "frame_rate" }, { name: "video-preview", onRemove() { removed++; } }];
node.addDOMWidget = (name, type, element, options) => { const w = { name, type, element, options }; node.widgets.push(w); return w; };
node.setDirtyCanvas = () => {};
node.onExecuted({ images: [{ filename: "talk_00001.mp4", subfolder: "InfiniteTalk", type: "output" }], animated: [true],
  infinitetalk_video: [{ filename: "talk_00001.mp4", subfolder: "InfiniteTalk", type: "output", format: "video/mp4",
  frame_rate: 25, frames: 50, duration: 2, width: 480, height: 832, has_audio: true, writer: "ffmpeg",
  browser_playable: true, notes: [] }] });
node.widgets.push({ name: "video-preview", onRemove() { removed++; } });  // the stock preview arriving late
node.onDrawForeground({});
const removedBeforeLoad = removed;  // ours has not loaded the file yet: the stock preview stays
const player = node.infinitetalkPlayer;
for (const f of player.video.listeners.loadeddata ?? []) f();
node.onDrawForeground({});
const w = node.widgets.find((x) => x.name === "infinitetalk_video_player");
console.log(JSON.stringify({ name: ext.name, widgets: node.widgets.map((x) => x.name), removed, removedBeforeLoad,
  video: { controls: player.video.controls, muted: player.video.muted, src: player.video.src },
  caption: player.caption.textContent, height: w.options.getMinHeight(), size: w.computeSize(400),
  sizeWithoutWidth: w.computeSize() }));
"""


def test_player_extension_plays_the_file_with_sound_and_replaces_the_stock_preview(tmp_path):
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not installed (the extension itself runs in the browser)")
    (tmp_path / "hooks.mjs").write_text(_JS_HOOKS)
    (tmp_path / "register.mjs").write_text(_JS_REGISTER)
    (tmp_path / "run.mjs").write_text(_JS_RUN)
    js = Path(__file__).resolve().parents[2] / "js" / "video_combine_preview.js"
    result = subprocess.run([node, "--import", "./register.mjs", "run.mjs", js.as_uri()],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["video"] == {"controls": True, "muted": False,
                            "src": "/api/view?filename=talk_00001.mp4&subfolder=InfiniteTalk&type=output"}
    assert out["caption"] == "talk_00001.mp4 · 2.00 s · 50 frames @ 25 fps · 480×832 · with sound"
    # One player: once ours has loaded the file, the stock one (also when it shows up late) is taken off this node.
    assert out["removedBeforeLoad"] == 0
    assert out["widgets"] == ["frame_rate", "infinitetalk_video_player"] and out["removed"] == 2
    assert out["size"][1] == out["height"] > 400 * 832 / 480 * 0.9  # sized to the portrait video
    # Front ends that call computeSize() without a width (ComfyUI 1.27) get the node's width, not NaN.
    assert out["sizeWithoutWidth"] == out["size"]
