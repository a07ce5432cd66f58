"""The PostgreSQL store's connections: each call's gets its limits first, and one that died while
idle (a restarted or failed-over server) is replaced before the call's own statements run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from cgpreset.errors import CgPresetError, StoreUnavailableError
from cgpreset.store.dsn import PgDsn
from cgpreset.store.pg_connect import connect, converting, limit
from cgpreset.store.pg_guard import Reconnects, Watchdog
from cgpreset.store.waits import Bound


def checked(dsn: PgDsn, db: psycopg.Connection | None, bound: Callable[[], Bound], doing: str, watchdog: Watchdog,
            connect_new: Callable[[Bound], psycopg.Connection], reconnects: Reconnects
            ) -> tuple[psycopg.Connection, Bound]:
    """`db` (None: a new one) with the call's limits set (pg_connect.limit, its first round trip);
    returns it and the limits (`bound()`, taken again after each pause, so the pauses count).

    Nothing of the call has run yet, so a lost connection is safe to replace here: one that died
    while idle (its server restarted) is closed and a fresh one takes its place at once; a server
    that does not take the fresh one (restarting, failing over) gets `reconnects`' pauses first.
    Errors leave as one line (converting)."""
    new = db is None or db.closed or db.broken
    tried = 0
    while True:
        cut: list[str] = []
        limits = bound()
        try:
            db = connect_new(limits) if new or db is None else db
            with watchdog.watching(db, limits) as cut, converting(dsn, doing, limits, cut):
                limit(db, limits)
            return db, limits
        except CgPresetError as exc:
            if db is not None:
                db.close()
            if cut or not (isinstance(exc, StoreUnavailableError) and exc.reconnect):
                raise
            if new:
                reconnects.pause(exc, tried)
                tried += 1
            new = True


class Pool:
    """At most `size` connections, opened when first needed; a broken one is dropped, not reused."""

    def __init__(self, dsn: PgDsn, size: int, watchdog: Watchdog, reconnects: Reconnects) -> None:
        self.dsn = dsn
        self.watchdog = watchdog
        self.reconnects = reconnects
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.temp_tables: dict[int, set[str]] = {}

    @contextmanager
    def connection(self, bound: Callable[[], Bound], doing: str
                   ) -> Iterator[tuple[psycopg.Connection, Bound, list[str]]]:
        """A live connection with the call's limits (`bound()`, taken once a connection is free, so
        the wait for one counts), watched (see pg_guard.Watchdog) for as long as the call runs.
        Yields it, its limits, and the list that says why the watchdog cut it, if it did."""
        with self._slots:  # the calls holding them end within their own limits
            with self._lock:
                idle = self._idle.pop() if self._idle else None
            db, limits = checked(self.dsn, idle, bound, doing, self.watchdog,
                                 lambda limits: connect(self.dsn, bound=limits), self.reconnects)
            if db is not idle:  # a new connection: no temporary table yet (and the dead one's are gone)
                self.temp_tables.pop(id(db), None)
                if idle is not None:
                    self.temp_tables.pop(id(idle), None)
            try:
                with self.watchdog.watching(db, limits) as cut:
                    yield db, limits, cut
            except BaseException:  # a rolled-back transaction took the temporary tables it created with it
                self.temp_tables.pop(id(db), None)
                raise
            finally:
                if db.broken or db.closed:
                    self.temp_tables.pop(id(db), None)
                    db.close()
                else:
                    with self._lock:
                        self._idle.append(db)

    def discard_idle(self) -> None:
        """Close the idle connections: after one was lost, the others most likely were too."""
        with self._lock:
            idle, self._idle = self._idle, []
            for db in idle:
                self.temp_tables.pop(id(db), None)
        for db in idle:
            db.close()

    def close(self) -> None:
        self.discard_idle()
