"""Audio embeddings for long speech: time and peak memory, ours vs the straightforward whole-file path.

Real-size wav2vec2-base architecture (chinese-wav2vec2-base sizes, random
weights) on the CPU; speech = ../shared/media/speech_long.flac repeated to 1,
5 and 10 minutes. Each measurement runs in its own subprocess so its peak RSS
is its own.

* ours: `wanvideo.audio.build_audio_embeddings` (loudness, chunked conv with
  whole-clip GroupNorm statistics, SDPA attention, output written in place).
* baseline: the straightforward whole-file path (`whole_clip.embed_whole_clip`:
  conv encoder over the whole waveform in one call, transformers' encoder
  layers with eager attention, as the reference forces), plus the same
  loudness step. Its memory grows about 1 GB per minute, so it is run only
  where it stays under --baseline-max-gb (estimated from earlier
  measurements: 1.8 / 5.7 / 10.6 GB at 1 / 5 / 10 min).
* oracle (10 min only): a whole-clip computation that fits in memory, used to
  measure our deviation at 10 minutes: the first conv layer + torch's GroupNorm
  over the entire clip (channel slices: one group per channel, so slices are
  exact), the other conv layers each over the entire clip, then transformers'
  encoder layers with SDPA attention over all tokens.

Run it alone on the machine:  flock /tmp/wanvideo-heavy.lock python benchmarks/audio_embeds.py
Ends with RESULT lines; the key figures are time_ratio (ours / baseline at
1 minute) and extra_rss_ratio ((peak RSS - returned embeddings) at 10 minutes
over the same at 1 minute).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _harness import PeakMemory, child_result, result, run_child

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO.parent / "shared" / "media" / "speech_long.flac"
BASELINE_GB_PER_MIN = {1: 1.8, 5: 5.7, 10: 10.6}  # an earlier measurement of this baseline


def _speech(minutes: float):
    import numpy as np
    import soundfile as sf

    wave, rate = sf.read(str(SPEECH), dtype="float32")
    n = int(minutes * 60 * rate)
    reps = -(-n // wave.size)
    return np.tile(wave, reps)[:n], rate


def _oracle(enc, wave16k, fps=25.0):
    """Whole-clip numbers in bounded-enough memory (see module doc)."""
    import torch
    import torch.nn.functional as F

    from wanvideo.audio.features import interpolate_features, num_video_frames, prepare_model_input
    from wanvideo.audio.whole_clip import _layer_output, set_attention_implementation

    model = enc.model
    fe = model.feature_extractor
    x = prepare_model_input(enc, wave16k)[None, None]
    first = fe.conv_layers[0]
    w = first.conv.weight
    n0 = (x.shape[-1] - w.shape[-1]) // first.conv.stride[0] + 1
    h = torch.empty(1, w.shape[0], n0)
    gn = first.layer_norm
    bias = first.conv.bias
    for c0 in range(0, w.shape[0], 64):
        c1 = min(w.shape[0], c0 + 64)
        y = F.conv1d(x, w[c0:c1], None if bias is None else bias[c0:c1], stride=first.conv.stride)
        y = F.group_norm(y, c1 - c0, gn.weight[c0:c1], gn.bias[c0:c1], gn.eps)  # stats over the entire clip
        h[:, c0:c1] = first.activation(y)
        del y
    # The later conv layers are local: frame j of their output reads first-layer frames
    # [j*stride, j*stride + field); computed in windows of that, written in place.
    cfg = enc.config
    stride, field = 1, 1
    for k, s in zip(cfg.conv_kernel[1:], cfg.conv_stride[1:], strict=False):
        field += (k - 1) * stride
        stride *= s
    n_out = (n0 - field) // stride + 1
    feats_full = torch.empty(n_out, cfg.conv_dim[-1])
    for j0 in range(0, n_out, 4096):
        j1 = min(n_out, j0 + 4096)
        y = h[:, :, j0 * stride:(j1 - 1) * stride + field]
        for layer in fe.conv_layers[1:]:
            y = layer(y)
        feats_full[j0:j1] = y[0].T
    del h
    frames = num_video_frames(wave16k.size, fps)
    feats = interpolate_features(feats_full, frames)[None]
    hidden = model.feature_projection(feats)[0]
    hidden = model.encoder.layer_norm(hidden + model.encoder.pos_conv_embed(hidden))
    set_attention_implementation(model, "sdpa")
    out = torch.empty(frames, len(model.encoder.layers), hidden.shape[-1])
    for i, layer in enumerate(model.encoder.layers):
        hidden = _layer_output(layer(hidden, attention_mask=None))
        out[:, i] = hidden[0]
    return out


def worker(args) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from wanvideo.audio import build_audio_embeddings, random_wav2vec2
    from wanvideo.audio.checkpoint import bundled_config
    from wanvideo.audio.preprocess import prepare_waveform
    from wanvideo.audio.whole_clip import embed_whole_clip

    with PeakMemory() as memory:  # the whole worker process, the encoder included
        enc = random_wav2vec2(bundled_config()[0], seed=0)
        wave, rate = _speech(args.minutes)
        rss_before = memory.peak
        t0 = time.perf_counter()
        with torch.no_grad():
            if args.worker == "ours":
                emb = build_audio_embeddings(enc, wave, rate).speakers[0]
            elif args.worker == "baseline":
                processed, _ = prepare_waveform(wave, rate)
                emb = embed_whole_clip(enc, processed, attention="eager")
            else:
                processed, _ = prepare_waveform(wave, rate)
                emb = _oracle(enc, processed)
        seconds = time.perf_counter() - t0
    if args.out:
        np.save(args.out, emb.numpy())
    child_result({
        "kind": args.worker, "minutes": args.minutes, "seconds": seconds, "peak_rss": memory.peak,
        "rss_before_compute": rss_before, "embedding_bytes": emb.numel() * emb.element_size(),
        "shape": list(emb.shape),
    })


def _run(kind: str, minutes: float, threads: int, out: str | None) -> dict:
    return run_child(__file__, ["--worker", kind, "--minutes", str(minutes), "--threads", str(threads),
                                *(["--out", out] if out else [])], threads=threads)


def _max_abs_diff(a_path: str, b_path: str) -> tuple[float, float]:
    import numpy as np

    a = np.load(a_path, mmap_mode="r")
    b = np.load(b_path, mmap_mode="r")
    worst = 0.0
    scale = 0.0
    for i in range(0, a.shape[0], 1000):
        worst = max(worst, float(np.abs(a[i:i + 1000] - b[i:i + 1000]).max()))
        scale = max(scale, float(np.abs(b[i:i + 1000]).max()))
    return worst, scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="*", default=[1, 5, 10])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-max-gb", type=float, default=8.0,
                        help="skip the baseline where its expected peak exceeds this (the shared machine's limit)")
    parser.add_argument("--no-oracle", action="store_true", help="skip the 10-minute whole-clip deviation check")
    parser.add_argument("--worker", choices=["ours", "baseline", "oracle"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(argparse.Namespace(worker=args.worker, minutes=args.minutes[0], threads=args.threads, out=args.out))
        return

    gib = 1024 ** 3
    rows = {}
    with tempfile.TemporaryDirectory(prefix="wanvideo_audio_bench_") as tmp:
        for minutes in args.minutes:
            m = int(minutes) if float(minutes).is_integer() else minutes
            ours_path = os.path.join(tmp, f"ours_{m}.npy")
            ours = _run("ours", minutes, args.threads, ours_path)
            line = (f"{m:>4} min  ours     {ours['seconds']:7.1f} s ({ours['seconds'] / minutes:5.2f} s/min)  "
                    f"peak {ours['peak_rss'] / gib:5.2f} GB  embeddings {ours['embedding_bytes'] / gib:5.2f} GB")
            print(line, flush=True)
            rows[m] = {"ours": ours}
            expected = BASELINE_GB_PER_MIN.get(m, 1.0 * minutes + 0.8)
            if expected <= args.baseline_max_gb:
                base_path = os.path.join(tmp, f"baseline_{m}.npy")
                base = _run("baseline", minutes, args.threads, base_path)
                dev, scale = _max_abs_diff(ours_path, base_path)
                rows[m].update(baseline=base, deviation=dev, scale=scale)
                print(f"{m:>4} min  baseline {base['seconds']:7.1f} s ({base['seconds'] / minutes:5.2f} s/min)  "
                      f"peak {base['peak_rss'] / gib:5.2f} GB  max|ours - baseline| {dev:.2e} (max|emb| {scale:.1f})",
                      flush=True)
                os.remove(base_path)
            else:
                print(f"{m:>4} min  baseline skipped: expected peak ~{expected:.1f} GB > {args.baseline_max_gb:.1f} GB "
                      f"allowed on this shared machine", flush=True)
                if not args.no_oracle:
                    oracle_path = os.path.join(tmp, f"oracle_{m}.npy")
                    oracle = _run("oracle", minutes, args.threads, oracle_path)
                    dev, scale = _max_abs_diff(ours_path, oracle_path)
                    rows[m].update(oracle=oracle, deviation=dev, scale=scale)
                    print(f"{m:>4} min  whole-clip oracle {oracle['seconds']:7.1f} s  peak {oracle['peak_rss'] / gib:5.2f} GB  "
                          f"max|ours - whole clip| {dev:.2e} (max|emb| {scale:.1f})", flush=True)
                    os.remove(oracle_path)
            os.remove(ours_path)

    for m, row in rows.items():
        ours = row["ours"]
        result(f"ours_seconds_per_minute_{m}min", ours["seconds"] / float(m), ".3f")
        result(f"ours_peak_rss_gb_{m}min", ours["peak_rss"] / gib, ".3f")
        if "baseline" in row:
            result(f"baseline_seconds_per_minute_{m}min", row["baseline"]["seconds"] / float(m), ".3f")
            result(f"baseline_peak_rss_gb_{m}min", row["baseline"]["peak_rss"] / gib, ".3f")
        if "deviation" in row:
            result(f"max_abs_deviation_{m}min", row["deviation"], ".3e")
    first, last = min(rows), max(rows)
    if "baseline" in rows[first]:
        result("time_ratio", rows[first]["ours"]["seconds"] / rows[first]["baseline"]["seconds"], ".3f")
    extra = {m: r["ours"]["peak_rss"] - r["ours"]["embedding_bytes"] for m, r in rows.items()}
    result("extra_rss_ratio", extra[last] / extra[first], ".3f")


if __name__ == "__main__":
    main()
