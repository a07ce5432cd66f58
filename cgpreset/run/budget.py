"""The run's request budget (`--max-requests`, `--deadline`, a rate limit) and the client cut-off.

The budget owns the run's Deadline (`Budget.deadline`, on the client's clock once `arm`ed) and
the engine passes it to every client call; `cut` brings it to now, so no thread starts, waits or
retries any more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cgpreset.api.deadline import Deadline
from cgpreset.errors import DeadlineExceededError
from cgpreset.run.outcome import Outcome


class Budget:
    """The run's request budget: `--max-requests`, `--deadline`, or a rate-limit answer."""

    def __init__(self, max_requests: int | None = None, deadline_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_requests = max_requests
        self._deadline = None if deadline_s is None else clock() + deadline_s
        self._deadline_s = deadline_s
        self._clock = clock
        self._lock = threading.Lock()
        self.used = 0
        self.reason: str | None = None
        #: What the client's calls are given: `--deadline` on the client's clock (see `arm`), or a cut.
        self.deadline = Deadline()

    def arm(self, client_now: float) -> Deadline:
        """Put `--deadline` on the client's clock (`client_now` is now on it); the Deadline to pass."""
        left = self.time_left()
        if left is not None:
            self.deadline.cut(client_now + left)
        return self.deadline

    def cut(self, client_now: float) -> None:
        """Stop the client's calls now: nothing starts, waits or retries any more (in-flight reads end
        at their timeout)."""
        self.deadline.cut(client_now)

    @property
    def deadline_reason(self) -> str:
        return "deadline reached" + ("" if self._deadline_s is None else f" (--deadline {self._deadline_s:g}s)")

    def stop_reason(self, exc: DeadlineExceededError) -> str:
        """Why a call cut by the deadline stops the run: `deadline reached (--deadline 25s)`, or, when the
        client stopped before it because the next wait would pass it, when and why: `stopped after 1.4s
        of --deadline 25s: the next wait for the rate budget (58 s) would pass the deadline`."""
        left = self.time_left()
        if not exc.early or left is None or left <= 0 or self._deadline_s is None:
            return self.deadline_reason
        return f"stopped after {self._deadline_s - left:.1f}s of --deadline {self._deadline_s:g}s: {exc}"

    def time_left(self) -> float | None:
        """Seconds until the deadline (None without one; may be negative)."""
        return None if self._deadline is None else self._deadline - self._clock()

    def book(self, n: int) -> None:
        """Count requests made outside `take` (the plan detection); a negative n gives them back."""
        with self._lock:
            self.used = max(0, self.used + n)

    def take(self) -> str | None:
        """Book one request; return why not if the budget is spent."""
        with self._lock:
            if self.reason is None:
                if self.max_requests is not None and self.used >= self.max_requests:
                    self.reason = f"budget exhausted (--max-requests {self.max_requests})"
                elif self._deadline is not None and self._clock() >= self._deadline:
                    self.reason = self.deadline_reason
            if self.reason is not None:
                return self.reason
            self.used += 1
            return None

    def exhaust(self, reason: str) -> str:
        """Spend the budget (first reason wins); return the reason in force."""
        with self._lock:
            self.reason = self.reason or reason
            return self.reason


def starved_first(runs: Sequence[Mapping[str, Any]], cursors: Mapping[str, int]) -> Callable[[str], tuple[bool, int]]:
    """Sort key (by series id) for a run under a standing budget, so no series is skipped run after
    run: the series the last recorded run skipped go first, then the oldest cursor (none first)."""
    last: Mapping[str, Any] = next((r["outcomes"] for r in reversed(runs) if r.get("outcomes")), {})
    skipped = {k for k, v in last.items() if isinstance(v, Mapping) and v.get("outcome") == Outcome.SKIPPED}
    return lambda sid: (sid not in skipped, cursors.get(sid, -1))
