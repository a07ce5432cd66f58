"""One process-wide "stop now" flag: set by SIGINT/SIGTERM, honoured by every wait and read.

A signal reaches only the main thread; worker threads blocked in the rate limiter's wait or in an
answer's read loop see this flag instead, so they end within a second of the signal.
"""

from __future__ import annotations

import threading

from cgpreset.errors import DeadlineExceededError

CANCEL = threading.Event()


class CancelledError(DeadlineExceededError):
    """The process is stopping (SIGINT/SIGTERM): no request starts, waits or reads any more."""


def sleep(seconds: float) -> None:
    """time.sleep that ends at once, raising CancelledError, when the process is stopping."""
    if CANCEL.wait(max(0.0, seconds)):
        raise CancelledError("the process is stopping")


def check(path: str = "") -> None:
    """Raise CancelledError if the process is stopping."""
    if CANCEL.is_set():
        raise CancelledError("the process is stopping", path=path)
