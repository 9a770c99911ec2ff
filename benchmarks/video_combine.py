"""Video Combine: 1000 frames 480x832 + 40 s of speech -> one MP4 with sound. Speed, quality, size, memory.

Three ways to get the same video, each run in its own subprocess (so each peak RSS is its own):

* ours:  `wanvideo.video.encode_video` (frames in memory as uint8 [N,H,W,3], streamed as raw RGB to
         one ffmpeg process that also takes the audio; H.264 crf 19 preset medium + AAC, one file).
* seed:  the pipeline this pack replaces: cv2 VideoWriter 'mp4v' (MPEG-4 part 2, no picture in
         Chromium), then `ffmpeg -c:v copy -c:a aac -b:a 192k -shortest` (leaves 3 files).
* bound: the encoder alone: the same ffmpeg binary and the exact same arguments as ours, reading
         the same raw frames (and audio) from files on disk instead of pipes.
  (opt-in) ours_image: ours fed a ComfyUI IMAGE (float32 torch tensor, 4x the memory).

Frames: the test portrait moved a few pixels per frame plus moving grain (content that changes
every frame). PSNR is measured against those source frames on every decoded frame.
bound_ratio = ours frames/s / bound frames/s (target >= 0.95); peak_rss_mb = ours (Python process
peak + its ffmpeg's peak; target <= input frames + 300 MB).

Run it alone on the machine:  flock /tmp/wanvideo-heavy.lock python benchmarks/video_combine.py
Ends with RESULT name=value lines.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
sys.path.insert(0, str(REPO))

from _harness import PeakMemory, child_result, result, run_child

FPS = 25


# -- source material (deterministic, regenerated for PSNR) -------------------------------------------

class Source:
    def __init__(self, width: int, height: int):
        import cv2

        img = cv2.imread(str(MEDIA / "portrait_480x832.png"), cv2.IMREAD_COLOR)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if img.shape[:2] != (height, width):
            img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
        self.base = img.astype(np.int16)
        rng = np.random.default_rng(1234)
        self.grain = [rng.integers(-6, 7, (height, width, 1), dtype=np.int16) for _ in range(16)]

    def frame(self, i: int) -> np.ndarray:
        dx = int(round(8 * np.sin(2 * np.pi * i / 50)))
        dy = int(round(5 * np.sin(2 * np.pi * i / 37)))
        moved = np.roll(self.base, (dy, dx), axis=(0, 1))
        grain = np.roll(self.grain[i % 16], 3 * i, axis=1)
        return np.clip(moved + grain, 0, 255).astype(np.uint8)

    def frames(self, n: int) -> np.ndarray:
        out = np.empty((n,) + self.base.shape, np.uint8)
        for i in range(n):
            out[i] = self.frame(i)
        return out


def speech(seconds: float):
    import soundfile as sf

    wave, rate = sf.read(str(MEDIA / "speech_long.flac"), dtype="float32", always_2d=False)
    return wave[: int(round(seconds * rate))], rate


def _self_cpu_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def _usage(memory: PeakMemory, self_cpu0: float) -> dict:
    """Peak RSS of the Python process and of its ffmpeg children (sampled apart), CPU time of each side; the
    sampling thread's own CPU time is taken off the Python side's."""
    memory.stop()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self_peak_mb": memory.own_peak / 2**20, "child_peak_mb": memory.children_peak / 2**20,
        "self_cpu_s": _self_cpu_s() - self_cpu0 - memory.sampler_cpu_s, "child_cpu_s": kids.ru_utime + kids.ru_stime,
    }


# -- workers (one per subprocess) ---------------------------------------------------------------------

def worker_ours(args) -> dict:
    from wanvideo.video import encode_video

    memory = PeakMemory(interval=0.05).start()  # the whole worker, the frames in memory included

    source = Source(args.width, args.height)
    if args.worker == "ours_image":
        import torch

        # A ComfyUI IMAGE (float32 [N,H,W,3] in 0..1), filled frame by frame so the uint8 copy never exists.
        frames = torch.empty((args.frames, args.height, args.width, 3), dtype=torch.float32)
        for i in range(args.frames):
            frames[i] = torch.from_numpy(source.frame(i)).float().div_(255.0)
    else:
        frames = source.frames(args.frames)
    audio, rate = speech(args.frames / FPS)
    cpu0 = _self_cpu_s()
    start = time.perf_counter()
    written = encode_video(frames, args.out, FPS, audio, rate, crf=args.crf, preset=args.preset,
                          temp_dir=args.workdir)
    elapsed = time.perf_counter() - start
    usage = _usage(memory, cpu0)
    return {"seconds": elapsed, "files": [written.path], "writer": written.writer,
            "input_mb": frames.nbytes / 2**20 if hasattr(frames, "nbytes") else frames.numel() * 4 / 2**20, **usage}


def worker_seed(args) -> dict:
    import cv2
    import soundfile as sf

    from wanvideo.video.ffmpeg_locate import find_ffmpeg

    memory = PeakMemory(interval=0.05).start()
    frames = Source(args.width, args.height).frames(args.frames)
    audio, rate = speech(args.frames / FPS)
    base = os.path.splitext(args.out)[0]
    silent, wav = base + "_silent.mp4", base + "_audio.wav"
    cpu0 = _self_cpu_s()
    start = time.perf_counter()
    writer = cv2.VideoWriter(silent, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (args.width, args.height))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    sf.write(wav, audio, rate)
    subprocess.run([find_ffmpeg(), "-v", "error", "-y", "-i", silent, "-i", wav, "-c:v", "copy", "-c:a", "aac",
                    "-b:a", "192k", "-shortest", args.out], check=True)
    elapsed = time.perf_counter() - start
    usage = _usage(memory, cpu0)
    return {"seconds": elapsed, "files": [args.out, silent, wav], "writer": "cv2 mp4v + ffmpeg mux",
            "input_mb": frames.nbytes / 2**20, **usage}


def worker_bound(args) -> dict:
    from fractions import Fraction

    from wanvideo.video.audio_track import AudioTrack, prepare_audio
    from wanvideo.video.ffmpeg_locate import find_ffmpeg
    from wanvideo.video.ffmpeg_writer import FfmpegWriter
    from wanvideo.video.formats import get_format

    memory = PeakMemory(interval=0.05).start()
    audio, rate = speech(args.frames / FPS)
    data, rate = prepare_audio(audio, rate)
    track = AudioTrack(data, rate, Fraction(FPS))
    writer = FfmpegWriter(find_ffmpeg(), args.out, get_format("h264-mp4"), args.width, args.height, Fraction(FPS),
                          args.crf, args.preset, audio=track)
    cmd = writer._build(audio_src=args.raw_audio, meta_src=None)  # exactly our arguments...
    cmd[cmd.index("pipe:0")] = args.raw_video  # ...with the frames read from a file on disk
    cpu0 = _self_cpu_s()
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - start
    usage = _usage(memory, cpu0)
    return {"seconds": elapsed, "files": [args.out], "writer": "ffmpeg from files", "input_mb": 0.0, **usage}


# -- parent -------------------------------------------------------------------------------------------

def run_worker(name: str, args, out: str, extra=()) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--out", out, "--frames", str(args.frames),
           "--width", str(args.width), "--height", str(args.height), "--crf", str(args.crf),
           "--preset", args.preset, "--workdir", args.workdir, *extra]
    return run_child(__file__, cmd[2:])


def mean_psnr(path: str, source: Source, n: int, width: int, height: int) -> tuple[float, int]:
    from wanvideo.video.ffmpeg_locate import find_ffmpeg

    proc = subprocess.Popen([find_ffmpeg(), "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                            stdout=subprocess.PIPE)
    size = width * height * 3
    values, i = [], 0
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        if i < n:
            a = np.frombuffer(buf, np.uint8).reshape(height, width, 3).astype(np.float32)
            mse = float(np.mean((a - source.frame(i)) ** 2))
            values.append(99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse))
        i += 1
    proc.wait()
    return float(np.mean(values)), i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=832)
    ap.add_argument("--crf", type=int, default=19)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--repeats", type=int, default=3, help="ours and bound are run this many times, alternating; best kept")
    ap.add_argument("--image-tensor", action="store_true", help="also run ours on a float32 IMAGE tensor (4x the RAM)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--raw-video", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--raw-audio", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        fn = {"ours": worker_ours, "ours_image": worker_ours, "seed": worker_seed, "bound": worker_bound}[args.worker]
        child_result(fn(args))
        return

    from fractions import Fraction

    from wanvideo.video.audio_track import AudioTrack, prepare_audio

    own_tmp = args.workdir is None
    args.workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="wanvideo_bench_"))
    work = Path(args.workdir)
    source = Source(args.width, args.height)
    input_mb = args.frames * args.width * args.height * 3 / 2**20
    print(f"{args.frames} frames {args.width}x{args.height} ({input_mb:.0f} MB as uint8) + {args.frames / FPS:.0f} s "
          f"of speech; libx264 crf {args.crf} preset {args.preset}; {os.cpu_count()} CPUs; work dir {work}")

    # The bound's inputs on disk: raw frames and raw audio, written before anything is timed.
    raw_video, raw_audio = str(work / "frames.rgb"), str(work / "audio.f32le")
    with open(raw_video, "wb") as f:
        for i in range(args.frames):
            f.write(source.frame(i).tobytes())
    audio, rate = speech(args.frames / FPS)
    data, rate = prepare_audio(audio, rate)
    track = AudioTrack(data, rate, Fraction(FPS))
    with open(raw_audio, "wb") as f:
        f.write(track.interleaved(0, track.samples_for(args.frames)))

    runs: dict[str, list] = {"ours": [], "bound": []}
    for r in range(args.repeats):
        for name in (("bound", "ours") if r % 2 == 0 else ("ours", "bound")):
            extra = ("--raw-video", raw_video, "--raw-audio", raw_audio) if name == "bound" else ()
            res = run_worker(name, args, str(work / f"{name}_{r}.mp4"), extra)
            runs[name].append(res)
            print(f"  {name} run {r + 1}: {args.frames / res['seconds']:.1f} frames/s")
    best = {name: min(rs, key=lambda x: x["seconds"]) for name, rs in runs.items()}
    best["seed"] = run_worker("seed", args, str(work / "seed.mp4"))
    if args.image_tensor:
        best["ours_image"] = run_worker("ours_image", args, str(work / "ours_image.mp4"))

    print()
    print(f"{'approach':<11} {'frames/s':>9} {'PSNR dB':>8} {'size MB':>8} {'files':>5} {'peak RSS MB':>12} "
          f"{'(self+ffmpeg)':>15} {'CPU s py/ffmpeg':>16}  writer")
    figures = {}
    for name, res in best.items():
        fps = args.frames / res["seconds"]
        quality, decoded = mean_psnr(res["files"][0], source, args.frames, args.width, args.height)
        size = os.path.getsize(res["files"][0]) / 2**20
        peak = res["self_peak_mb"] + res["child_peak_mb"]
        figures[name] = {"fps": fps, "psnr": quality, "size": size, "peak": peak, "decoded": decoded, **res}
        print(f"{name:<11} {fps:9.1f} {quality:8.2f} {size:8.2f} {len(res['files']):5d} {peak:12.0f} "
              f"{res['self_peak_mb']:7.0f}+{res['child_peak_mb']:<7.0f} {res['self_cpu_s']:7.1f}/{res['child_cpu_s']:<8.1f}  "
              f"{res['writer']}")
        if decoded != args.frames:
            print(f"  note: {name} output decodes to {decoded} frames, not {args.frames}")

    ours, bound, seed = figures["ours"], figures["bound"], figures["seed"]
    print()
    # CPU view (robust to other load on a shared machine): the encoder's CPU over everything ours used.
    cpu_ratio = bound["child_cpu_s"] / (ours["child_cpu_s"] + ours["self_cpu_s"])
    print(f"ours / bound speed: {ours['fps'] / bound['fps']:.3f} (wall, best of {args.repeats}); "
          f"CPU: bound {bound['child_cpu_s']:.1f} s vs ours {ours['child_cpu_s']:.1f} + {ours['self_cpu_s']:.2f} s "
          f"-> {cpu_ratio:.3f}; ours / seed speed: {ours['fps'] / seed['fps']:.3f}")
    print(f"PSNR ours - seed: {ours['psnr'] - seed['psnr']:+.2f} dB; ours peak RSS over the input frames: "
          f"{ours['peak'] - input_mb:.0f} MB (target <= 300)")
    if own_tmp:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    result("ours_fps", ours["fps"], ".1f")
    result("bound_fps", bound["fps"], ".1f")
    result("seed_fps", seed["fps"], ".1f")
    if "ours_image" in figures:
        result("ours_image_fps", figures["ours_image"]["fps"], ".1f")
        result("ours_image_peak_rss_mb", figures["ours_image"]["peak"], ".0f")
        result("ours_image_rss_over_input_mb", figures["ours_image"]["peak"] - figures["ours_image"]["input_mb"], ".0f")
    result("psnr_ours_db", ours["psnr"], ".2f")
    result("psnr_seed_db", seed["psnr"], ".2f")
    result("rss_over_input_mb", ours["peak"] - input_mb, ".0f")
    result("cpu_ratio", cpu_ratio, ".3f")
    result("bound_ratio", ours["fps"] / bound["fps"], ".3f")
    result("peak_rss_mb", ours["peak"], ".0f")


if __name__ == "__main__":
    main()
