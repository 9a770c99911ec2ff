"""A preview (`--max-frames 9`) of long speech: the embedding's time no longer grows with the recording.

Real-size wav2vec2-base architecture (chinese-wav2vec2-base sizes, random weights) on the CPU; speech =
../shared/media/speech_long.flac repeated to the given lengths. For each length: the time of
`build_audio_embeddings(..., frame_limit=9)` (what the command line does for a 9-frame preview) and, at the
shortest length only, of the whole recording's embedding (what a preview cost before: the whole recording was
embedded, then cut). Interleaved repeats, median.

    .venv/bin/python benchmarks/preview_embedding.py           # --minutes 0.5 2 8 (a minute or two)
Ends with RESULT lines; the key figure is preview_time_ratio (longest / shortest recording; the goal is ~1).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SPEECH = REPO.parent / "shared" / "media" / "speech_long.flac"


def _speech(minutes: float):
    import numpy as np
    import soundfile as sf

    wave, rate = sf.read(str(SPEECH), dtype="float32")
    n = int(minutes * 60 * rate)
    return np.tile(wave, -(-n // wave.size))[:n], rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[0.5, 2.0, 8.0])
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from wanvideo.audio import build_audio_embeddings, random_wav2vec2
    from wanvideo.audio.checkpoint import bundled_config

    torch.set_num_threads(1)
    enc = random_wav2vec2(bundled_config()[0], seed=0)
    clips = {m: _speech(m) for m in args.minutes}
    times = {m: [] for m in args.minutes}
    for _ in range(args.repeats):
        for m, (wave, rate) in clips.items():
            start = time.perf_counter()
            build_audio_embeddings(enc, wave, rate, frame_limit=args.frames)
            times[m].append(time.perf_counter() - start)
    short = min(args.minutes)
    start = time.perf_counter()
    build_audio_embeddings(enc, *clips[short])  # the whole recording, as a preview used to embed it
    whole = time.perf_counter() - start
    from _harness import result

    medians = {m: statistics.median(t) for m, t in times.items()}
    for m, t in medians.items():
        result(f"preview_seconds_{m:g}min", t, ".3f")
    result(f"whole_recording_seconds_{short:g}min", whole, ".3f")
    result("preview_time_ratio", medians[max(args.minutes)] / medians[short], ".3f")
    result(f"preview_vs_whole_ratio_{short:g}min", medians[short] / whole, ".3f")


if __name__ == "__main__":
    main()
