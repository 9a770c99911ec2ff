"""Fault injection for the reliability suite: lying and hanging ffmpeg programs, full and read-only disks."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "video"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sampling"))


def _real_ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# Each fake answers `-version` like ffmpeg (so it is found) and runs the real ffmpeg for the writer's
# 3-frame preflight (its output is named wanvideo_preflight_*) unless it misbehaves there too.
_SCRIPTS = {
    # writes junk and says it worked
    "lie": 'printf "this is not a video" > "$out"; cat > /dev/null; exit 0',
    # stops reading its input and never ends
    "hang": "exec sleep 600",
    # says the disk is full (a filesystem fake where no small tmpfs can be mounted)
    "disk-full": 'cat > /dev/null; echo "av_interleaved_write_frame(): No space left on device" >&2; exit 1',
}


def make_fake_ffmpeg(folder: Path, behaviour: str, also_preflight: bool = False) -> str:
    script = folder / f"ffmpeg-{behaviour}-{uuid.uuid4().hex[:6]}"
    preflight = "" if also_preflight else f'case "$out" in *wanvideo_preflight_*) exec "{_real_ffmpeg()}" "$@";; esac\n'
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$2" = "-version" ] || [ "$1" = "-version" ]; then exec "{_real_ffmpeg()}" -version; fi\n'
        'for out in "$@"; do :; done\n'  # the last argument: the output file
        + preflight + _SCRIPTS[behaviour] + "\n"
    )
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def fake_ffmpeg(tmp_path, monkeypatch):
    """fake_ffmpeg(behaviour, also_preflight=False, only=False): put a misbehaving ffmpeg first in line.

    only=True: no other ffmpeg program is found (imageio-ffmpeg and PATH hidden), so the fallback is PyAV.
    """
    from wanvideo.video import ffmpeg_locate, writer

    folder = tmp_path / "bin"
    folder.mkdir()

    def install(behaviour: str, also_preflight: bool = False, only: bool = False) -> str:
        path = make_fake_ffmpeg(folder, behaviour, also_preflight)
        monkeypatch.setenv("WANVIDEO_FFMPEG", path)
        monkeypatch.setenv("WANVIDEO_FFMPEG_TIMEOUT", "1")
        if only:
            monkeypatch.setattr(ffmpeg_locate, "ffmpeg_candidates", lambda: [("WANVIDEO_FFMPEG", path)])
        return path

    writer._PREFLIGHT.clear()
    yield install
    writer._PREFLIGHT.clear()


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(size_kb) -> (folder, real): a tiny tmpfs where the machine allows one (real=True), else a
    plain folder (real=False: the test fakes the full disk)."""
    mounted = []

    def make(size_kb: int = 256):
        folder = tmp_path / f"disk{len(mounted)}"
        if _mount_tmpfs(folder, size_kb):
            mounted.append(folder)
            return folder, True
        folder.mkdir(exist_ok=True)
        return folder, False

    yield make
    for folder in mounted:
        _unmount(folder)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written into: a read-only tmpfs as root, a chmod 555 folder otherwise."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(folder, 64):
            pytest.skip("running as root without mount: no folder is read-only for root")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        yield folder
        _unmount(folder)
        return
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)
