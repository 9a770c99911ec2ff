"""Files written atomically: a temporary name in the same folder, renamed into place only when complete.

A crash, a kill or a full disk while writing leaves the earlier file of the same name as it was
(at worst a hidden `.NAME.wv-PID-XXXXXXXX.EXT` temporary beside it, removed by the next write of
that name once its process is gone). OS errors a user can fix (disk full, read-only folder,
permission) become an `OutputError` that says so.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import uuid

from .errors import OutputError

log = logging.getLogger(__name__)

_TEMP_TAG = ".wv-"
_USER_ERRNOS = {
    errno.ENOSPC: "the disk is full: free some space (or choose another output folder) and run again",
    errno.EDQUOT: "the disk quota is used up: free some space (or choose another output folder) and run again",
    errno.EROFS: "the folder is on a read-only file system: choose a writable output folder",
    errno.EACCES: "permission denied: choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write to, or fix its permissions",
    errno.EISDIR: "a folder has that name: choose a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def is_user_fault(exc: BaseException) -> bool:
    """True for OS errors the user or the machine causes (disk full, read-only, permission, ...)."""
    return isinstance(exc, OSError) and exc.errno in _USER_ERRNOS


def output_error(exc: OSError, path: str, what: str = "write") -> OutputError:
    """A clear OutputError for an OSError met while writing `path`."""
    hint = _USER_ERRNOS.get(exc.errno, "check the folder and the disk")
    return OutputError(f"cannot {what} {path}: {exc.strerror or exc} ({hint})")


def final_path(path: str) -> str:
    """Where `path`'s content goes: the file a symbolic link points to (so the link stays a link and its target gets
    the new content, written atomically beside it), else `path` itself. A link to a missing folder is refused."""
    path = os.path.abspath(path)
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if not os.path.isdir(os.path.dirname(target)):
        raise OutputError(f"{path} is a symbolic link to {target}, whose folder does not exist: fix the link or "
                          "choose another output name")
    if os.path.isdir(target):
        raise OutputError(f"{path} is a symbolic link to the folder {target}: give a file name")
    log.info("%s is a symbolic link: writing its target %s", path, target)
    return target


def temp_path(path: str) -> str:
    """A fresh temporary name beside `path`, hidden, with the same extension (writers pick formats by it)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}{_TEMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":
        return True  # on Windows os.kill(pid, 0) would send Ctrl+C: leave the (hidden) temporary alone there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temps(path: str) -> list[str]:
    """Remove temporaries of `path` left by processes that no longer run (a kill, a power cut); returns them."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    pattern = re.compile(re.escape(f".{stem}{_TEMP_TAG}") + r"(\d+)-[0-9a-f]{8}" + re.escape(ext) + "$")
    removed: list = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        match = pattern.match(entry)
        if match and not _pid_alive(int(match.group(1))):
            try:
                os.remove(os.path.join(folder, entry))
                removed.append(entry)
            except OSError:
                pass
    if removed:
        log.info("removed %d unfinished temporary file(s) of %s left by an earlier run", len(removed), path)
    return removed


def fsync_folder(folder: str) -> None:
    """Make a rename durable (POSIX); harmless elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(temp: str, path: str) -> None:
    """Rename the finished temporary `temp` onto `path` (atomic on one file system)."""
    try:
        os.replace(temp, path)
    except OSError as exc:
        discard(temp)
        raise output_error(exc, path, "save") from None
    fsync_folder(os.path.dirname(os.path.abspath(path)))


def discard(temp: str | None) -> None:
    if temp:
        try:
            os.remove(temp)
        except OSError:
            pass


def write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (a symbolic link: its target); an OutputError says why not."""
    path = final_path(path)
    temp = temp_path(path)
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        discard(temp)
        raise output_error(exc, path) from None
    commit(temp, path)


def has_content(path: str) -> bool:
    """True when `path` is a non-empty file (an earlier output worth keeping)."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False
