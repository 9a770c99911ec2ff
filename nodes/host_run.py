"""The one way a sampler node runs on the host: `run_on_host(model, run, unit)` with a `NodeProgress`.

Both samplers (InfiniteTalk, WanAnimate) go through here, so they load/offload the model, report progress and
stop on Cancel the same way:

- the model: `hosted_sampling` (the host loads it per window, offloads it afterwards when it should);
- progress: the host's bar (`host.progress_bar`: the current progress API where the host has it, with the
  middle frame of the latest finished window as preview image; ComfyUI's ProgressBar on older hosts) and one
  text line on the node that js/infinitetalk_progress*.js turns into the title badge ("window 2/5 · step 3/4",
  "window 2/5 done (...)", "resuming at window 3/5 (2 finished)");
- Cancel: the engine polls `host.interrupt_requested` between steps; a stop surfaces as the host's own
  interrupt (the UI says "interrupted", the log says "stopped on request", never an error).
"""
from __future__ import annotations

from ..wanvideo.sampling import GenerationInterrupted
from . import host
from .model_patcher import hosted_sampling


def progress_text(p) -> str:
    """The node's progress line while a window runs, parsed by js/infinitetalk_progress_text.js into the badge."""
    if p.stage == "denoise":
        return f"{p.text} · step {p.step}/{p.steps}"
    return f"{p.text} · {p.stage} {p.chunk}/{p.chunks}"


class NodeProgress:
    """Progress of one sampler run on its node: the host's bar and preview, and the badge's text line."""

    def __init__(self, unit: str = "window"):
        self.unit = unit
        self.bar = None
        self.text = None
        self.preview = None  # [H, W, 3] float 0..1: the middle frame of the latest finished window
        self.value, self.total = 0, 1

    def on_progress(self, p) -> None:
        """The engine's per-step / per-VAE-chunk callback."""
        if self.bar is None:
            self.bar = host.progress_bar(p.windows * p.steps)
            if p.resumed:  # the badge counts the windows found on disk as finished
                self.say(f"resuming at {self.unit} {p.window}/{p.windows} ({p.resumed} finished)")
        self.value, self.total = (p.window - 1) * p.steps + p.step, p.windows * p.steps
        self.bar.update_absolute(self.value, self.total, self.preview)
        self.say(progress_text(p))

    def on_window_done(self, index: int, store) -> None:
        """After each finished window: the badge counts it (what is kept after a Cancel) and the preview shows it."""
        self.preview = middle_frame(store, index)
        if self.bar is not None and self.preview is not None:
            self.bar.update_absolute(self.value, self.total, self.preview)
        self.say(f"{self.unit} {index + 1}/{store.num_windows} done ({len(store)} frames)")

    def say(self, text: str) -> None:
        if text != self.text:  # the badge moves with every step and every VAE chunk, not more often
            self.text = text
            host.send_progress_text(text)


def middle_frame(store, index: int):
    """The middle frame of finished window `index` as a [H, W, 3] float tensor in 0..1 (None if not on disk)."""
    import torch

    start, count = store.window_frames(index)
    if not count:
        return None
    frame = store.read_frames(start + count // 2, 1)
    return torch.from_numpy(frame[0]).float().div(255.0) if len(frame) else None


def run_on_host(model, run, unit: str = "window"):
    """Run one sampler: `run(dit, prepare_model, progress)` makes the frame store; returns it.

    `progress` is the run's NodeProgress: pass its on_progress / on_window_done and host.interrupt_requested
    (should_stop) to the engine. A Cancel leaves as the host's interrupt; the finished windows stay on disk and a
    rerun with the same inputs resumes there.
    """
    progress = NodeProgress(unit)
    try:
        with hosted_sampling(model) as (dit, prepare_model):
            store = run(dit, prepare_model, progress)
    except GenerationInterrupted:
        host.raise_interrupted()  # the host's own exception, so the UI shows "interrupted"
        raise
    progress.say(f"{len(store)} frames ({store.num_windows} {unit}s)")
    return store
