"""A proactive, thread-safe rate limiter shared by every request of the process.

A sliding-window log: at most `limit` request starts in any `window` seconds. The window is a
little longer than the server's minute (`margin`), so that latency jitter between our start and
the server's arrival time can never make the server count `limit + 1` in its minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

log = logging.getLogger(__name__)
#: A wait for the budget at least this long (seconds) is announced on stderr.
LONG_WAIT = 10.0


class RateLimiter:
    """At most `limit` acquisitions per sliding `window + margin` seconds, across threads."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        margin: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._span = window + margin
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # summed over threads: two threads waiting 1 s each count 2 s
        self.wall_waited_seconds = 0.0  # wall-clock time during which at least one thread waited
        self._waiters = 0
        self._wait_since = 0.0
        self.acquired = 0

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def span(self) -> float:
        return self._span

    def set_limit(self, limit: int) -> None:
        """Resize the budget (e.g. from the plan, or the API-KEY-MAX-LIMIT header)."""
        if limit >= 1:
            with self._lock:
                self._limit = limit

    def _prune(self, now: float) -> None:
        while self._starts and self._starts[0] <= now - self._span:
            self._starts.popleft()

    def _delay(self, now: float) -> float:
        """Seconds until one more request may start (0 = now). Caller holds the lock."""
        self._prune(now)
        delay = max(0.0, self._blocked_until - now)
        if len(self._starts) >= self._limit:
            oldest_blocking = self._starts[len(self._starts) - self._limit]
            delay = max(delay, oldest_blocking + self._span - now)
        return delay

    def acquire(self, deadline: float | None = None) -> float:
        """Block until a request may start; record it; return the seconds waited.

        With a `deadline` (on this limiter's clock), raise TimeoutError instead of waiting past it.
        """
        waited = 0.0
        waiting = False
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    delay = self._delay(now)
                    if delay <= 0:
                        self._starts.append(now)
                        self.acquired += 1
                        self.waited_seconds += waited
                        return waited
                    if not waiting:
                        waiting = True
                        if self._waiters == 0:
                            self._wait_since = now
                            if delay >= LONG_WAIT:  # a pause this long must not look like a hang
                                log.warning("rate budget of %d requests a minute is spent (by this process "
                                            "or others on the key); waiting %.0f s", self._limit, delay)
                        self._waiters += 1
                if deadline is not None and now + delay > deadline:
                    self.waited_seconds += waited
                    raise TimeoutError(f"the rate budget frees up in {delay:.1f}s, after the deadline")
                self._sleep(delay)
                waited += delay
        finally:
            if waiting:
                with self._lock:
                    self._waiters -= 1
                    if self._waiters == 0:
                        self.wall_waited_seconds += max(0.0, self._clock() - self._wait_since)

    def in_window(self) -> int:
        """Requests started within the current window."""
        with self._lock:
            self._prune(self._clock())
            return len(self._starts)

    def observe(self, *, max_limit: int | None = None, used: int | None = None) -> None:
        """Keep in step with API-KEY-MAX-LIMIT / API-KEY-USE-LIMIT from a response.

        A larger `used` than our own count means another process shares the key: its requests
        are booked as if they started now, so we slow down instead of running into the limit.
        """
        with self._lock:
            if max_limit is not None and max_limit >= 1:
                self._limit = max_limit
            if used is not None:
                now = self._clock()
                self._prune(now)
                extra = used - len(self._starts)
                for _ in range(max(0, min(extra, self._limit))):
                    self._starts.append(now)

    def block_for(self, seconds: float) -> None:
        """After a rate-limit answer: let nobody start for `seconds` (the window to free up)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))
