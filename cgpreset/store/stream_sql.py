"""The stream's tables, written once for both backends: events, a run's liveness row, retention.

`stream_events` (natural key = primary key, so the same event stored twice is one row) and
`stream_runs` (one row per `cgpreset stream` run, updated while it runs) are base tables of
schema v3 (store/schema.py). A backend's sink (store/stream_tables.py for SQLite,
store/pg_stream.py for PostgreSQL) gives its transactions and how it tells a killed stream's
row; the statements are these. Times are stored in ms (UTC) like every other table; the
methods take and give unix seconds. No URL with the key and no key is ever written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from cgpreset.channels import StreamEvent
from cgpreset.store.dialect import Dialect
from cgpreset.store.schema import STREAM_EVENTS

#: summary keys copied into their own stream_runs columns
FIGURES = ("events", "events_per_minute", "reconnects", "pings_sent", "pongs_received")
#: Events one retention transaction deletes at most: the writer (the stream's next batch, a run
#: on the same SQLite file) waits for one batch at most, some milliseconds.
RETENTION_BATCH = 5000
DAY_MS = 86_400_000

#: The coins of the stored events, one index probe each (a loose scan of stream_events_coin_time).
_COINS = ("WITH RECURSIVE coins(c) AS (SELECT min(base_asset) FROM stream_events UNION ALL "
          "SELECT (SELECT min(base_asset) FROM stream_events WHERE base_asset > c) FROM coins WHERE c IS NOT NULL) "
          "SELECT c FROM coins WHERE c IS NOT NULL")


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class StreamWriter:
    """Writes one stream run's events and liveness figures; a backend gives `_d`, `_tx()` (one
    write transaction), `_reading()`, `_gone` (is a `running` row a killed stream's), `_insert_run` and `_hold`."""

    _d: Dialect
    run_id: int | None = None
    source: str | None = None  # recorded with the run: "emulator" or the API's host (run/source.py)

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _gone(self, db: Any, run_id: int, pid: int | None, updated_at_ms: int, now_ms: int) -> bool:
        raise NotImplementedError

    def _insert_run(self, db: Any, sql: str, values: tuple[Any, ...]) -> int:
        raise NotImplementedError

    def _hold(self, db: Any, run_id: int) -> None:
        """Mark the run as this process's for as long as it runs (PostgreSQL: a session lock)."""

    def close(self) -> None:
        """Nothing to release unless the backend holds a connection of its own."""

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_run(self, *, url: str, channels: list[str], coins: list[str] | None, now: float) -> int:
        """Record a new run as "running" (with this process's id), after marking rows left `running`
        by a killed stream as `abandoned`; `url` must already be redacted."""
        d = self._d
        with self._tx() as db:
            for rid, pid, updated in db.execute("SELECT id, pid, updated_at FROM stream_runs "
                                                "WHERE status = 'running' ORDER BY id").fetchall():
                if self._gone(db, int(rid), pid, int(updated), ms(now)):
                    db.execute(d.sql("UPDATE stream_runs SET status = 'abandoned', ended_at = updated_at, "
                                     "stop_reason = 'process gone' WHERE id = ?"), (rid,))
            self.run_id = self._insert_run(db, d.sql(
                "INSERT INTO stream_runs (started_at, updated_at, status, url, channels, coins, pid, source) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)"),
                (ms(now), ms(now), url, json.dumps(channels), None if coins is None else json.dumps(coins),
                 os.getpid(), self.source))
            self._hold(db, self.run_id)
        return self.run_id

    def add_events(self, events: Iterable[StreamEvent], *, now: float) -> int:
        """Insert events, ignoring ones already stored, in one transaction; returns how many were new."""
        rows = [(e.kind, e.exchange, e.symbol, e.time, str(e.side_raw), e.price, e.volume_usd,
                 e.base_asset, e.side, e.channel, self.run_id, ms(now)) for e in events]
        if not rows:
            return 0
        with self._tx() as db:
            cur = db.cursor()
            cur.executemany(self._d.insert(STREAM_EVENTS), rows)
            return max(0, int(cur.rowcount))

    def update_run(self, summary: dict[str, Any], *, now: float, last_event_at: float | None,
                   status: str = "running", stop_reason: str | None = None) -> None:
        """Write the current liveness figures (and, when it ended, the status and reason)."""
        if self.run_id is None:
            return
        ended = None if status == "running" else ms(now)
        with self._tx() as db:
            db.execute(self._d.sql(
                "UPDATE stream_runs SET updated_at = ?, ended_at = ?, status = ?, stop_reason = ?, events = ?, "
                "events_per_minute = ?, reconnects = ?, pings_sent = ?, pongs_received = ?, last_event_at = ?, "
                "summary = ? WHERE id = ?"),
                (ms(now), ended, status, stop_reason, *(summary.get(k, 0) for k in FIGURES),
                 None if last_event_at is None else ms(last_event_at), json.dumps(summary, sort_keys=True),
                 self.run_id))

    def count_events(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT count(*) FROM stream_events").fetchone()[0])

    def forget_events(self, days: float, *, now: float, max_rows: int | None = None,
                      batch: int = RETENTION_BATCH) -> int:
        """Retention: delete the stream events dated more than `days` before `now` (unix seconds),
        and nothing else; at most `max_rows` of them (None: all). Returns how many went.

        Coin by coin along the (base_asset, time_ms) index, `batch` events per transaction, so
        whoever writes meanwhile (this stream's next batch, a run on the same file) waits for one
        short transaction at most, and no table is scanned whole."""
        before = ms(now) - round(days * DAY_MS)
        with self._reading() as db:
            coins = [str(r[0]) for r in db.execute(_COINS).fetchall()]
        d, gone = self._d, 0
        delete = d.sql(f"DELETE FROM stream_events WHERE {d.row_id} IN (SELECT {d.row_id} FROM stream_events "
                       "WHERE base_asset = ? AND time_ms < ? LIMIT ?)")
        for coin in coins:
            while max_rows is None or gone < max_rows:
                size = batch if max_rows is None else min(batch, max_rows - gone)
                with self._tx() as db:
                    n = max(0, int(db.execute(delete, (coin, before, size)).rowcount))
                gone += n
                if n < size:
                    break
        return gone

def liveness(row: Mapping[str, Any], now: float, per_second: int, *, gone: bool = False) -> dict[str, Any]:
    """A stream_runs row as `health` shows it (see stream_tables.latest_liveness); `per_second`:
    the row's time unit per second (1000; before v3, times were seconds)."""
    def _seconds(value: float | None) -> float | None:
        return None if value is None else value / per_second

    last = _seconds(row["last_event_at"])
    return {
        "run_id": row["id"],
        "status": "abandoned" if gone else row["status"],
        "stop_reason": row["stop_reason"],
        "started_at": _seconds(row["started_at"]),
        "updated_at": _seconds(row["updated_at"]),
        "ended_at": _seconds(row["ended_at"]),
        "channels": json.loads(row["channels"]),
        "coins": None if row["coins"] is None else json.loads(row["coins"]),
        "events": row["events"],
        "events_per_minute": row["events_per_minute"],
        "reconnects": row["reconnects"],
        "pings_sent": row["pings_sent"],
        "pongs_received": row["pongs_received"],
        "last_event_at": last,
        "last_event_age_s": None if last is None else round(max(0.0, now - last), 3),
        "summary": json.loads(row["summary"]),
    }


def last_run(db: Any) -> dict[str, Any] | None:
    """The most recent stream_runs row as a dict, or None."""
    cur = db.execute("SELECT * FROM stream_runs ORDER BY id DESC LIMIT 1")
    names = [d[0] for d in cur.description or ()]
    got = cur.fetchone()
    return None if got is None else dict(zip(names, got, strict=True))
