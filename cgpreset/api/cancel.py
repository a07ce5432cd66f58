"""One process-wide "stop now" flag: set by SIGINT/SIGTERM, honoured by every wait and read.

A signal reaches only the main thread; worker threads blocked in the rate limiter's wait or in an
answer's read loop see this flag instead, so they end within a second of the signal.
"""

from __future__ import annotations

import threading

from cgpreset.errors import StopRequestedError

CANCEL = threading.Event()


def sleep(seconds: float) -> None:
    """time.sleep that ends at once, raising StopRequestedError, when the process is stopping."""
    if CANCEL.wait(max(0.0, seconds)):
        raise StopRequestedError()


def check(path: str = "") -> None:
    """Raise StopRequestedError if the process is stopping."""
    if CANCEL.is_set():
        raise StopRequestedError(path=path)
