"""A lock on a run's work folder, so two identical runs never write the same windows at once.

An advisory OS lock (flock on POSIX, msvcrt on Windows) on `<folder>/.lock`: the OS drops it when
the process ends, however it ends (a kill leaves no stale lock). The file says who holds it. A
second process gets a RunInProgressError naming the holder; inside one process the lock is
re-entrant (a finished run's store may still be alive when the same run starts again).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from ..errors import RunInProgressError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_HELD: dict[str, "RunLock"] = {}
_GUARD = threading.Lock()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
    except OSError:
        pass


class RunLock:
    """The lock on one work folder; `RunLock.acquire(folder)` takes it or says who has it."""

    def __init__(self, folder: str, fd: int):
        self.folder = folder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    @classmethod
    def acquire(cls, folder: str) -> "RunLock":
        key = os.path.realpath(folder)
        with _GUARD:
            held = _HELD.get(key)
            if held is not None and held.held:
                return held
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, LOCK_NAME)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                try:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() if hasattr(os, "pread") else ""
                finally:
                    os.close(fd)
                raise RunInProgressError(
                    f"another run with the same inputs is already working in {folder}"
                    f"{' (' + holder + ')' if holder else ''}: wait for it to finish (then this run resumes or reuses "
                    "its windows), or stop it; a different work folder would compute everything a second time"
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0) \
                if hasattr(os, "pwrite") else None
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

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
