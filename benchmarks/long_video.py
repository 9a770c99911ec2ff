"""Long video: memory must not grow with length. 1 minute vs 10 minutes of speech, whole path.

embeddings (tiny wav2vec2) -> InfiniteTalk window loop (tiny random-weight DiT + diffusers AutoencoderKLWan of real
compression: 8x space, 4x time, 16 latent channels) at 480x832 -> frame store on disk -> Video Combine
(`wanvideo.video.write_video`, H.264 + AAC, one MP4).

Each duration runs in its own subprocess so each peak RSS is its own (the Python process's ru_maxrss, plus the
highest RSS sampled over its ffmpeg children while encoding). Defaults follow the reference loop (frame_window 81,
motion_frames 9) with 2 Euler steps and cfg = audio_cfg = 1 (one model pass per step): guidance passes and
steps repeat the same forward and do not change memory, only time.

Run it alone on the machine:
    flock /tmp/wanvideo-heavy.lock .venv/bin/python benchmarks/long_video.py
Ends with RESULT lines; peak_rss_ratio = peak(longest) / peak(shortest), target <= 1.1.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("WANVIDEO_MEDIA", REPO.parent / "shared" / "media"))
sys.path.insert(0, str(REPO))


class RssSampler:
    """Samples the RSS of this process and its children every `interval` s; keeps the peak per phase."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.phase = "start"
        self.peaks = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def current(self) -> tuple[int, int]:
        own = self.proc.memory_info().rss
        children = 0
        for child in self.proc.children(recursive=True):
            try:
                children += child.memory_info().rss
            except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                pass
        return own, children

    def _run(self):
        while not self._stop.is_set():
            own, children = self.current()
            peak = self.peaks.setdefault(self.phase, [0, 0, 0])
            peak[0], peak[1], peak[2] = max(peak[0], own), max(peak[1], children), max(peak[2], own + children)
            time.sleep(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()


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
    sampler = RssSampler()
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

    result = dict(
        minutes=args.minutes, frames=len(store), expected_frames=embeds.num_frames, windows=store.num_windows,
        times=times, store_mb=store_bytes / 2**20, mp4_mb=mp4_bytes / 2**20,
        ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        phase_peaks_mb={k: [v / 2**20 for v in vals] for k, vals in sampler.peaks.items()},
    )
    # the whole path's peak: the Python process's own peak plus its encoder children's while encoding
    result["peak_rss_mb"] = max(result["ru_maxrss_mb"], max(p[2] for p in result["phase_peaks_mb"].values()))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


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
        print("CHILD_RESULT " + json.dumps(child(args)), flush=True)
        return

    results = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        cmd = [sys.executable, __file__, "--child", "--minutes", str(minutes), "--size", args.size,
               "--steps", str(args.steps), "--frame-window", str(args.frame_window), "--motion-frames",
               str(args.motion_frames), "--preset", args.preset, "--threads", str(args.threads), "--work", args.work]
        if args.keep:
            cmd.append("--keep")
        print(f"== {minutes:g} min of audio: {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD_RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stdout)
            raise SystemExit(f"benchmark child for {minutes:g} min failed (exit {proc.returncode})")
        result = json.loads(lines[-1][len("CHILD_RESULT "):])
        results.append(result)
        t = result["times"]
        print(f"   frames {result['frames']} (audio {result['expected_frames']}), windows {result['windows']}; "
              f"wall {t['total']:.0f} s (embeddings {t['embeddings']:.0f}, sampler {t['sampler']:.0f} = "
              f"{t['sampler'] / result['windows']:.1f} s/window, combine {t['combine']:.0f}); "
              f"peak RSS {result['peak_rss_mb']:.0f} MB; store {result['store_mb']:.0f} MB, mp4 {result['mp4_mb']:.1f} MB",
              flush=True)
        for phase, (own, kids, both) in result["phase_peaks_mb"].items():
            print(f"   peak {phase:<10} python {own:7.0f} MB  children {kids:6.0f} MB  together {both:7.0f} MB")
        if result["frames"] != result["expected_frames"]:
            raise SystemExit("frame count differs from the audio's")

    base, longest = results[0], results[-1]
    for r in results:
        tag = f"{r['minutes']:g}min"
        print(f"RESULT wall_s_{tag}={r['times']['total']:.0f}")
        print(f"RESULT peak_rss_mb_{tag}={r['peak_rss_mb']:.0f}")
    print(f"RESULT peak_rss_ratio={longest['peak_rss_mb'] / base['peak_rss_mb']:.3f}")


if __name__ == "__main__":
    main()
