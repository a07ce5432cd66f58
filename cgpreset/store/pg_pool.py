"""The PostgreSQL store's pool of connections for writing pages (store/postgres.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from cgpreset.store.dsn import PgDsn
from cgpreset.store.pg_connect import connect


class Pool:
    """At most `size` connections, opened when first needed; a broken one is dropped, not reused."""

    def __init__(self, dsn: PgDsn, size: int) -> None:
        self.dsn = dsn
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self.temp_tables: dict[int, set[str]] = {}

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._slots:
            with self._lock:
                db = self._idle.pop() if self._idle else None
            if db is None or db.closed:
                db = connect(self.dsn)
            try:
                yield db
            finally:
                if db.broken or db.closed:
                    self.temp_tables.pop(id(db), None)
                    db.close()
                else:
                    with self._lock:
                        self._idle.append(db)

    def close(self) -> None:
        with self._lock:
            for db in self._idle:
                db.close()
            self._idle.clear()
