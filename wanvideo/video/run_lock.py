"""A lock on a run's work folder, so two identical runs never write the same windows at once.

An advisory OS lock (flock on POSIX, msvcrt on Windows) on `<folder>/.lock`: the OS drops it when
the process ends, however it ends (a kill leaves no lock behind). The file says who holds it (pid,
host, command, since when). A second process either gets a RunInProgressError naming the holder, or,
with `wait` seconds (`--wait-for-lock`), waits for it to finish. A lock whose recorded holder no longer
runs (a process it forked still holds the file open, or the pid now names another process) is stale
and taken over. Inside one process the lock is re-entrant (a finished run's store may still be alive
when the same run starts again).
"""
from __future__ import annotations

import errno
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass

from ..errors import InputError, RunInProgressError
from ..options import option

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
MAX_WAIT_S = 7 * 24 * 3600
_HELD: dict[str, "RunLock"] = {}
_GUARD = threading.Lock()
_POLL_S = 0.5
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


@dataclass
class RunLockSettings:
    wait_for_lock: float = option(0.0, min=0.0, max=float(MAX_WAIT_S), step=1.0, help=(
        "Seconds to wait when another run with the same inputs is working in the same work folder (another "
        "process: a second command, another ComfyUI): 0 = stop at once with a message naming that process. "
        "When it ends this run resumes from or reuses its windows."))


class _Busy(Exception):
    """The lock is held by another live process (internal: becomes RunInProgressError)."""

    def __init__(self, holder: dict | None, raw: str):
        super().__init__(raw)
        self.holder, self.raw = holder, raw


def _try_lock(fd: int) -> bool:
    """True: locked. False: another process holds it. Filesystems without locks: True, with a warning."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows only; mypy checks Linux
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        log.warning("WanVideo InfiniteTalk: this file system cannot lock files (%s); two runs on the same work "
                    "folder at once will not be noticed", exc)
        return True


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # Windows only; mypy checks Linux
        except OSError:
            pass
    except OSError:
        pass


def process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch, rounded), None if it does not run (or unknown)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return round(psutil.Process(pid).create_time(), 1)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
    try:  # Linux without psutil: the start tick in /proc, after the boot time
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
        return round(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(holder: dict) -> bool:
    """Whether the process a lock file names still runs (another host's process: assumed to)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = int(holder.get("pid", 0))
    if pid <= 0:
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: only psutil can ask
        try:
            import psutil
        except ImportError:
            return True
        if not psutil.pid_exists(pid):
            return False
    else:
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except (PermissionError, OSError):
            return True  # it exists (another user's)
    started, recorded = process_started(pid), holder.get("process_started")
    if started is not None and recorded is not None and abs(started - float(recorded)) > 2.0:
        return False  # the pid now names another process
    return True


def _me() -> dict:
    argv = " ".join([os.path.basename(sys.executable)] + sys.argv)
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
            "process_started": process_started(os.getpid()), "command": argv[:300]}


def describe(holder: dict | None, raw: str = "") -> str:
    """'pid 123 on host, running since 2026-01-01 10:00:00 UTC (4 min ago): python -m wanvideo generate ...'"""
    if not holder:
        return raw or "a process that did not say who it is"
    since = float(holder.get("since", 0))
    ago = max(0.0, time.time() - since)
    span = f"{ago:.0f} s" if ago < 120 else f"{ago / 60:.0f} min" if ago < 7200 else f"{ago / 3600:.1f} h"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return (f"pid {holder.get('pid')} on {holder.get('host')}, running since {when} ({span} ago)"
            f"{': ' + holder['command'] if holder.get('command') else ''}")


def _read_holder(fd: int) -> tuple[dict | None, str]:
    try:
        raw = os.pread(fd, 2000, 0).decode("utf-8", "replace").strip() if hasattr(os, "pread") else ""
    except OSError:
        return None, ""
    try:
        holder = json.loads(raw)
    except ValueError:
        return None, raw
    return (holder, raw) if isinstance(holder, dict) else (None, raw)


