"""What every benchmark shares: `RESULT name=value` lines, one way to read peak memory, a child-process runner
(so each measurement's peak is its own) and the `--device` argument.

Peak memory, one reading for all (`PeakMemory`):
- cuda: torch's allocator peak (`max_memory_allocated`) while the block runs, and what was allocated before it;
- cpu: the resident size of this process, and of its child programs (ffmpeg), sampled in a thread every
  `interval` s with psutil. A child is counted only once it runs another program: a forked Python child
  shares the parent's pages until it execs and would count them twice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD_MARK = "CHILD_RESULT "


# ----------------------------------------------------------------------------- RESULT lines

def result(name: str, value, fmt: str = "") -> None:
    """One `RESULT name=value` line (what the GPU checks and the README's figures collect)."""
    print(f"RESULT {name}={value:{fmt}}" if fmt else f"RESULT {name}={value}", flush=True)


def results(figures: dict) -> None:
    for name, value in figures.items():
        result(name, value)


# ----------------------------------------------------------------------------- --device

def add_device_argument(parser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default,
                        help="cpu, cuda (or cuda:N) or auto: cuda when one is present (default %(default)s)")


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; anything else as given."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------- peak memory

class PeakMemory:
    """The peak memory while a `with` block runs (bytes): `before` at its start, `peak` the highest seen,
    `added` = peak - before. On the CPU `own_peak` / `children_peak` split the figure, `phase` names the
    part of the work under way and `phase_peaks` keeps (own, children, together) per phase."""

    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.cuda = str(device).startswith("cuda")
        self.device = device
        self.interval = interval
        self.phase = "start"
        self.phase_peaks: dict[str, list[int]] = {}
        self.before = self.peak = self.own_peak = self.children_peak = 0
        self.sampler_cpu_s = 0.0  # the sampling thread's own CPU time (to take off a CPU-time figure)
        self._halt = threading.Event()
        self._thread = None

    @property
    def added(self) -> int:
        return self.peak - self.before

    def __enter__(self) -> PeakMemory:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> PeakMemory:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        import psutil

        self._proc = psutil.Process()
        self._exe = self._proc.exe()
        self.before = self._proc.memory_info().rss
        self._take()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        self._halt.set()
        self._thread.join()
        self._take()

    def current(self) -> tuple[int, int]:
        """The resident size now (CPU): this process's, and its child programs' together."""
        own = self._proc.memory_info().rss
        children = 0
        for child in self._proc.children(recursive=True):
            try:
                if child.exe() != self._exe:
                    children += child.memory_info().rss
            except Exception:  # noqa: BLE001 - a child may exit (or not yet exec) between listing and reading
                pass
        return own, children

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            self._take()
        self.sampler_cpu_s = time.thread_time()

    def _take(self) -> None:
        own, children = self.current()
        self.own_peak = max(self.own_peak, own)
        self.children_peak = max(self.children_peak, children)
        self.peak = max(self.peak, own + children)
        peaks = self.phase_peaks.setdefault(self.phase, [0, 0, 0])
        peaks[0], peaks[1], peaks[2] = max(peaks[0], own), max(peaks[1], children), max(peaks[2], own + children)


# ----------------------------------------------------------------------------- child processes

def child_result(figures: dict) -> None:
    """Hand a child's figures (JSON-able) back to `run_child` in the parent."""
    print(CHILD_MARK + json.dumps(figures), flush=True)


def run_child(script: str, args: list[str], threads: int | None = None, env: dict | None = None) -> dict:
    """Run `python script *args` in a fresh process (its peak memory is its own) and return what it handed back
    with `child_result`. Its other output passes through; a failure stops the benchmark."""
    run_env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if threads is not None:
        run_env["OMP_NUM_THREADS"] = str(threads)
    run_env.update(env or {})
    proc = subprocess.run([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, cwd=REPO,
                          env=run_env)  # stderr (progress, errors) passes through
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_MARK)]
    for line in proc.stdout.splitlines():
        if not line.startswith(CHILD_MARK):
            print(line, flush=True)
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"benchmark child {Path(script).name} {' '.join(args)} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(CHILD_MARK):])
