"""Finding an ffmpeg binary without user setup.

Order: the `WANVIDEO_FFMPEG` environment variable, then the binary shipped inside the
`imageio-ffmpeg` wheel, then `ffmpeg` on PATH. A candidate counts only if it runs
(`ffmpeg -version`); whether it can encode a given format is checked separately by the
writer's preflight, because that needs the real codec/muxer combination.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess

log = logging.getLogger(__name__)

ENV_VAR = "WANVIDEO_FFMPEG"


def ffmpeg_candidates() -> list[tuple[str, str]]:
    """(source, path) of every ffmpeg worth trying, in order of preference, without duplicates."""
    found: list[tuple[str, str]] = []
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        found.append((ENV_VAR, env))
    try:
        import imageio_ffmpeg

        found.append(("imageio-ffmpeg", imageio_ffmpeg.get_ffmpeg_exe()))
    except Exception as exc:  # noqa: BLE001 - not installed, or no binary for this platform
        log.debug("imageio-ffmpeg has no ffmpeg here: %s", exc)
    on_path = shutil.which("ffmpeg")
    if on_path:
        found.append(("PATH", on_path))
    unique, seen = [], set()
    for source, path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((source, path))
    return unique


@functools.lru_cache(maxsize=16)
def ffmpeg_runs(path: str) -> bool:
    """True when `path -version` runs (cached per path for the life of the process)."""
    try:
        result = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("ffmpeg at %s does not run: %s", path, exc)
        return False
    if result.returncode != 0:
        log.warning("ffmpeg at %s does not run (exit %s)", path, result.returncode)
        return False
    return True


def find_ffmpeg() -> str | None:
    """The first ffmpeg that runs, or None."""
    for source, path in ffmpeg_candidates():
        if ffmpeg_runs(path):
            log.debug("ffmpeg from %s: %s", source, path)
            return path
        if source == ENV_VAR:
            log.warning("%s=%s is not a working ffmpeg; trying the next one", ENV_VAR, path)
    return None


def usable_ffmpegs() -> list[str]:
    """Every candidate that runs, best first (the writer tries them in turn)."""
    return [path for _, path in ffmpeg_candidates() if ffmpeg_runs(path)]
