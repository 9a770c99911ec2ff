"""The e2e script's further runs in the real ComfyUI: a WanAnimate generation, and Cancel then resume.

Used by `scripts/comfyui/comfyui_e2e.py` (run by hand, not in CI) once its InfiniteTalk run has passed, on the
same server:

- `animate_run`: `examples/api/wananimate_animation_api.json` with the tiny WanAnimate DiT (our loader),
  ComfyUI's own Load Image, Load Video + Get Video Components (pose and face clips), Load VAE and CLIP
  vision, the text encoder swapped for the stand-in; the MP4 must have H.264 video of exactly `max_frames`
  frames and the pose clip's AAC sound, no longer than the video.
- `cancel_and_resume`: the InfiniteTalk run again with `frames_folder` = output (a new store, so the
  sampler really runs): `POST /interrupt` as soon as the sampler reports window 1 done; the host must say
  "interrupted" (not an error), the store on disk must keep the finished window(s) and no MP4 may be
  written; the same prompt queued again must resume after them ("resuming at window k/n") and give an
  MP4 whose frames equal those of the uninterrupted run.
- `other_examples` (`--all-examples`): the other four API examples (two speakers, dubbing, image-to-video
  without audio, WanAnimate replacement) adapted the same way, each an H.264 MP4 of the expected length,
  with sound where the example connects audio.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

from e2e_common import MEDIA, REPO, adapt_workflow, check_mp4, find_video, log, run_prompt

ANIMATE_EXAMPLE = REPO / "examples" / "api" / "wananimate_animation_api.json"
# Two clips of the tiny WanAnimate model: 13 frames, then 12 more after the one carried over.
TINY_ANIMATE = {"width": 64, "height": 64, "clip_len": 13, "refert_frames": 1, "steps": 2, "max_frames": 24}
ANIMATE_INPUTS = {"character.png": "portrait_480x832.png", "pose.mp4": "animate_pose_3s.mp4",
                  "face.mp4": "animate_face_3s.mp4", "driving.mp4": "source_talk_4s.mp4"}
# The Animate Preprocess node's models: the fixtures' tiny ONNX stand-ins under the official names, and a small size.
PREPROCESS_STANDINS = {"yolov10m.onnx": "yolov10m_standin.onnx", "vitpose_h_wholebody.onnx": "vitpose_h_wholebody_standin.onnx"}
TINY_PREPROCESS = {"resolution_width": 128, "resolution_height": 224}


def detection_standins(base: Path) -> None:
    """Copy the ONNX stand-ins where the host looks for models/detection (the work folder's and the base's)."""
    for folder in (base.parent / "models" / "detection", base / "models" / "detection"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, src in PREPROCESS_STANDINS.items():
            shutil.copy(MEDIA.parent / "fixtures" / "onnx" / src, folder / name)


def seconds_of(frames: int, fps: float) -> float:
    """A duration that check_mp4's int(seconds x fps) turns back into `frames` (29 / 25 x 25 is 28.999...)."""
    return (frames + 0.5) / fps


def frames_of(path: Path):
    """Every decoded frame of the video stream, as RGB arrays."""
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]


def animate_run(base_url: str, base: Path, names: dict, inputs: dict, clip_vision: str, timeout: float) -> list[str]:
    """The WanAnimate example with the tiny model; problems found (empty when it passed)."""
    for name, src in ANIMATE_INPUTS.items():
        shutil.copy(MEDIA / src, base / "input" / name)
    detection_standins(base)
    prompt = adapt_workflow(json.loads(ANIMATE_EXAMPLE.read_text()), names, {**inputs, "image": "character.png"},
                            clip_vision, {})
    for node in prompt.values():
        if node["class_type"] == "InfiniteTalkAnimateSampler":
            node["inputs"].update(TINY_ANIMATE)
            fps = node["inputs"]["fps"]
        if node["class_type"] == "InfiniteTalkAnimatePreprocess":
            node["inputs"].update(TINY_PREPROCESS)
        if node["class_type"] == "InfiniteTalkVideoCombine":
            node["inputs"]["filename_prefix"] = "infinitetalk_e2e/animate"
    log("WanAnimate: queueing examples/api/wananimate_animation_api.json (tiny model, 64x64, 2 clips)")
    entry, texts, events = asyncio.run(run_prompt(base_url, prompt, timeout))
    if "execution_error" in events or entry is None:
        return [f"WanAnimate: the run failed ({events[-3:]})"]
    video = find_video(entry, base / "output")
    if video is None or not video.exists() or "animate" not in video.name:
        return [f"WanAnimate: no MP4 in the outputs ({json.dumps(entry.get('outputs', {}))[:300]})"]
    log(f"WanAnimate output: {video} ({video.stat().st_size} bytes)")
    clips = [t for _, t in texts if re.search(r"clip \d+/\d+", t)]
    problems = [] if clips else ["WanAnimate: the sampler sent no 'clip k/n' progress text"]
    return problems + [f"WanAnimate: {p}" for p in check_mp4(video, seconds_of(TINY_ANIMATE["max_frames"], fps))]


def _manifests(base: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((base / "output" / "infinitetalk_frames").glob("*/manifest.json"))]


