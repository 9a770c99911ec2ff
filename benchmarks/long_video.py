"""Long video: memory must not grow with length. 1 minute vs 10 minutes of speech, whole path.

embeddings (tiny wav2vec2) -> InfiniteTalk window loop (tiny random-weight DiT + diffusers AutoencoderKLWan of real
compression: 8x space, 4x time, 16 latent channels) at 480x832 -> frame store on disk -> Video Combine
(`wanvideo.video.write_video`, H.264 + AAC, one MP4).

Each duration runs in its own subprocess so each peak RSS is its own (the Python process's resident size plus
its ffmpeg children's, sampled together: benchmarks/_harness.py). Defaults follow the reference loop (frame_window 81,
motion_frames 9) with 2 Euler steps and cfg = audio_cfg = 1 (one model pass per step): guidance passes and
steps repeat the same forward and do not change memory, only time.

Run it alone on the machine:
    flock /tmp/wanvideo-heavy.lock .venv/bin/python benchmarks/long_video.py
Ends with RESULT lines; peak_rss_ratio = peak(longest) / peak(shortest), target <= 1.1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("WANVIDEO_MEDIA", REPO.parent / "shared" / "media"))
sys.path.insert(0, str(REPO))

from _harness import PeakMemory, child_result, result, run_child


def speech(seconds: float):
    """The long test speech, repeated to `seconds` (16 kHz mono float32)."""
    import numpy as np
    import soundfile as sf

    wave, rate = sf.read(str(MEDIA / "speech_long.flac"), dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    n = int(round(seconds * rate))
    return np.resize(wave, n).astype(np.float32), rate


def portrait():
    import av
    import torch

    with av.open(str(MEDIA / "portrait_480x832.png")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return torch.from_numpy(frame).float().div(255)[None]  # IMAGE [1, 832, 480, 3]


def child(args) -> dict:
    import torch

    from wanvideo.audio import build_audio_embeddings
    from wanvideo.sampling import SamplerSettings, generate
    from wanvideo.tiny import tiny_models
    from wanvideo.video import write_video

    torch.set_num_threads(args.threads)
    work = Path(args.work) / f"{args.minutes:g}min"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sampler = PeakMemory(interval=0.05).start()  # `phase` names the part of the work under way
    times = {}
    t0 = time.perf_counter()

    sampler.phase = "setup"
    models = tiny_models(seed=0)
    image = portrait()
    wave, rate = speech(args.minutes * 60)
    times["setup"] = time.perf_counter() - t0

    sampler.phase = "embeddings"
    t = time.perf_counter()
    embeds = build_audio_embeddings(models.wav2vec, wave, rate)
    times["embeddings"] = time.perf_counter() - t
    del wave

    sampler.phase = "sampler"
    t = time.perf_counter()
    log = open(work / "windows.log", "w", buffering=1)
    width, height = (int(v) for v in args.size.split("x"))
    settings = SamplerSettings(frame_window=args.frame_window, motion_frames=args.motion_frames, steps=args.steps,
                               cfg=1.0, audio_cfg=1.0, width=width, height=height, seed=0)

    def done(index, store):
        own, kids = sampler.current()
        line = (f"window {index + 1}/{store.num_windows} frames {len(store)}/{store.total_frames} "
                f"t={time.perf_counter() - t:.0f}s rss={own / 2**20:.0f}MB")
        log.write(line + "\n")
        if index % 10 == 0 or index + 1 == store.num_windows:
            print(f"[{args.minutes:g} min] {line}", file=sys.stderr, flush=True)

    store = generate(models.dit, models.vae, image, models.clip_fea, audio=embeds, context=models.context,
                     context_null=models.context_null, settings=settings, store_root=str(work / "frames"),
                     on_window_done=done)
    times["sampler"] = time.perf_counter() - t
    store_bytes = sum(f.stat().st_size for f in Path(store.path).iterdir())

    sampler.phase = "combine"
    t = time.perf_counter()
    out = write_video(store, str(work / "out.mp4"), store.fps, audio=embeds.waveform.numpy(),
                      sample_rate=embeds.sample_rate, preset=args.preset)
    times["combine"] = time.perf_counter() - t
    mp4_bytes = os.path.getsize(out)
    sampler.stop()
    times["total"] = time.perf_counter() - t0

    figures = dict(
        minutes=args.minutes, frames=len(store), expected_frames=embeds.num_frames, windows=store.num_windows,
        times=times, store_mb=store_bytes / 2**20, mp4_mb=mp4_bytes / 2**20,
        phase_peaks_mb={k: [v / 2**20 for v in vals] for k, vals in sampler.phase_peaks.items()},
        peak_rss_mb=sampler.peak / 2**20,  # the whole path's: the Python process plus its encoder children
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", default="1,10", help="comma-separated audio lengths (default 1,10)")
    parser.add_argument("--size", default="480x832", help="WIDTHxHEIGHT (default 480x832)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--frame-window", type=int, default=81)
    parser.add_argument("--motion-frames", type=int, default=9)
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the final MP4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=str(REPO / ".bench" / "long_video"))
    parser.add_argument("--keep", action="store_true", help="keep frame stores and MP4s")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        args.minutes = float(args.minutes)
        child_result(child(args))
        return

    results = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        cmd = [sys.executable, __file__, "--child", "--minutes", str(minutes), "--size", args.size,
               "--steps", str(args.steps), "--frame-window", str(args.frame_window), "--motion-frames",
               str(args.motion_frames), "--preset", args.preset, "--threads", str(args.threads), "--work", args.work]
        if args.keep:
            cmd.append("--keep")
        print(f"== {minutes:g} min of audio: {' '.join(cmd[1:])}", flush=True)
        run = run_child(__file__, cmd[2:], threads=args.threads)
        results.append(run)
        t = run["times"]
        print(f"   frames {run['frames']} (audio {run['expected_frames']}), windows {run['windows']}; "
              f"wall {t['total']:.0f} s (embeddings {t['embeddings']:.0f}, sampler {t['sampler']:.0f} = "
              f"{t['sampler'] / run['windows']:.1f} s/window, combine {t['combine']:.0f}); "
              f"peak RSS {run['peak_rss_mb']:.0f} MB; store {run['store_mb']:.0f} MB, mp4 {run['mp4_mb']:.1f} MB",
              flush=True)
        for phase, (own, kids, both) in run["phase_peaks_mb"].items():
            print(f"   peak {phase:<10} python {own:7.0f} MB  children {kids:6.0f} MB  together {both:7.0f} MB")
        if run["frames"] != run["expected_frames"]:
            raise SystemExit("frame count differs from the audio's")

    base, longest = results[0], results[-1]
    for r in results:
        tag = f"{r['minutes']:g}min"
        result(f"wall_s_{tag}", r["times"]["total"], ".0f")
        result(f"peak_rss_mb_{tag}", r["peak_rss_mb"], ".0f")
    result("peak_rss_ratio", longest["peak_rss_mb"] / base["peak_rss_mb"], ".3f")


if __name__ == "__main__":
    main()
