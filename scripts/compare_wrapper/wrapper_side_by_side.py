"""Side by side with the wrapper most people use (kijai/ComfyUI-WanVideoWrapper): the same InfiniteTalk model, the
same weights, the same inputs, the same settings, on the same device. First proves the outputs agree, then times them.

    python scripts/compare_wrapper/wrapper_side_by_side.py --wrapper ../ComfyUI-WanVideoWrapper --comfyui ../ComfyUI         # CPU, small
    python scripts/compare_wrapper/wrapper_side_by_side.py --wrapper W --comfyui C --device cuda --config 14b               # one GPU

`--wrapper`/`--comfyui` name existing checkouts (outside this repository; nothing of theirs is kept here); one that is
not given or does not exist is cloned into --workdir (needs network). See scripts/compare_wrapper/wrapper_model.py for how the
wrapper's real WanModel and InfiniteTalk modules are imported and given our weights (key mapping, placeholders).

Configs: `small` (CPU in seconds: 2 blocks of width 128, the real audio adapter input sizes, 5x16x16 latents) and
`14b` (Wan2.1 I2V 14B + InfiniteTalk sizes, bf16, 480x832x81: 21x60x104 latents). Random weights: ours are built,
then loaded into the wrapper's model.

What is compared (all with the InfiniteTalk audio cross-attention on, one speaker):
  forward   one conditional model call (text, CLIP image tokens, y, audio)
  step      one sampling step as each side's sampler runs it: the guidance passes (ours: cond, drop-text, uncond,
            batched into one forward where our 'auto' batching does so; the wrapper: its three sequential calls),
            the guidance formula, the reference's Euler update, the motion-frame latent kept clean
  window    (--window-steps N > 0) N such steps from noise: the model work of one window; seconds per window is
            steps x step time + VAE work (benchmarks/window_speed.py measures ours end to end)
The wrapper side of a step is transcribed from its sampler (nodes_sampler.py predict_with_cfg, multitalk_loop.py),
which are closures inside its sampler node; the model, its RoPE set-up and the schedule's shift are its own code.

Guidance settings: --cfg/--audio-cfg are the reference's text and audio scales (ours). The wrapper multiplies its
audio scale by the text scale when both guide (uncond_audio + cfg*((cond - uncond_text) + a*(uncond_text -
uncond_audio))), so the same guidance is its audio_cfg_scale = audio_cfg / cfg; the script sets that and says so.

Equivalence (relative L2 difference; float32 within 1e-4, bf16 within 5e-2, else the script stops before timing):
forward, and step_passes (the step's model calls, the worst pass); step (the guided velocity) and window (the latent
after N steps) are judged in float32 only, since the guidance scales multiply bf16 rounding (about 4 % on 40 blocks).

RESULT lines: forward_/step_passes_/step_/window_ max_abs_diff and rel_diff,
wrapper_/ours_forward_seconds, forward_ratio, wrapper_/ours_step_seconds, step_ratio (ours / wrapper; goal <= 0.8),
and with --window-steps: window_max_abs_diff, wrapper_/ours_window_seconds, window_ratio.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "scripts" / "compare_wrapper")]

import wrapper_model  # noqa: E402

from wanvideo.model import build_model, preset  # noqa: E402
from wanvideo.sampling.denoise import denoise_window  # noqa: E402
from wanvideo.sampling.guidance import COND, DROP_AUDIO, DROP_TEXT, UNCOND, combine, needed_passes  # noqa: E402
from wanvideo.sampling.passes import PassRunner, use_batched_passes  # noqa: E402
from wanvideo.sampling.schedules import FlowSolver  # noqa: E402

WRAPPER_URL = "https://github.com/kijai/ComfyUI-WanVideoWrapper.git"
COMFYUI_URL = "https://github.com/comfyanonymous/ComfyUI.git"
COMFYUI_REF = "v0.3.64"  # the ComfyUI the project's e2e check runs against
SHIFT = 7.0  # the reference's 480p shift (both samplers take it as a setting)

SMALL = dict(dim=128, ffn_dim=256, num_heads=4, num_layers=2, text_dim=64, text_len=32, freq_dim=64,
             intermediate_dim=32, output_dim=32, context_tokens=4)  # audio window / layers / channels stay real
CONFIGS = {  # name: (config overrides of the 14B preset, latent frames, height, width, dtype, text tokens)
    "small": (SMALL, 5, 16, 16, torch.float32, 20),
    "14b": ({}, 21, 60, 104, torch.bfloat16, 60),
}


def checkout(path: str | None, workdir: Path, name: str, url: str, ref: str) -> Path:
    """An existing checkout, or a clone into workdir when none is there."""
    if path and Path(path).exists():
        return Path(path)
    dest = Path(path) if path else workdir / name
    if not dest.exists():
        if REPO in dest.resolve().parents:
            raise SystemExit(f"error: {dest} is inside this repository; clone the wrapper and ComfyUI outside it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "--filter=blob:none", url, str(dest)], check=True)
        if ref:
            subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", ref], check=True)
    return dest


def commit_of(path: Path) -> str:
    """The checkout's commit: git, or the `.exported_commit` file an export from a bare mirror leaves."""
    marker = path / ".exported_commit"
    if marker.is_file():
        return marker.read_text().strip()
    done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