def cancel_and_resume(base_url: str, base: Path, prompt: dict, reference_video: Path, timeout: float) -> list[str]:
    """Cancel after the first finished window, then queue again: it resumes and equals the uninterrupted run."""
    prompt = json.loads(json.dumps(prompt))
    for node in prompt.values():
        if node["class_type"] == "InfiniteTalkSampler":
            node["inputs"]["frames_folder"] = "output"  # a store of its own: the first run's was in temp
        if node["class_type"] == "InfiniteTalkVideoCombine":
            node["inputs"]["filename_prefix"] = "infinitetalk_e2e/resumed"
    # A store left by an earlier e2e in the same --workdir would be complete: the run would not sample at all.
    shutil.rmtree(base / "output" / "infinitetalk_frames", ignore_errors=True)
    log("Cancel: queueing the InfiniteTalk run again (frames in output/), interrupting after window 1")
    entry, texts, events = asyncio.run(run_prompt(base_url, prompt, timeout, interrupt_when=r"window 1/\d+ done"))
    problems = []
    if "execution_interrupted" not in events:
        return [f"Cancel: the run was not interrupted (events {events[-4:]})"]
    if "execution_error" in events:
        problems.append("Cancel: the host reported an error, not 'interrupted'")
    if list((base / "output" / "infinitetalk_e2e").glob("resumed*")):
        problems.append("Cancel: an MP4 was written for the interrupted run")
    stores = [m for m in _manifests(base) if not m.get("complete")]
    kept = max((len(m.get("windows", [])) for m in stores), default=0)
    log(f"Cancel: stores on disk after the interrupt: {[(len(m.get('windows', [])), m.get('num_windows')) for m in stores]}")
    if kept < 1:
        return problems + ["Cancel: no finished window was kept on disk"]

    log("Cancel: queueing the same prompt again (it must resume)")
    entry, texts, events = asyncio.run(run_prompt(base_url, prompt, timeout))
    resumed = [t for _, t in texts if t.startswith("resuming at window")]
    if not resumed:
        problems.append(f"Cancel: the second run did not resume (texts {[t for _, t in texts][:3]})")
    elif f"({kept} finished)" not in resumed[0]:
        problems.append(f"Cancel: resumed with {resumed[0]!r}, {kept} window(s) were on disk")
    video = find_video(entry, base / "output")
    if video is None or not video.exists() or "resumed" not in video.name:
        return problems + [f"Cancel: the resumed run wrote no MP4 (events {events[-3:]})"]
    ours, reference = frames_of(video), frames_of(reference_video)
    same = len(ours) == len(reference) and all((a == b).all() for a, b in zip(ours, reference, strict=True))
    log(f"Cancel: resumed run {video.name}: {len(ours)} frames, "
        f"{'equal to' if same else 'DIFFERENT from'} the uninterrupted run's {len(reference)}")
    if not same:
        problems.append("Cancel: the resumed run's frames differ from the uninterrupted run's")
    return problems


# The other examples' input files (what scripts/comfyui/comfyui_validate_examples.py lays out): MEDIA (shared or generated).
EXAMPLE_INPUTS = {"two_people.png": "two_people_832x480.jpg", "source_clip.mp4": "source_talk_4s.mp4",
                  "background.mp4": "animate_background_3s.mp4", "mask.mp4": "animate_mask_3s.mp4", **ANIMATE_INPUTS}
OTHER_EXAMPLES = ("infinitetalk_two_speakers", "infinitetalk_video_dubbing", "wan_i2v_no_audio", "wananimate_replacement")
TALK_FRAMES = 29  # two 17-frame windows with 5 motion frames: max_frames of the InfiniteTalk examples here


def other_examples(base_url: str, base: Path, names: dict, inputs: dict, clip_vision: str, tiny: dict,
                   timeout: float) -> list[str]:
    """Every other API example, adapted the same way, must run and give an H.264 MP4 of the expected length,
    with sound where the example connects audio to Video Combine."""
    import av

    for name, src in EXAMPLE_INPUTS.items():
        shutil.copy(MEDIA / src, base / "input" / name)
    detection_standins(base)
    problems = []
    for stem in OTHER_EXAMPLES:
        original = json.loads((REPO / "examples" / "api" / f"{stem}_api.json").read_text())
        image = next((n["inputs"]["image"] for n in original.values() if n["class_type"] == "LoadImage"), inputs["image"])
        prompt = adapt_workflow(original, names, {**inputs, "image": image}, clip_vision, tiny)
        expected, fps, audio = TALK_FRAMES, 25.0, False
        for node in prompt.values():
            if node["class_type"] == "InfiniteTalkSampler":
                node["inputs"]["max_frames"] = TALK_FRAMES
            elif node["class_type"] == "InfiniteTalkAnimateSampler":
                node["inputs"].update(TINY_ANIMATE)
                expected, fps = TINY_ANIMATE["max_frames"], node["inputs"]["fps"]
            elif node["class_type"] == "InfiniteTalkAnimatePreprocess":
                node["inputs"].update(TINY_PREPROCESS)
            elif node["class_type"] == "InfiniteTalkVideoCombine":
                node["inputs"]["filename_prefix"] = f"infinitetalk_e2e/{stem}"
                audio = "audio" in node["inputs"]
        log(f"example {stem}: queueing it (tiny models, {expected} frames)")
        entry, texts, events = asyncio.run(run_prompt(base_url, prompt, timeout))
        video = find_video(entry, base / "output")
        if "execution_error" in events or video is None or not video.exists() or stem not in video.name:
            problems.append(f"example {stem}: the run failed or wrote no MP4 (events {events[-3:]})")
            continue
        found = check_mp4(video, seconds_of(expected, fps))
        if not audio:  # no audio connected: a silent MP4 is right
            found = [p for p in found if p != "no audio stream"]
            with av.open(str(video)) as container:
                silent = not any(s.type == "audio" for s in container.streams)
            if not silent:
                found.append("an audio stream, though the example connects no audio")
        problems += [f"example {stem}: {p}" for p in found]
        log(f"example {stem}: {'ok' if not found else 'FAILED'} ({video.name})")
    return problems
