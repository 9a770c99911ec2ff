"""WanAnimate preprocessing on the CPU with the fixtures' ONNX stand-ins: speed per stage, memory flat in length.

1. Per stage, frames per second over a synthetic clip (a drawn person, 480x832): detect (detector preprocess +
   session + NMS + person choice), pose (crop + pose session + DARK decode), render (retargeted drawing at the
   character's size), face (box + 512x512 crop), mask (pose hull + dilation + grid + background); and the whole
   animation run (`preprocess_fps`, frames in / seconds). The stand-ins are tiny, so the real models' session
   time is missing: these figures are the pack's own per-frame cost around the models.
2. peak_rss_ratio: the whole replacement run (every stage) over a long driving clip vs a short one, each in its
   own subprocess (peak resident size, benchmarks/_harness.py), frames produced lazily by index as a video reader gives them and outputs
   handed to a sink that drops them, as the node and the command line stream them. Goal <= 1.2.

    .venv/bin/python benchmarks/animate_preprocess.py     # --frames 40 --short 300 --long 1200 --size 120x208
Ends with RESULT lines.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _harness import PeakMemory, child_result, result, run_child

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
ONNX = REPO.parent / "shared" / "fixtures" / "onnx"
DETECTOR, POSE = str(ONNX / "yolov10m_standin.onnx"), str(ONNX / "vitpose_h_wholebody_standin.onnx")


class LazyClip:
    """Driving frames made on demand by index (nothing kept), like a video reader."""

    def __init__(self, count: int, height: int, width: int):
        self.count, self.height, self.width = count, height, width

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        from testlib.synthetic_person import person_frame

        return person_frame(int(index), height=self.height, width=self.width)


def _fps(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def stage_speeds(frames: int) -> dict:
    from wanvideo import animate_preprocess as ap
    from wanvideo.animate_preprocess.detector import detector_input, detector_postprocess, select_person
    from wanvideo.animate_preprocess.face import FaceCropper
    from wanvideo.animate_preprocess.heatmap_decode import decode_heatmaps
    from wanvideo.animate_preprocess.masks import background, pose_hull_mask, replacement_mask
    from wanvideo.animate_preprocess.onnx_runtime import onnx_model
    from wanvideo.animate_preprocess.pipeline import preprocess_animate

    clip = LazyClip(frames, 832, 480)
    images = [clip[i] for i in range(frames)]
    character = clip[0]
    detector, pose_model = onnx_model(DETECTOR), onnx_model(POSE)
    boxes = {}

    def detect(i):
        boxes[i] = select_person(detector_postprocess(detector(detector_input(images[i])), (832, 480)), (832, 480))

    kps = {}

    def pose(i):
        crop, center, scale = ap.pose_crop(images[i], boxes[i])
        points, scores = decode_heatmaps(pose_model(crop[None]), center[None], scale[None] * 200)
        kps[i] = np.concatenate([points, scores], axis=2)[0]

    out = {"detect": _fps(detect, range(frames)), "pose": _fps(pose, range(frames))}
    metas = ap.pose_metas_from_keypoints(np.stack([kps[i] for i in range(frames)]), 480, 832)
    refer = ap.resize_by_area(character, 1280 * 720)
    refer_meta = ap.estimate_poses([refer], DETECTOR, POSE)[0]
    poses = ap.retarget_pose(metas[0], refer_meta, metas)
    out["render"] = _fps(lambda i: ap.render_retargeted(poses[i], *refer.shape[:2]), range(frames))
    cropper = FaceCropper((832, 480))
    out["face"] = _fps(lambda i: cropper(images[i], metas[i]), range(frames))
    out["mask"] = _fps(lambda i: background(images[i], replacement_mask(pose_hull_mask(metas[i], 832, 480))),
                       range(frames))
    start = time.perf_counter()
    preprocess_animate(clip, 30.0, character, DETECTOR, POSE, sink=lambda *a: None)
    out["preprocess"] = frames / (time.perf_counter() - start)
    return out


def rss_child(count: int, height: int, width: int) -> dict:
    from wanvideo.animate_preprocess.pipeline import preprocess_replace

    with PeakMemory() as memory:
        clip = LazyClip(count, height, width)
        out = preprocess_replace(clip, 30.0, clip[0], DETECTOR, POSE, resolution_area=(width, height),
                                 sink=lambda *a: None)
    return {"frames": len(out["frame_indices"]), "peak_mb": memory.peak / 2**20}


def peak_rss(count: int, size: tuple[int, int]) -> dict:
    return run_child(__file__, ["--child", str(count), "--size", f"{size[0]}x{size[1]}"], threads=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40, help="frames of the per-stage speed clip")
    ap.add_argument("--short", type=int, default=300)
    ap.add_argument("--long", type=int, default=1200)
    ap.add_argument("--size", default="120x208", help="driving frame size for the memory runs (WxH)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    if args.child:
        child_result(rss_child(args.child, size[1], size[0]))
        return 0
    speeds = stage_speeds(args.frames)
    for name, value in speeds.items():
        print(f"{name}: {value:.1f} frames/s")
    short, long = peak_rss(args.short, size), peak_rss(args.long, size)
    print(f"peak RSS: {short['peak_mb']:.0f} MiB for {short['frames']} frames, "
          f"{long['peak_mb']:.0f} MiB for {long['frames']}")
    for name in ("detect", "pose", "render", "face", "mask"):
        result(f"{name}_fps", speeds[name], ".2f")
    result("preprocess_fps", speeds["preprocess"], ".2f")
    result("peak_rss_ratio", long["peak_mb"] / short["peak_mb"], ".3f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
