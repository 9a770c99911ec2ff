"""The e2e script's multi-GPU runs in the real ComfyUI (`--multi-gpu`): the InfiniteTalk run again with an
InfiniteTalk Multi-GPU node on the sampler's `parallel` input, on two CPU devices (ComfyUI runs with --cpu):

- `guidance_split` on `cpu,cpu`: the passes of each step in two threads of the ComfyUI process;
- `sequence_parallel` on `cpu,cpu`: two worker processes started from inside ComfyUI (they import only the engine,
  under its top-level name), each window sent to them and its latent sent back.

Each must write an MP4, and its frame store (lossless) must equal a one-device run's within 8-bit rounding (the MP4s
themselves are compared loosely: H.264 turns a pixel off by one into a differently coded block). All three
runs compute in fp32: in bf16 the guidance split's batches (2 passes + 1 instead of 3) round differently, as
switching guidance batching on one device does, and a random-weight tiny model magnifies that into visible pixels.
"""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
from comfyui_e2e_more_runs import frames_of
from e2e_common import REPO, find_video, log, run_prompt

NODE_ID = "9001"
WIDGETS = {"devices": "cpu,cpu", "fsdp": False, "sequence_split": "ulysses", "worker_backend": "local",
           "ray_address": "", "idle_timeout": 600, "worker_timeout": 900}


def _store_frames(base: Path, mode: str) -> np.ndarray:
    """The run's frame store (moved aside, so the next run makes its own), read with the engine's FrameStore."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from wanvideo.video.frame_store import FrameStore

    frames = base / "output" / "infinitetalk_frames"
    kept = base / "output" / f"multi_gpu_{mode}_frames"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.move(str(frames), str(kept))
    (store,) = [p for p in kept.iterdir() if p.is_dir()]
    return FrameStore(str(store)).read_frames()


def multi_gpu_runs(base_url: str, base: Path, prompt: dict, timeout: float) -> list[str]:
    problems = []
    reference = None
    for mode in ("one_device", "guidance_split", "sequence_parallel"):
        run = json.loads(json.dumps(prompt))
        if mode != "one_device":
            run[NODE_ID] = {"class_type": "InfiniteTalkMultiGPU", "inputs": {"parallel": mode, **WIDGETS}}
        for node in run.values():
            if node["class_type"] == "InfiniteTalkModelLoader":
                node["inputs"]["precision"] = "fp32"
            if node["class_type"] == "InfiniteTalkSampler":
                if mode != "one_device":
                    node["inputs"]["parallel"] = [NODE_ID, 0]
                node["inputs"]["frames_folder"] = "output"  # a store of its own, so the sampler really runs
            if node["class_type"] == "InfiniteTalkVideoCombine":
                node["inputs"]["filename_prefix"] = f"infinitetalk_e2e/{mode}"
        shutil.rmtree(base / "output" / "infinitetalk_frames", ignore_errors=True)
        log(f"Multi-GPU: the InfiniteTalk run, fp32, {mode}")
        entry, texts, events = asyncio.run(run_prompt(base_url, run, timeout))
        video = find_video(entry, base / "output")
        if "execution_error" in events or video is None or not video.exists() or mode not in video.name:
            problems.append(f"Multi-GPU {mode}: no MP4 (events {events[-3:]}, texts {[t for _, t in texts][-3:]})")
            continue
        ours = _store_frames(base, mode)
        if reference is None:
            reference = ours
            log(f"Multi-GPU: one-device fp32 run {video.name}: {len(frames_of(video))} frames in the MP4")
            continue
        worst = int(np.abs(ours.astype(int) - reference.astype(int)).max()) if ours.shape == reference.shape else -1
        log(f"Multi-GPU {mode}: {video.name}: {len(ours)} stored frames, largest pixel difference from the "
            f"one-device run's {worst}")
        if worst < 0 or worst > 1:
            problems.append(f"Multi-GPU {mode}: stored frames {ours.shape}, largest difference {worst} from the "
                            f"one-device run's {reference.shape}")
    return problems
