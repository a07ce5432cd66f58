"""A deadline a caller hands to the client's calls: a time on the client's clock after which no
request starts, waits in the limiter, retries or keeps reading; `cut` moves it to now.

The run's budget owns one (run.budget.Budget.deadline) and passes it to every call, so a cut (a
rate limit that survived the retries, Ctrl-C) stops the threads already waiting or between
retries too: the client reads `at` afresh at each of those points.
"""

from __future__ import annotations

import threading


class Deadline:
    """A time on a client's clock (None: no deadline); thread-safe."""

    def __init__(self, at: float | None = None) -> None:
        self._at = at
        self._lock = threading.Lock()

    @property
    def at(self) -> float | None:
        with self._lock:
            return self._at

    def cut(self, at: float) -> None:
        """Bring the deadline forward to `at` (never back)."""
        with self._lock:
            self._at = at if self._at is None else min(self._at, at)


def earliest(*ats: float | None) -> float | None:
    """The earliest of the given deadlines (None when none is set)."""
    set_ = [a for a in ats if a is not None]
    return min(set_) if set_ else None
