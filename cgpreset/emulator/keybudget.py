"""The emulated per-key budget: a sliding 60-second window (the docs: requests per minute, per key)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class SlidingWindow:
    """Admits at most `limit` requests in any `window` seconds; thread-safe.

    Only admitted requests count: a request answered "Too Many Requests" does not use budget.
    """

    def __init__(self, limit: int, *, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def admit(self) -> tuple[bool, int]:
        """Try to use one request: (admitted, requests used in the current window)."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            if len(self._times) >= self.limit:
                return False, len(self._times)
            self._times.append(now)
            return True, len(self._times)

    def used(self) -> int:
        """Requests counted in the current window."""
        with self._lock:
            self._prune(self._clock())
            return len(self._times)

    def reset(self) -> None:
        with self._lock:
            self._times.clear()
