"""Rate-limited warnings about rejected input, shared by the network sources (fluent_forward, gelf).

A flood of malformed frames must not become a flood of log lines: the first rejection of each reason
is logged at once, later ones at most once per `interval` per reason, with how many were held back.
Every rejection is still counted in hostwatch_logshipper_rejected_events_total by the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

COMPLAINT_INTERVAL = 60.0  # seconds between log lines about one rejection reason


class Complaints:
    def __init__(self, source: str, log: logging.Logger, clock: Callable[[], float] = time.monotonic,
                 interval: float = COMPLAINT_INTERVAL) -> None:
        self.source, self.log = source, log
        self._clock = clock
        self._interval = interval
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def __call__(self, reason: str, detail: str) -> None:
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self._interval:
            self._quiet[reason] = self._quiet.get(reason, 0) + 1
            return
        self._last[reason] = now
        more = self._quiet.pop(reason, 0)
        self.log.warning("%s: rejected (%s): %s%s", self.source, reason, detail,
                         f" (and {more} more since)" if more else "")
