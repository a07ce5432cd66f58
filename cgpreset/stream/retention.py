"""`stream --retention-days N`: a long-running stream keeps its store's events to the last N days.

The stream asks the store (`StreamSink.forget_events`) once it starts writing liveness and then
every RETENTION_EVERY_S; the store deletes in short transactions. One pass deletes at most
PASS_ROWS events, so a first pass over a large backlog never holds the event loop (and its
heartbeat) for long: while a pass finds more, the next one comes with the next liveness write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cgpreset.store import StreamSink

log = logging.getLogger(__name__)

#: Seconds between retention passes once the backlog is gone.
RETENTION_EVERY_S = 3600.0
#: Events one pass deletes at most (some tenths of a second on SQLite).
PASS_ROWS = 50_000


class Retention:
    """When to forget old events, and doing it; `clock` is monotonic, `wall` the unix time."""

    def __init__(self, days: float | None, clock: Callable[[], float], wall: Callable[[], float], *,
                 every_s: float = RETENTION_EVERY_S, pass_rows: int = PASS_ROWS) -> None:
        self.days = days
        self.clock = clock
        self.wall = wall
        self.every_s = every_s
        self.pass_rows = pass_rows
        self.next_at = clock()
        self.forgotten = 0

    def run(self, store: StreamSink | None) -> int:
        """One pass if one is due (a stream with a store and --retention-days); the events deleted."""
        if self.days is None or store is None or self.clock() < self.next_at:
            return 0
        gone = store.forget_events(self.days, now=self.wall(), max_rows=self.pass_rows)
        self.next_at = self.clock() + (0.0 if gone >= self.pass_rows else self.every_s)
        self.forgotten += gone
        if gone:
            log.info("retention: %d stored events older than %g days deleted", gone, self.days)
        return gone
