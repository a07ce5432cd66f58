"""What a client counts over its life (`ClientStats`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ClientStats:
    """Counters over the client's life; thread-safe through `add`."""

    requests: int = 0  # HTTP requests sent (attempts)
    calls: int = 0  # logical calls that succeeded
    retries: int = 0
    rate_limited: int = 0  # rate-limit answers received
    rate_wait_seconds: float = 0.0  # time spent waiting in the proactive limiter
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "rate_wait_seconds": round(self.rate_wait_seconds, 3),
        }
