"""A command-line run's hold on its work folder, from its first check to the last file it removes.

The frame store's own lock is released when sampling ends, so another process may read the finished windows; a
command-line run then writes the MP4 and removes the windows. A second run of the same command (the documented
`--wait-for-lock` recovery) must not start in between, or it finds its segments removed under it. So the whole
run holds a lock on the work folder too, and releases it only after the folder is gone or in its final state.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from .run_lock import RunLock


@contextmanager
def holding_work_folder(work: str, wait: float = 0.0, remove_when_empty: bool = True):
    """Hold `work`'s lock for the block (waiting up to `wait` seconds for another run there). On the way out the
    folder is removed when nothing but the lock is left in it and `remove_when_empty` (or it did not exist)."""
    existed = os.path.isdir(work)
    lock = RunLock.acquire(work, wait=wait)
    try:
        yield lock
    finally:
        lock.release_removing(remove_folder=remove_when_empty or not existed)
