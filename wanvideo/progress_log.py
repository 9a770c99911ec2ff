"""Progress of a long step in the log, at most every few seconds (a user never faces minutes of silence)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("wanvideo")

PROGRESS_EVERY_S = 3.0


def logged_progress(what: str, every_s: float = PROGRESS_EVERY_S,
                    clock: Callable[[], float] = time.monotonic) -> Callable[[int, int], None]:
    """A `callback(done, total)` that logs "what: 40% (12 s)" when `every_s` have passed since the last line."""
    start = clock()
    last = [start]

    def report(done: int, total: int) -> None:
        now = clock()
        if now - last[0] < every_s and done < total:
            return
        last[0] = now
        share = 100.0 * done / total if total else 100.0
        log.info("%s: %.0f%% (%.0f s)", what, share, now - start)

    return report