class Inputs:
    """One window's model inputs, shared by both sides (the wrapper gets them in its sampler's layouts)."""

    def __init__(self, cfg: dict, frames: int, height: int, width: int, tokens: int, device, dtype):
        gen = torch.Generator().manual_seed(0)

        def rand(*shape):
            return torch.randn(*shape, generator=gen).to(device)

        self.noise = rand(16, frames, height, width)  # float32, as both samplers keep the latent
        self.motion = rand(16, 1, height, width)  # the first window's motion latent (the start image)
        self.y = rand(20, frames, height, width).to(dtype)
        self.context = rand(tokens, cfg["text_dim"]).to(dtype)
        self.context_null = rand(tokens + 7, cfg["text_dim"]).to(dtype)
        self.clip = rand(1, 257, cfg["clip_dim"]).to(dtype)
        audio_frames = 1 + cfg["vae_scale"] * (frames - 1)
        self.audio = rand(1, audio_frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"])
        self.seq_len = math.ceil(height * width / 4 * frames)  # the wrapper sampler's formula
        self.device = torch.device(device)


class Ours:
    """Our sampler's step, as sampling/denoise.py runs it (PassRunner, combine, FlowSolver)."""

    def __init__(self, model, inp: Inputs, cfg: float, audio_cfg: float, steps: int, batching: str):
        self.model, self.inp, self.cfg, self.audio_cfg, self.steps = model, inp, cfg, audio_cfg, steps
        audio_null = torch.zeros_like(inp.audio[:1])
        self.passes = {name: dict(context=(inp.context if name in (COND, DROP_AUDIO) else inp.context_null)[None],
                                  audio=inp.audio if name in (COND, DROP_TEXT) else audio_null,
                                  clip_fea=inp.clip, y=inp.y[None], ref_target_masks=None)
                       for name in needed_passes(cfg, audio_cfg, has_audio=True)}
        self.batched = use_batched_passes(batching, model, self.passes, inp.noise.shape[1:])
        self.runner = PassRunner(model, self.passes, batched=self.batched)
        self.solver = FlowSolver("euler", steps, SHIFT)

    def forward(self):
        return self.model(self.inp.noise[None], self.solver.timesteps[:1], **self.passes[COND])[0]

    def predictions(self, latent, i: int) -> dict:
        """Every guidance pass of step i (batched or one by one, as the sampler runs them)."""
        return self.runner(latent[None], self.solver.timesteps[i:i + 1].to(latent.device), i)

    def guided(self, latent, i: int):
        """The guided velocity of step i."""
        return combine(self.predictions(latent, i), self.cfg, self.audio_cfg, True)

    def step(self, latent, i: int):
        """denoise_window's loop body for step i."""
        n = self.inp.motion.shape[1]
        latent = latent.clone()
        latent[:, :n] = self.inp.motion
        latent = self.solver.step(i, latent, self.guided(latent, i))
        latent[:, :n] = self.inp.motion
        return latent

    def window(self):
        return denoise_window(self.model, self.inp.noise, self.inp.motion, self.solver, self.passes, self.cfg,
                              self.audio_cfg, True, predict=self.runner)


class Wrapper:
    """The wrapper's InfiniteTalk step (transcribed from its sampler) around its real model."""

    def __init__(self, model, ns, inp: Inputs, cfg: float, audio_cfg: float, steps: int):
        self.model, self.inp, self.cfg, self.steps = model, inp, cfg, steps
        # its audio scale multiplies with cfg when both guide (see the module doc): the same guidance
        self.audio_cfg = audio_cfg / cfg if not math.isclose(cfg, 1.0) else audio_cfg
        # its 'multitalk' scheduler: linspace(1000, 1, steps) + [0], shifted with its timestep_transform
        raw = list(np.linspace(1000, 1, steps, dtype=np.float32)) + [0.0]
        self.timesteps = [ns.multitalk.timestep_transform(torch.tensor([t], device=inp.device), shift=SHIFT,
                                                          num_timesteps=1000) for t in raw]

    def call(self, z, i: int, context, audio, is_uncond: bool):
        inp = self.inp
        out, _, _ = self.model(x=[z], y=[inp.y], clip_fea=inp.clip, seq_len=inp.seq_len, device=inp.device, freqs=None,
                               t=self.timesteps[i], is_uncond=is_uncond, current_step=i,
                               current_step_percentage=i / len(self.timesteps), last_step=i == len(self.timesteps) - 2,
                               context=[context], multitalk_audio=audio, ref_target_masks=None)
        return out[0]

    def forward(self):
        return self.call(self.inp.noise, 0, self.inp.context, self.inp.audio, False)

    def predictions(self, z, i: int) -> dict:
        """Its sampler's model calls for one step, under our pass names (see guidance.py)."""
        inp, silent = self.inp, torch.zeros_like(self.inp.audio)[-1:]
        preds = {COND: self.call(z, i, inp.context, inp.audio, False)}
        if math.isclose(self.cfg, 1.0):
            if not math.isclose(self.audio_cfg, 1.0):  # its 'uncond_audio' here has the positive text
                preds[DROP_AUDIO] = self.call(z, i, inp.context, silent, False)
            return preds
        preds[DROP_TEXT] = self.call(z, i, inp.context_null, inp.audio, True)  # its 'uncond_text'
        if not math.isclose(self.audio_cfg, 1.0):
            preds[UNCOND] = self.call(z, i, inp.context_null, silent, False)  # its 'uncond_audio'
        return preds

    def combine(self, preds: dict):
        """Its guidance formula (nodes_sampler.py predict_with_cfg)."""
        cfg, a, cond = self.cfg, self.audio_cfg, preds[COND]
        if math.isclose(cfg, 1.0):
            return cond if DROP_AUDIO not in preds else preds[DROP_AUDIO] + a * (cond - preds[DROP_AUDIO])
        if UNCOND not in preds:
            return preds[DROP_TEXT] + cfg * (cond - preds[DROP_TEXT])
        return preds[UNCOND] + cfg * ((cond - preds[DROP_TEXT]) + a * (preds[DROP_TEXT] - preds[UNCOND]))

    def guided(self, z, i: int):
        return self.combine(self.predictions(z, i))

    def step(self, latent, i: int):
        n = self.inp.motion.shape[1]
        latent = latent.clone()
        latent[:, :n] = self.inp.motion
        dt = (self.timesteps[i] - self.timesteps[i + 1]) / 1000
        latent = latent + -self.guided(latent, i) * dt[:, None, None, None]
        latent[:, :n] = self.inp.motion
        return latent

    def window(self):
        latent = self.inp.noise.clone()
        for i in range(self.steps):
            latent = self.step(latent, i)
        return latent


def timed(fn, repeat: int, cuda: bool):
    """(best seconds over `repeat` runs after one warm-up, the last result)."""
    out = fn()
    best = float("inf")
    for _ in range(repeat):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def rel_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.float() - theirs.float()).norm() / ours.float().norm().clamp_min(1e-12)).item()


