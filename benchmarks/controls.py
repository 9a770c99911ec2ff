"""What the controls cost: face-only dubbing against plain dubbing, audio_scale against the default, a prompt per
window against one prompt. One run each of the same dubbing job through `wanvideo.sampling.generate` with the tiny
random-weight set on the CPU (best of `--repeats`), so the ratios say how much work a control adds to the loop, not
how a 14B model's window time changes (there the DiT dominates and the extra VAE encode of face-only is a smaller
share).

RESULT lines (ratios against the plain run in the same process):
  face_only_time_ratio        run time with an edit mask (source encode per window, blend per step, composite) / plain
  face_box_seconds_per_frame  face_only's face search (person detector + whole-body pose + face box, onnxruntime on the
                              CPU) per 480x832 frame of the test clip, with the stand-in ONNX files of the fixtures (the
                              real yolov10m / ViTPose-H cost more per frame; their time is the same per frame)
  face_search_peak_memory_ratio  peak Python/numpy memory of the face search over 40 frames / over 10 (flat: ~1)
  audio_scale_time_ratio      run time with audio_scale 1.5 / 1.0 (expected ~1: one multiply per block)
  prompts_per_window_time_ratio  run time with a prompt per window / one prompt (expected ~1)

    flock /tmp/wanvideo-heavy.lock .venv/bin/python benchmarks/controls.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch
from _harness import result

from wanvideo.animate_preprocess import PreprocessModels
from wanvideo.app.media import read_video
from wanvideo.audio import AudioEmbeddings
from wanvideo.sampling import SamplerSettings, generate
from wanvideo.sampling.conditioning import ReferenceFrames
from wanvideo.sampling.face_box import face_boxes
from wanvideo.tiny import tiny_models


def _clip(frames: int, height: int, width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    return torch.rand(frames, height, width, 3, generator=g)


def _timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _peak_memory(fn) -> int:
    """Peak bytes Python and numpy allocate while `fn` runs (tracemalloc; onnxruntime's own arena is not counted)."""
    import tracemalloc

    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    models = tiny_models(seed=0)
    height, width, frames = 96, 128, 41
    source = _clip(frames, height, width)
    cfg = models.dit.config
    speech = AudioEmbeddings(speakers=[torch.randn(frames, cfg["audio_layers"], cfg["audio_channels"])], fps=25.0,
                             waveform=torch.zeros(frames * 640), sample_rate=16000)
    mask = torch.zeros(1, height, width)
    mask[:, 24:72, 40:88] = 1.0
    base = dict(width=width, height=height, frame_window=17, motion_frames=5, steps=args.steps, cfg=1.0,
                audio_cfg=2.0)

    def run(context=models.context, edit_mask=None, **extra):
        with tempfile.TemporaryDirectory() as root:  # a fresh store each time: nothing resumed
            generate(models.dit, models.vae, source, models.clip_fea, audio=speech, context=context,
                     context_null=models.context_null, store_root=root, edit_mask=edit_mask,
                     settings=SamplerSettings(**base, **extra))

    plain = _timed(run, args.repeats)
    face = _timed(lambda: run(edit_mask=mask), args.repeats)
    scaled = _timed(lambda: run(audio_scale=1.5), args.repeats)
    prompts = [models.context, torch.randn_like(models.context), torch.randn_like(models.context)]
    per_window = _timed(lambda: run(context=prompts), args.repeats)
    video, _ = read_video(str(REPO.parent / "shared" / "media" / "source_talk_4s.mp4"))  # a drawn face, 480x832
    onnx = REPO.parent / "shared" / "fixtures" / "onnx"
    detector = PreprocessModels(detector=str(onnx / "yolov10m_standin.onnx"),
                                pose=str(onnx / "vitpose_h_wholebody_standin.onnx"))
    clip = ReferenceFrames(video[:40])
    face_boxes(ReferenceFrames(video[:2]), 2, detector)  # sessions made once, outside the timing
    started = time.perf_counter()
    face_boxes(clip, len(clip), detector)
    per_frame = (time.perf_counter() - started) / len(clip)
    peaks = [_peak_memory(lambda n=n: face_boxes(clip, n, detector)) for n in (10, 40)]
    print(f"plain dubbing run: {plain:.2f} s ({args.steps} steps, {width}x{height}, {frames} frames, tiny set, CPU)")
    result("face_only_time_ratio", face / plain, ".3f")
    result("face_box_seconds_per_frame", per_frame, ".4f")
    result("face_search_peak_memory_ratio", peaks[1] / peaks[0], ".3f")
    result("audio_scale_time_ratio", scaled / plain, ".3f")
    result("prompts_per_window_time_ratio", per_window / plain, ".3f")


if __name__ == "__main__":
    main()
