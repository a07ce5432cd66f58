"""Persist streamed events (de-duplicated) and stream liveness, in the run store's SQLite file.

Own tables only: `stream_events` (natural key = primary key, so the same event stored twice is
one row) and `stream_runs` (one row per `cgpreset stream` run, updated while it runs). Their DDL
is part of schema v3 (store/schema.py), so that one check (`sqlite_schema.check_store`) knows
the whole file: a damaged, foreign or newer file is refused here as it is by `run-preset`, and
an older one is migrated the same way. Times are stored in ms (UTC) like every other table; the
methods here take and give unix seconds. WAL mode and a busy timeout let a stream write while
`run-preset` or `health` use the same file. No URL with the key and no key is ever written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

from cgpreset.channels import StreamEvent
from cgpreset.errors import ConfigError
from cgpreset.store.sqlite import STALE_RUN_MS, _pid_alive
from cgpreset.store.sqlite_schema import (
    BUSY_TIMEOUT_MS,
    INTACT_CHECK_S,
    bring_to_v3,
    check_intact,
    check_path,
    check_store,
    converting,
)

# summary keys copied into their own stream_runs columns
_FIGURES = ("events", "events_per_minute", "reconnects", "pings_sent", "pongs_received")

_WRITE = "store write failed"


def stream_gone(pid: int | None, updated_at_ms: int, now_ms: int) -> bool:
    """A `running` stream row is a killed stream's: its process is gone; for a row that recorded no
    process id (written before they were), its liveness (written every 10 s) is STALE_RUN_MS old.
    SQLite stores are local files, so the process id is this machine's."""
    if pid is not None:
        return not _pid_alive(int(pid))
    return updated_at_ms < now_ms - STALE_RUN_MS


def connect(db_path: Path) -> sqlite3.Connection:
    """Open the store with WAL and a busy timeout; create the stream tables if needed.

    ConfigError (one line, naming the file) when the path is a directory, not an SQLite database,
    damaged (see sqlite_schema.check_intact), not a cgpreset store or one of a newer cgpreset (see
    store.check_store), or its folder cannot be created. The checks run before WAL or the tables
    touch the file.
    """
    check_path(db_path)
    with converting(db_path, "cannot open store"):
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        with converting(db_path, "cannot open store"):
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            check_store(conn, db_path)
            check_intact(conn, db_path, INTACT_CHECK_S)  # before the stream writes into a damaged file
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                bring_to_v3(conn, db_path)
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
    except BaseException:
        conn.close()
        raise
    return conn


class StreamSink(Protocol):
    """What a stream session writes to: this SQLite store or the PostgreSQL one (store/pg_stream.py)."""

    run_id: int | None
    source: str | None  # recorded with the run: "emulator" or the API's host (run/source.py)

    def close(self) -> None: ...
    def start_run(self, *, url: str, channels: list[str], coins: list[str] | None, now: float) -> int: ...
    def add_events(self, events: Iterable[StreamEvent], *, now: float) -> int: ...
    def update_run(self, summary: dict[str, Any], *, now: float, last_event_at: float | None,
                   status: str = "running", stop_reason: str | None = None) -> None: ...
    def count_events(self) -> int: ...


