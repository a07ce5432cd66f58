"""`cgpreset stream --store postgresql://...`: the stream's events and liveness in a PostgreSQL store.

The same tables, keys, units (ms) and statements as the SQLite file (store/stream_sql.py): an
event stored twice is one row; `stream_runs` holds each stream run's liveness. A running stream
holds a session advisory lock on its row, on a connection of its own: a row still `running`
whose lock is free belongs to a killed stream (on whichever machine), which `health` shows and
the next stream marks as `abandoned`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cgpreset.store.dialect import POSTGRES
from cgpreset.store.dsn import PgDsn
from cgpreset.store.pg_connect import connect, converting
from cgpreset.store.pg_schema import LOCK_NS, bring_to_v3
from cgpreset.store.stream_sql import StreamWriter

_WRITE = "store write failed"
#: Advisory-lock namespace of stream runs (runs use LOCK_NS + 1).
STREAM_LOCK_NS = LOCK_NS + 2


class PgStreamStore(StreamWriter):
    """Writes one stream run's events and liveness figures to a PostgreSQL store. `grown`: the
    schema is known to be there (`PostgresStore.stream_sink()` opened and grew it already)."""

    _d = POSTGRES

    def __init__(self, dsn: PgDsn, *, grown: bool = False) -> None:
        self.dsn = dsn
        self.display = dsn.display
        self._db = connect(dsn)
        try:
            if not grown:
                with converting(dsn, "cannot open store"):
                    bring_to_v3(self._db, dsn)
        except BaseException:
            self._db.close()
            raise
        self.run_id: int | None = None
        self.source: str | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PgStreamStore:
        return self

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with converting(self.dsn, _WRITE), self._db.transaction():
            yield self._db

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection]:
        with converting(self.dsn, "store read failed"):
            yield self._db

    def _gone(self, db: Any, run_id: int, pid: int | None, updated_at_ms: int, now_ms: int) -> bool:
        return lock_free(db, run_id)

    def _insert_run(self, db: Any, sql: str, values: tuple[Any, ...]) -> int:
        return int(db.execute(sql + " RETURNING id", values).fetchone()[0])

    def _hold(self, db: Any, run_id: int) -> None:
        db.execute("SELECT pg_advisory_lock(%s, %s::int)", (STREAM_LOCK_NS, run_id))


def lock_free(db: psycopg.Connection, run_id: int) -> bool:
    """Nobody holds stream run `run_id`'s lock: its stream has ended or was killed (call in a transaction;
    the probe's own lock goes with it)."""
    got = db.execute("SELECT pg_try_advisory_xact_lock(%s, %s::int)", (STREAM_LOCK_NS, run_id)).fetchone()
    return bool(got and got[0])


def latest_liveness(dsn: PgDsn, *, now: float | None = None) -> dict[str, Any] | None:
    """Liveness of the most recent stream run (see stream_tables.latest_liveness); None when no stream
    has run. Reads only: a database no cgpreset has written is not created or changed."""
    from cgpreset.store.postgres import PostgresStore

    with PostgresStore(dsn, readonly=True) as store:
        return store.stream_liveness(now=now)