def differences(name: str, ours: torch.Tensor, theirs: torch.Tensor, tolerance: float | None) -> bool:
    """Print the figures; False (with a message) when they exceed `tolerance` (None: figures only)."""
    diff = (ours.float() - theirs.float()).abs().max().item()
    rel = rel_diff(ours, theirs)
    print(f"RESULT {name}_max_abs_diff={diff:.3g}")
    print(f"RESULT {name}_rel_diff={rel:.3g}")
    if tolerance is not None and not (rel <= tolerance and math.isfinite(diff)):
        print(f"error: {name} outputs differ (relative {rel:.3g} > {tolerance:g}): the comparison is not like for like",
              file=sys.stderr)
        return False
    return True


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wrapper", help="a ComfyUI-WanVideoWrapper checkout (cloned into --workdir when absent)")
    parser.add_argument("--comfyui", help="a ComfyUI checkout (cloned into --workdir at v0.3.64 when absent)")
    parser.add_argument("--workdir", default="/tmp/wanvideo_side_by_side", help="where missing checkouts are cloned")
    parser.add_argument("--wrapper-ref", default="", help="commit or tag of the wrapper to clone (default: newest)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--cfg", type=float, default=5.0, help="text guidance (reference default 5)")
    parser.add_argument("--audio-cfg", type=float, default=4.0, help="audio guidance, reference meaning (default 4)")
    parser.add_argument("--steps", type=int, default=40, help="steps of the schedule the step is taken from")
    parser.add_argument("--window-steps", type=int, default=-1,
                        help="steps of the whole-window comparison (0: skip; default 4 on small, 0 on 14b)")
    parser.add_argument("--guidance-batching", default="auto", choices=("auto", "batched", "sequential"),
                        help="our guidance batching (auto: as the sampler decides)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after a warm-up (best kept)")
    parser.add_argument("--time-anyway", action="store_true",
                        help="time even when the outputs differ beyond the tolerance (still exits 1; for one-shot GPU runs)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but this torch sees no CUDA GPU", file=sys.stderr)
        return 2
    cuda = args.device == "cuda"
    work = Path(args.workdir)
    comfyui = checkout(args.comfyui, work, "ComfyUI", COMFYUI_URL, COMFYUI_REF)
    wrapper = checkout(args.wrapper, work, "ComfyUI-WanVideoWrapper", WRAPPER_URL, args.wrapper_ref)
    ns = wrapper_model.import_wrapper(wrapper, comfyui, args.device)
    print(f"INFO wrapper_commit={commit_of(wrapper)} comfyui_commit={commit_of(comfyui)}")
    if ns.replaced:
        print(f"INFO placeholders for missing packages no forward uses: {', '.join(ns.replaced)}")

    overrides, frames, height, width, dtype, tokens = CONFIGS[args.config]
    config = dict(preset("wan2.1-i2v-14b"), **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ours_model = build_model(config, dtype=dtype, device=args.device)
    theirs_model = wrapper_model.build_wrapper_model(ns, ours_model, args.device, dtype)
    wrapper_model.prepare_sampling(theirs_model, frames)
    inp = Inputs(ours_model.config, frames, height, width, tokens, args.device, dtype)
    ours = Ours(ours_model, inp, args.cfg, args.audio_cfg, args.steps, args.guidance_batching)
    theirs = Wrapper(theirs_model, ns, inp, args.cfg, args.audio_cfg, args.steps)
    if not torch.equal(torch.cat(theirs.timesteps)[:-1].cpu(), ours.solver.timesteps.cpu()):  # each calls the model at
        print("error: the two samplers' timesteps differ", file=sys.stderr)
        return 1
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2  # bf16: 40 blocks of rounding in different operation orders
    print(f"compare: config {args.config} ({tuple(inp.noise.shape)} latents, {dtype}) on {args.device}; cfg {args.cfg}, "
          f"audio_cfg {args.audio_cfg} (wrapper audio_cfg_scale {theirs.audio_cfg:g}); our passes "
          f"{list(ours.passes)} {'batched' if ours.batched else 'one by one'}; the wrapper's one by one")
    sys.stdout.flush()

    window_steps = args.window_steps if args.window_steps >= 0 else (4 if args.config == "small" else 0)
    with torch.no_grad():
        ok = differences("forward", ours.forward(), theirs.forward(), tolerance)
        start = inp.noise.clone()
        start[:, :inp.motion.shape[1]] = inp.motion
        ours_preds, theirs_preds = ours.predictions(start, 0), theirs.predictions(start, 0)
        if set(ours_preds) != set(theirs_preds):
            print(f"error: the samplers run different passes: {sorted(ours_preds)} / {sorted(theirs_preds)}", file=sys.stderr)
            return 1
        worst = max(ours_preds, key=lambda name: rel_diff(ours_preds[name], theirs_preds[name]))
        ok &= differences("step_passes", ours_preds[worst], theirs_preds[worst], tolerance)
        # The guided velocity multiplies the passes' differences by the guidance scales: judged in float32 only.
        guided = (combine(ours_preds, args.cfg, args.audio_cfg, True), theirs.combine(theirs_preds))
        ok &= differences("step", *guided, tolerance if dtype == torch.float32 else None)
        if window_steps:
            ours_w = Ours(ours_model, inp, args.cfg, args.audio_cfg, window_steps, args.guidance_batching)
            theirs_w = Wrapper(theirs_model, ns, inp, args.cfg, args.audio_cfg, window_steps)
            ok &= differences("window", ours_w.window(), theirs_w.window(), tolerance * 10 if dtype == torch.float32 else None)
        if not ok and not args.time_anyway:
            return 1
        figures = {
            "forward": [timed(side.forward, args.repeat, cuda)[0] for side in (theirs, ours)],
            "step": [timed(lambda side=side: side.step(inp.noise, 0), max(1, args.repeat - 1), cuda)[0]
                     for side in (theirs, ours)],
        }
        if window_steps:
            figures["window"] = [timed(side.window, 1, cuda)[0] for side in (theirs_w, ours_w)]
    for what, (wrapper_s, ours_s) in figures.items():
        print(f"RESULT wrapper_{what}_seconds={wrapper_s:.4g}")
        print(f"RESULT ours_{what}_seconds={ours_s:.4g}")
        print(f"RESULT {what}_ratio={ours_s / wrapper_s:.3f}")
    if not ok:
        print("error: the outputs differ beyond the tolerance (see above): these timings are NOT a like-for-like "
              "comparison", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
