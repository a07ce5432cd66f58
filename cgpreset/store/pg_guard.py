"""A PostgreSQL store's calls stay bounded: a watchdog for a server that stops answering, and a
reconnect or two after a lost connection.

The server enforces the lock and statement timeouts each call gives it (pg_connect.limit). A
frozen server (stopped, swapping, behind a network that drops packets) sends no error at all,
and TCP keepalives do not notice a live host whose server does not answer: the watchdog shuts
down the socket of a call that outlived its bound by CUT_MARGIN_S, and of every call in flight
when the process is told to stop, so the thread blocked in it gets an error at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

import psycopg

from cgpreset.api import cancel
from cgpreset.errors import DeadlineExceededError, StoreUnavailableError
from cgpreset.store.waits import Bound, TimeLeft

log = logging.getLogger("cgpreset.store")
R = TypeVar("R")

#: How long past its statement timeout a call may stay unanswered before the watchdog cuts it
#: (the server's own timeout error normally comes first).
CUT_MARGIN_S = 0.5
#: How often the watchdog looks at the calls in flight (and at a stop signal).
POLL_S = 0.1
#: Pauses before each new try of a call whose connection was lost (a restart, a failover).
RECONNECT_PAUSES_S = (0.5, 2.0)


class _Watch:
    """One call in flight: a duplicate of its connection's socket (so the right socket is shut down
    even if the connection closes its own), when to cut it, and why it was cut (empty: not cut)."""

    def __init__(self, db: psycopg.Connection, cut_at: float, *, after_stop: bool) -> None:
        self.sock = socket.socket(fileno=os.dup(db.fileno()))
        self.cut_at = cut_at
        self.after_stop = after_stop
        self.why: list[str] = []

    def cut(self, why: str) -> None:
        self.why.append(why)
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """Cuts a call unanswered past its bound, or in flight when the process was told to stop."""

    def __init__(self, *, stopping: threading.Event = cancel.CANCEL, clock: Callable[[], float] = time.monotonic,
                 poll_s: float = POLL_S) -> None:
        self._stopping = stopping
        self._clock = clock
        self._poll_s = poll_s
        self._watches: set[_Watch] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def watching(self, db: psycopg.Connection, bound: Bound) -> Iterator[list[str]]:
        """Watch one call on `db`; yields the list the watchdog fills with why it cut it, if it did."""
        watch = _Watch(db, self._clock() + bound.statement_s + min(CUT_MARGIN_S, bound.statement_s),
                       after_stop=self._stopping.is_set())
        with self._cond:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cgpreset-store-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield watch.why
        finally:
            with self._cond:
                self._watches.discard(watch)
            watch.sock.close()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now, stop = self._clock(), self._stopping.is_set()
                for watch in self._watches:
                    if not watch.why and stop and not watch.after_stop:
                        watch.cut("stopping")
                    elif not watch.why and now >= watch.cut_at:
                        watch.cut("no answer")
                if not self._watches:
                    self._cond.wait()
                    continue
                due = min((w.cut_at for w in self._watches if not w.why), default=now + self._poll_s)
                self._cond.wait(max(0.0, min(self._poll_s, due - now)))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()


class Reconnects:
    """The pauses before each new try after a lost connection (RECONNECT_PAUSES_S), within the run's
    deadline; `sleep` is injected (cancel.sleep ends at once, raising, when the process stops)."""

    def __init__(self, time_left: TimeLeft, sleep: Callable[[float], None],
                 pauses: tuple[float, ...] | None = None) -> None:
        self.time_left = time_left
        self.sleep = sleep
        self.pauses = RECONNECT_PAUSES_S if pauses is None else pauses  # read when built: tests may shorten it

    def pause(self, exc: StoreUnavailableError, tried: int) -> None:
        """Wait before try number `tried + 2`; when no try is left, `exc` (not to be retried again),
        when the deadline leaves no time for the pause, DeadlineExceededError."""
        if tried >= len(self.pauses):
            raise StoreUnavailableError(str(exc)) from None
        pause = self.pauses[tried]
        left = self.time_left()
        if left is not None and left <= pause:
            raise DeadlineExceededError(f"{exc}; the deadline leaves no time to reconnect") from None
        log.warning("%s; trying again in %g s", exc, pause)
        self.sleep(pause)


def retrying(call: Callable[[], R], reconnects: Reconnects, on_lost: Callable[[], None]) -> R:
    """`call`, tried again after a pause each time its connection was lost inside it
    (StoreUnavailableError with `reconnect`); `on_lost` drops the connections that died with it.
    For calls whose transaction either committed or not and that may run twice: a page's write
    (upserts, and its cursor only moves forward), the runs row's updates.
    """
    tried = 0
    while True:
        try:
            return call()
        except StoreUnavailableError as exc:
            if not exc.reconnect:
                raise
            reconnects.pause(exc, tried)
            tried += 1
            on_lost()
