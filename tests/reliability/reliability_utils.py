"""Helpers for the reliability suite: earlier outputs that must survive, and what is left in a folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def frames(n=12, h=48, w=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    return np.repeat(base, n, axis=0)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def earlier_video(path, n: int = 7) -> bytes:
    """Write a good earlier output at `path` (n frames); returns its bytes to compare with afterwards."""
    from wanvideo.video import write_video

    write_video(frames(n, seed=1), path, 25, writer="pyav")
    with open(path, "rb") as f:
        return f.read()


def unchanged(path, content: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read() == content


def names(folder) -> set:
    """Every file in `folder` (recursively), hidden temporaries included."""
    return {os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(folder) for f in files}


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the file system of `folder` until at most `leave_bytes` are free."""
    import shutil

    free = shutil.disk_usage(folder).free - leave_bytes
    with open(folder / "filler.bin", "wb") as f:
        try:
            while free > 0:
                chunk = min(free, 1 << 20)
                f.write(b"\0" * chunk)
                f.flush()
                free -= chunk
        except OSError:
            pass