class RunLock:
    """The lock on one work folder; `RunLock.acquire(folder, wait=0)` takes it, waits for it, or says who has it."""

    def __init__(self, folder: str, fd: int):
        self.folder = folder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    @classmethod
    def acquire(cls, folder: str, wait: float = 0.0) -> "RunLock":
        """Take the folder's lock; while another live process holds it, wait up to `wait` seconds, then refuse."""
        wait = float(wait or 0.0)
        if not (math.isfinite(wait) and 0.0 <= wait <= MAX_WAIT_S):
            raise InputError(f"wait_for_lock must be between 0 and {MAX_WAIT_S} seconds, got {wait}")
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                return cls._take(folder)
            except _Busy as busy:
                left = deadline - time.monotonic()
                who = describe(busy.holder, busy.raw)
                if left <= 0:
                    raise RunInProgressError(_refusal(folder, who, wait)) from None
                if not told:
                    log.warning("WanVideo InfiniteTalk: another run is working in %s (%s); waiting up to %.0f s "
                                "for it to finish", folder, who, wait)
                    told = True
                time.sleep(min(_POLL_S, left))

    @classmethod
    def _take(cls, folder: str) -> "RunLock":
        key = os.path.realpath(folder)
        with _GUARD:
            held = _HELD.get(key)
            if held is not None and held.held:
                return held
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, LOCK_NAME)
            for _ in range(10):
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:  # the holder removed its finished folder as we came: make it again
                    os.makedirs(folder, exist_ok=True)
                    continue
                if _try_lock(fd):
                    if not _same_file(fd, path):  # a stale lock was replaced under us: lock the new file
                        _unlock(fd)
                        os.close(fd)
                        continue
                    break
                holder, raw = _read_holder(fd)
                if holder is None or _alive(holder):
                    os.close(fd)
                    raise _Busy(holder, raw)
                # The recorded holder has ended, yet the file is still locked (a process it forked keeps it
                # open): the lock is stale. Replace the file (that process keeps its lock on the old one).
                log.warning("WanVideo InfiniteTalk: taking over the lock of %s: %s no longer runs", folder,
                            describe(holder))
                if _same_file(fd, path):
                    _remove(path)
                os.close(fd)
            else:
                raise RunInProgressError(f"cannot take the lock of {folder}: it keeps changing; is another run "
                                         "starting there? Try again")
            os.ftruncate(fd, 0)
            if hasattr(os, "pwrite"):
                os.pwrite(fd, json.dumps(_me()).encode(), 0)
            lock = cls(folder, fd)
            _HELD[key] = lock
            return lock

    def release(self) -> None:
        with _GUARD:
            if self._fd is None:
                return
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None
            _HELD.pop(os.path.realpath(self.folder), None)

    def release_removing(self, remove_folder: bool) -> None:
        """Release the lock; first, while it is still held, remove the lock file when the folder holds nothing else
        (and the folder too when `remove_folder`). A process waiting for this lock then finds the file gone and
        makes a new one: it never sees a half-removed folder."""
        with _GUARD:
            if self._fd is None:
                return
            try:
                others = [name for name in os.listdir(self.folder) if name != LOCK_NAME]
            except OSError:
                others = None
            if others == []:
                path = os.path.join(self.folder, LOCK_NAME)
                if _same_file(self._fd, path):
                    _remove(path)
                if remove_folder:
                    try:
                        os.rmdir(self.folder)
                    except OSError:
                        pass  # another process made its lock file there meanwhile: the folder is its now
        self.release()

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _refusal(folder: str, who: str, waited: float) -> str:
    waited_text = f" and did not finish within {waited:g} s" if waited > 0 else ""
    return (f"another run with the same inputs is already working in {folder} ({who}){waited_text}: wait for it "
            "to finish (then this run resumes or reuses its windows; --wait-for-lock SECONDS waits by itself), or "
            "stop that process; a different work folder would compute everything a second time")


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