class StreamStore:
    """Writes one stream run's events and liveness figures."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._conn = connect(self.db_path)
        self.run_id: int | None = None
        self.source: str | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_run(self, *, url: str, channels: list[str], coins: list[str] | None, now: float) -> int:
        """Record a new run as "running" (with this process's id), after marking rows left `running`
        by a killed stream as `abandoned`; `url` must already be redacted."""
        with converting(self.db_path, _WRITE):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for rid, pid, updated in self._conn.execute(
                        "SELECT id, pid, updated_at FROM stream_runs WHERE status = 'running'").fetchall():
                    if stream_gone(pid, int(updated), _ms(now)):
                        self._conn.execute("UPDATE stream_runs SET status = 'abandoned', ended_at = updated_at, "
                                           "stop_reason = 'process gone' WHERE id = ?", (rid,))
                cur = self._conn.execute(
                    "INSERT INTO stream_runs (started_at, updated_at, status, url, channels, coins, pid, source) "
                    "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                    (_ms(now), _ms(now), url, json.dumps(channels), None if coins is None else json.dumps(coins),
                     os.getpid(), self.source),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
        self.run_id = int(cur.lastrowid or 0)
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
        with converting(self.db_path, _WRITE):
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")  # one transaction per batch
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO stream_events (kind, exchange, symbol, time_ms, side_raw, price,"
                    " volume_usd, base_asset, side, channel, run_id, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):  # a damaged file may refuse even this; the error says why
                        self._conn.execute("ROLLBACK")
                raise
            return self._conn.total_changes - before

    def update_run(
        self,
        summary: dict[str, Any],
        *,
        now: float,
        last_event_at: float | None,
        status: str = "running",
        stop_reason: str | None = None,
    ) -> None:
        """Write the current liveness figures (and, when it ended, the status and reason)."""
        if self.run_id is None:
            return
        ended = None if status == "running" else _ms(now)
        with converting(self.db_path, _WRITE):
            self._conn.execute(
                "UPDATE stream_runs SET updated_at = ?, ended_at = ?, status = ?, stop_reason = ?,"
                " events = ?, events_per_minute = ?, reconnects = ?, pings_sent = ?, pongs_received = ?,"
                " last_event_at = ?, summary = ? WHERE id = ?",
                (_ms(now), ended, status, stop_reason, *(summary.get(k, 0) for k in _FIGURES),
                 None if last_event_at is None else _ms(last_event_at), json.dumps(summary, sort_keys=True),
                 self.run_id),
            )

    def count_events(self) -> int:
        with converting(self.db_path, "store read failed"):
            return int(self._conn.execute("SELECT COUNT(*) FROM stream_events").fetchone()[0])


def latest_liveness(db_path: Path, *, now: float | None = None) -> dict[str, Any] | None:
    """Liveness of the most recent stream run, for `health`; None when no stream has run.

    ConfigError (one line, naming the file) when the path is a directory, or the file is not a
    database, is damaged, or is not a store of this cgpreset (see store.check_store): `health`
    reports it instead of crashing or ignoring it.

    Keys: run_id, status ("running", "stopped", "auth_error", "failed"; "abandoned" for a row still
    `running` whose stream was killed: its process is gone or its liveness is stale), stop_reason, started_at,
    updated_at, ended_at (unix seconds), channels, coins, events, events_per_minute, reconnects,
    pings_sent, pongs_received, last_event_at, last_event_age_s (seconds before `now`, or None
    when no event arrived), summary (the full run summary as last written).
    """
    db_path = Path(db_path)
    if db_path.is_dir():
        raise ConfigError(f"{db_path}: is a directory")
    if not db_path.exists():
        return None
    with converting(db_path, "cannot open store"):
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        with converting(db_path, "store read failed"):
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version, tables = check_store(conn, db_path)  # damaged, foreign or newer: said, not ignored
            if "stream_runs" not in tables:  # no stream has ever run here
                return None
            row = conn.execute("SELECT * FROM stream_runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    if row is None:
        return None
    now = time.time() if now is None else now
    per_second = 1000 if version >= 3 else 1  # before v3 its times were seconds
    try:
        gone = row["status"] == "running" and stream_gone(
            row["pid"] if "pid" in row.keys() else None, int(row["updated_at"] * 1000 / per_second), _ms(now))
        return _liveness(row, now, per_second, gone=gone)
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{db_path}: stream_runs row {row['id']} is not readable ({exc})") from None


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _liveness(row: sqlite3.Row, now: float, per_second: int, *, gone: bool = False) -> dict[str, Any]:
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
