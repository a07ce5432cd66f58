"""`cgpreset stream --store postgresql://...`: the stream tables of schema v3 in a PostgreSQL store.

The same tables, keys and units (ms) as the SQLite file (store/stream_tables.py): an event
stored twice is one row; `stream_runs` holds each stream run's liveness. The methods take and give
unix seconds, as the SQLite ones do. No URL with the key and no key is ever written. A running
stream holds a session advisory lock on its row: a row still `running` whose lock is free belongs
to a killed stream (on whichever machine), which `health` shows and the next stream marks as
`abandoned`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

import psycopg

from cgpreset.channels import StreamEvent
from cgpreset.errors import ConfigError
from cgpreset.store.dsn import PgDsn
from cgpreset.store.pg_connect import connect, converting
from cgpreset.store.pg_schema import LOCK_NS, bring_to_v3, check, found_tables, stored_version
from cgpreset.store.schema import SCHEMA_VERSION, STREAM_EVENTS
from cgpreset.store.stream_tables import _liveness

_FIGURES = ("events", "events_per_minute", "reconnects", "pings_sent", "pongs_received")
_WRITE = "store write failed"
#: Advisory-lock namespace of stream runs (runs use LOCK_NS + 1).
STREAM_LOCK_NS = LOCK_NS + 2


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class PgStreamStore:
    """Writes one stream run's events and liveness figures to a PostgreSQL store."""

    def __init__(self, dsn: PgDsn) -> None:
        self.dsn = dsn
        self.display = dsn.display
        self._db = connect(dsn)
        try:
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

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_run(self, *, url: str, channels: list[str], coins: list[str] | None, now: float) -> int:
        """Record a new run as "running" and hold its lock while this store is open, after marking rows
        left `running` by a killed stream (their lock is free) as `abandoned`; `url` must be redacted."""
        with converting(self.dsn, _WRITE), self._db.transaction():
            running = self._db.execute("SELECT id FROM stream_runs WHERE status = 'running' ORDER BY id").fetchall()
            for (rid,) in running:
                if _lock_free(self._db, rid):
                    self._db.execute("UPDATE stream_runs SET status = 'abandoned', ended_at = updated_at, "
                                     "stop_reason = 'process gone' WHERE id = %s", (rid,))
            row = self._db.execute(
                "INSERT INTO stream_runs (started_at, updated_at, status, url, channels, coins, pid, source) "
                "VALUES (%s, %s, 'running', %s, %s, %s, %s, %s) RETURNING id",
                (_ms(now), _ms(now), url, json.dumps(channels), None if coins is None else json.dumps(coins),
                 os.getpid(), self.source),
            ).fetchone()
            self.run_id = int(row[0])  # type: ignore[index]
            self._db.execute("SELECT pg_advisory_lock(%s, %s::int)", (STREAM_LOCK_NS, self.run_id))
        return self.run_id

    def add_events(self, events: Iterable[StreamEvent], *, now: float) -> int:
        """Insert events, ignoring ones already stored; returns how many rows were new."""
        rows = [
            (e.kind, e.exchange, e.symbol, e.time, str(e.side_raw), e.price, e.volume_usd,
             e.base_asset, e.side, e.channel, self.run_id, _ms(now))
            for e in events
        ]
        if not rows:
            return 0
        cols = ", ".join(STREAM_EVENTS.column_names)
        with converting(self.dsn, _WRITE), self._db.transaction():  # one transaction per batch
            cur = self._db.cursor()
            cur.executemany(f"INSERT INTO stream_events ({cols}) VALUES ({', '.join(['%s'] * len(rows[0]))}) "
                            f"ON CONFLICT ({', '.join(STREAM_EVENTS.key)}) DO NOTHING", rows)
            return max(0, cur.rowcount)

    def update_run(self, summary: dict[str, Any], *, now: float, last_event_at: float | None,
                   status: str = "running", stop_reason: str | None = None) -> None:
        """Write the current liveness figures (and, when it ended, the status and reason)."""
        if self.run_id is None:
            return
        ended = None if status == "running" else _ms(now)
        with converting(self.dsn, _WRITE):
            self._db.execute(
                "UPDATE stream_runs SET updated_at = %s, ended_at = %s, status = %s, stop_reason = %s,"
                " events = %s, events_per_minute = %s, reconnects = %s, pings_sent = %s, pongs_received = %s,"
                " last_event_at = %s, summary = %s WHERE id = %s",
                (_ms(now), ended, status, stop_reason, *(summary.get(k, 0) for k in _FIGURES),
                 None if last_event_at is None else _ms(last_event_at), json.dumps(summary, sort_keys=True),
                 self.run_id),
            )

    def count_events(self) -> int:
        with converting(self.dsn, "store read failed"):
            return int(self._db.execute("SELECT count(*) FROM stream_events").fetchone()[0])  # type: ignore[index]


def latest_liveness(dsn: PgDsn, *, now: float | None = None) -> dict[str, Any] | None:
    """Liveness of the most recent stream run (see stream_tables.latest_liveness); None when no stream
    has run. Reads only: a database no cgpreset has written is not created or changed."""
    db = connect(dsn)
    try:
        with converting(dsn, "store read failed"):
            db.execute("SET default_transaction_read_only = on")
            found = found_tables(db)
            version = stored_version(db, found)
            check(dsn, version, found)
            if version != SCHEMA_VERSION:
                return None
            cur = db.execute("SELECT * FROM stream_runs ORDER BY id DESC LIMIT 1")
            names = [d.name for d in cur.description or ()]
            got = cur.fetchone()
            gone = False
            if got is not None and got[names.index("status")] == "running":
                with db.transaction():
                    gone = _lock_free(db, int(got[names.index("id")]))
    finally:
        db.close()
    if got is None:
        return None
    row = dict(zip(names, got, strict=True))
    try:
        return _liveness(row, time.time() if now is None else now, 1000, gone=gone)  # type: ignore[arg-type]
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{dsn}: stream_runs row {row['id']} is not readable ({exc})") from None


def _lock_free(db: psycopg.Connection, run_id: int) -> bool:
    """Nobody holds stream run `run_id`'s lock: its stream has ended or was killed (call in a transaction;
    the probe's own lock goes with it)."""
    got = db.execute("SELECT pg_try_advisory_xact_lock(%s, %s::int)", (STREAM_LOCK_NS, run_id)).fetchone()
    return bool(got and got[0])
