"""What the emulator saw, for tests and benchmarks to assert on. Never holds the key.

Times are `time.monotonic()` seconds, so they compare with each other, not with the wall clock.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request: path, query (without any key), whether a key header came, the answer.

    Recorded when the request arrives (`t`), completed when it is answered: `http_status` is 0
    and `code` None while no answer has gone out (still waiting, hanging, or dropped).
    `fault` names the fault kind that shaped the answer, if any.
    """

    path: str
    params: dict[str, str]
    key_present: bool
    http_status: int
    code: str | None
    t: float
    fault: str | None = None


@dataclass(frozen=True)
class WsFrame:
    """One text frame a client sent."""

    t: float
    text: str


@dataclass
class WsConnection:
    """One WebSocket connection: lifetime, close reason and every text frame the client sent.

    close_reason: "client" (the client closed or vanished), "drop_after", "idle_timeout",
    "auth" (missing/invalid key), "plan" (plan below Standard), "bad_path", "shutdown".
    """

    id: int
    path: str  # without the query string (the key lives there)
    key_present: bool
    key_valid: bool
    opened: float
    closed: float | None = None
    close_reason: str | None = None
    frames: list[WsFrame] = field(default_factory=list)
    last_client_message: float | None = None
    subscriptions: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [f.text for f in self.frames]

    def pings(self) -> list[float]:
        """Times of the text `ping` frames."""
        return [f.t for f in self.frames if f.text == "ping"]

    def subscribes(self) -> list[WsFrame]:
        """The subscribe messages, in order."""
        return [f for f in self.frames if '"subscribe"' in f.text]

    def max_silence(self, until: float | None = None) -> float:
        """The longest gap with no client frame, from open to close (or `until`)."""
        end = self.closed if self.closed is not None else until
        marks = [self.opened, *(f.t for f in self.frames)]
        if end is not None:
            marks.append(end)
        return max((b - a for a, b in zip(marks, marks[1:], strict=False)), default=0.0)


class Recorder:
    """Thread-safe logs of REST requests and WebSocket connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._tickets: list[int] = []
        self._next = 0
        self._ws: list[WsConnection] = []

    def add_request(self, rec: RecordedRequest) -> int:
        """Log an arriving request; the returned ticket completes it later."""
        with self._lock:
            self._requests.append(rec)
            self._tickets.append(self._next)
            self._next += 1
            return self._next - 1

    def complete_request(self, ticket: int, **changes: Any) -> None:
        """Fill in the answer of a logged request (ignored if the records were reset since)."""
        with self._lock:
            try:
                i = self._tickets.index(ticket, max(0, len(self._tickets) - 512))
            except ValueError:
                return
            self._requests[i] = replace(self._requests[i], **changes)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def add_ws(self, conn: WsConnection) -> None:
        with self._lock:
            self._ws.append(conn)

    def ws_frame(self, conn: WsConnection, frame: WsFrame) -> None:
        with self._lock:
            conn.frames.append(frame)
            conn.last_client_message = frame.t

    def ws_close(self, conn: WsConnection, t: float, reason: str) -> None:
        with self._lock:
            if conn.closed is None:
                conn.closed, conn.close_reason = t, reason

    def ws(self) -> list[WsConnection]:
        """Snapshots of every connection (safe to read while the server runs)."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._ws]

    def reset(self) -> None:
        """Forget requests and closed connections; open connections stay, with no frames."""
        with self._lock:
            self._requests.clear()
            self._tickets.clear()
            self._ws = [c for c in self._ws if c.closed is None]
            for conn in self._ws:
                conn.frames.clear()
