"""What the real-ComfyUI end-to-end runs share (`comfyui_e2e.py` and `comfyui_e2e_more_runs.py`): the example
workflow adapted to the tiny models, one prompt run over the websocket, and the checks of the video it wrote."""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

from sample_media import media_dir  # ../shared/media, or generated media in a plain clone (same folder)

REPO = Path(__file__).resolve().parents[2]
MEDIA = media_dir()
# Binary websocket messages that carry a preview image (ComfyUI's PREVIEW_IMAGE, UNENCODED_PREVIEW_IMAGE and,
# since the progress API, PREVIEW_IMAGE_WITH_METADATA).
PREVIEW_EVENTS = (1, 2, 4)


def log(msg):
    print(f"[e2e] {msg}", flush=True)


# ----------------------------------------------------------------------------- workflow

def adapt_workflow(prompt: dict, names: dict, inputs: dict, clip_vision: str, tiny: dict) -> dict:
    """The example API workflow with the tiny models, the stand-ins and a small run."""
    from copy import deepcopy

    prompt = deepcopy(prompt)
    by_class = {}
    for nid, node in prompt.items():
        by_class.setdefault(node["class_type"], []).append(nid)

    for nid in by_class.get("CLIPTextEncode", []):
        text = prompt[nid]["inputs"]["text"]
        prompt[nid] = {"class_type": "InfiniteTalkE2ETinyTextEncode",
                       "inputs": {"text": text, "text_dim": names["text_dim"]}}
    for nid in by_class.get("CLIPLoader", []):
        del prompt[nid]
    if clip_vision == "stand-in":
        for nid in by_class.get("CLIPVisionEncode", []):
            node = prompt[nid]["inputs"]
            prompt[nid] = {"class_type": "InfiniteTalkE2ETinyClipVisionEncode",
                           "inputs": {"image": node["image"], "clip_dim": names["clip_dim"], "crop": node["crop"]}}
        for nid in by_class.get("CLIPVisionLoader", []):
            del prompt[nid]
        # The samplers' optional `clip_vision` socket linked the loader just removed: without it they use the
        # stand-in's `clip_vision_output` as given (per-window CLIP is then not exercised; `real` does).
        for node in prompt.values():
            for name, value in list(node["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and str(value[0]) not in prompt:
                    del node["inputs"][name]
    else:
        for nid in by_class.get("CLIPVisionLoader", []):
            prompt[nid]["inputs"]["clip_name"] = names["clip_vision"]
    for nid in by_class.get("VAELoader", []):
        prompt[nid]["inputs"]["vae_name"] = names["vae"]
    for nid in by_class.get("LoadImage", []):
        prompt[nid]["inputs"]["image"] = inputs["image"]
    for nid in by_class.get("LoadAudio", []):
        prompt[nid]["inputs"]["audio"] = inputs["audio"]
    adapt_pack_nodes(prompt, by_class, names, tiny)
    return prompt


def adapt_pack_nodes(prompt, by_class, names, tiny):
    """Point our loaders at the tiny files and make the sampler's run small."""
    for nid in by_class.get("InfiniteTalkModelLoader", []):
        inputs = prompt[nid]["inputs"]
        audio = inputs.get("infinitetalk", "none") != "none"
        # The tiny set ships the Wan model with the InfiniteTalk weights in one file.
        inputs["model"] = names["model"] if audio else names["model_no_audio"]
        if "InfiniteTalkAnimateSampler" in by_class:
            inputs["model"] = names["animate_model"]
        inputs["infinitetalk"] = "none"
        inputs["precision"] = "fp32"
    for nid in by_class.get("InfiniteTalkWav2VecLoader", []):
        prompt[nid]["inputs"]["model"] = names["wav2vec"]
    for nid in by_class.get("InfiniteTalkLoraSelect", []):
        prompt[nid]["inputs"]["lora"] = names["lora"]
    for nid in by_class.get("InfiniteTalkSampler", []):
        inputs = prompt[nid]["inputs"]
        for key in ("width", "height", "frame_window", "motion_frames", "steps"):
            inputs[key] = tiny[key]
    for nid in by_class.get("InfiniteTalkVideoCombine", []):
        prompt[nid]["inputs"]["filename_prefix"] = "infinitetalk_e2e/talk"
    adapt_longcat_nodes(prompt, by_class, names, tiny)


def adapt_longcat_nodes(prompt, by_class, names, tiny):
    """LongCat-Video-Avatar: the tiny official-layout folders, no distillation LoRA, a small size."""
    for nid in by_class.get("InfiniteTalkLongCatModelLoader", []):
        prompt[nid]["inputs"].update(model=names.get("longcat_model"), distill_lora="none", precision="fp32")
    for nid in by_class.get("InfiniteTalkLongCatWhisperLoader", []):
        prompt[nid]["inputs"]["model"] = names.get("whisper")
    for nid in by_class.get("InfiniteTalkLongCatSampler", []):
        prompt[nid]["inputs"].update(width=tiny["width"], height=tiny["height"])


# ----------------------------------------------------------------------------- server

async def run_prompt(base_url, prompt, timeout, interrupt_when=None):
    """POST the prompt, follow the websocket (progress text, errors), return (history entry, texts, event types).

    interrupt_when: a regular expression; the first progress text it matches is answered with POST /interrupt
    (what the front end's Cancel button sends)."""
    import aiohttp

    client_id = uuid.uuid4().hex
    texts, events = [], []
    ws_url = base_url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            # As the front end does: announce that this client takes preview images with their node's metadata
            # (ComfyUI sends the progress API's preview images only to clients that do).
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            async with session.post(f"{base_url}/prompt", json={"prompt": prompt, "client_id": client_id}) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise SystemExit("ComfyUI refused the prompt:\n" + json.dumps(body, indent=1)[:6000])
            prompt_id = body["prompt_id"]
            log(f"prompt {prompt_id} queued")
            t0 = time.time()
            last_text = None
            while time.time() - t0 < timeout:
                try:
                    msg = await ws.receive(timeout=5)
                except asyncio.TimeoutError:
                    continue
                if msg.type == aiohttp.WSMsgType.BINARY:
                    data = msg.data
                    if int.from_bytes(data[:4], "big") == 3:  # progress text: node id length, node id, text
                        n = int.from_bytes(data[4:8], "big")
                        node_id, text = data[8:8 + n].decode(), data[8 + n:].decode()
                        texts.append((node_id, text))
                        if text != last_text:
                            log(f"progress text on node {node_id}: {text}")
                            last_text = text
                        if interrupt_when and re.search(interrupt_when, text):
                            interrupt_when = None
                            log("POST /interrupt (Cancel)")
                            async with session.post(f"{base_url}/interrupt") as resp:
                                resp.raise_for_status()
                    elif int.from_bytes(data[:4], "big") in PREVIEW_EVENTS:
                        events.append("preview_image")
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
                    continue
                event = json.loads(msg.data)
                kind, data = event.get("type"), event.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                events.append(kind)
                if kind == "executing" and data.get("node"):
                    log(f"executing node {data['node']} ({prompt.get(data['node'], {}).get('class_type')})")
                elif kind == "execution_error":
                    log("execution error:\n" + json.dumps(data, indent=1)[:6000])
                    break
                elif kind == "execution_interrupted":
                    log(f"interrupted in node {data.get('node_id')} ({data.get('node_type')})")
                    break
                elif kind in ("execution_success",) or (kind == "executing" and data.get("node") is None):
                    break
            else:
                raise SystemExit(f"the run did not finish within {timeout} s")
        history = {}
        for _ in range(30):
            async with session.get(f"{base_url}/history/{prompt_id}") as resp:
                history = await resp.json()
            if prompt_id in history:
                break
            await asyncio.sleep(1)
    return history.get(prompt_id), texts, events


# ----------------------------------------------------------------------------- checks

def check_mp4(path: Path, speech_seconds: float) -> list[str]:
    import av

    problems = []
    with av.open(str(path)) as container:
        vs = [s for s in container.streams if s.type == "video"]
        aus = [s for s in container.streams if s.type == "audio"]
        if not vs:
            return ["no video stream"]
        v = vs[0]
        fps = float(v.average_rate)
        frames = sum(1 for _ in container.decode(v))
        v_dur = frames / fps
        log(f"video: {v.codec_context.name} {v.codec_context.pix_fmt} {v.codec_context.width}x{v.codec_context.height}"
            f" {frames} frames at {fps:g} fps = {v_dur:.3f} s")
        if v.codec_context.name != "h264":
            problems.append(f"video codec {v.codec_context.name}, expected h264")
        if not aus:
            problems.append("no audio stream")
        else:
            a = aus[0]
            a_dur = float(a.duration * a.time_base) if a.duration else float(container.duration or 0) / 1e6
            log(f"audio: {a.codec_context.name} {a.codec_context.sample_rate} Hz, {a_dur:.3f} s")
            if a.codec_context.name != "aac":
                problems.append(f"audio codec {a.codec_context.name}, expected aac")
            if abs(a_dur - v_dur) > 1.0 / fps + 1e-3:
                problems.append(f"audio lasts {a_dur:.3f} s, video {v_dur:.3f} s: more than one frame apart")
        expected = int(speech_seconds * fps)
        if frames != expected:
            problems.append(f"{frames} frames, expected int({speech_seconds:.3f} s x {fps:g}) = {expected}")
    return problems


def find_video(history_entry, output_dir: Path):
    for node_out in (history_entry or {}).get("outputs", {}).values():
        for key in ("gifs", "videos", "images", "video"):
            for item in node_out.get(key, []) or []:
                if isinstance(item, dict) and str(item.get("filename", "")).endswith((".mp4", ".webm", ".mkv")):
                    return output_dir / item.get("subfolder", "") / item["filename"]
    found = sorted(output_dir.rglob("*.mp4"))
    return found[-1] if found else None
