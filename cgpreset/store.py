"""The SQLite store of `run-preset`: typed rows with their raw JSON, cursors and runs.

One file, WAL journal, a busy timeout, and every write in one `BEGIN IMMEDIATE` transaction,
so several run-preset processes can write the same file at once. Rows are keyed by their
natural key (layer, coin, instrument, interval, time) and upserted: reruns and overlapping
windows never duplicate a row, and the still-forming bar is rewritten. A series' cursor (its
last closed bar) is saved in the same transaction as its rows. The API key is never stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 30_000

#: Typed columns; each layer fills the ones that apply (see series.TYPED_FIELDS).
TYPED_COLUMNS = ("open", "high", "low", "close", "long_usd", "short_usd", "buy_usd", "sell_usd",
                 "total_usd", "price_usd")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS bars (
    layer      TEXT    NOT NULL,
    coin       TEXT    NOT NULL,
    instrument TEXT    NOT NULL,
    interval   TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    series     TEXT    NOT NULL,
    {", ".join(f"{c} REAL" for c in TYPED_COLUMNS)},
    payload    TEXT    NOT NULL,
    fetched_at INTEGER NOT NULL,
    PRIMARY KEY (layer, coin, instrument, interval, time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bars_series_time ON bars (series, time);
CREATE TABLE IF NOT EXISTS cursors (
    series      TEXT PRIMARY KEY,
    last_closed INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    exit_code         INTEGER,
    requests          INTEGER NOT NULL DEFAULT 0,
    retries           INTEGER NOT NULL DEFAULT 0,
    rate_limited      INTEGER NOT NULL DEFAULT 0,
    rate_wait_seconds REAL    NOT NULL DEFAULT 0,
    outcomes          TEXT,
    status            TEXT
);
"""


@dataclass(frozen=True)
class WriteResult:
    """What one `write` did."""

    received: int
    new_rows: int
    cursor: int | None


def _now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    """One SQLite file; safe to share between threads (one connection behind a lock).

    `readonly=True` (for `--dry-run`) never creates, migrates or writes the file: the caller
    checks that it exists, and a store written by nothing yet reads as empty.
    """

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot create the store's folder: {exc.strerror or exc}") from None
        try:
            self._db = self._connect()
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot open store: {exc}") from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # garbage fails here
            if readonly:
                self._check_version(int(self._db.execute("PRAGMA user_version").fetchone()[0]))
            else:
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise ConfigError(f"{self.path}: not a cgpreset store ({exc})") from None
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(f"{self.path}: cannot open store: {exc}") from None
            raise

    def _connect(self) -> sqlite3.Connection:
        timeout = BUSY_TIMEOUT_MS / 1000
        if not self.readonly:
            return sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        # Read-only: mode=ro never writes the file; without a -wal file no other connection has
        # it open, so read it as immutable, which creates no -shm/-wal files either.
        wal = self.path.with_name(self.path.name + "-wal")
        uri = self.path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path}: store schema v{version} is newer than this cgpreset (v{SCHEMA_VERSION})"
            )

    def _migrate(self) -> None:
        with self._tx():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            if version < 1:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            elif version < 2:  # v1 -> v2: runs.status
                self._db.execute("ALTER TABLE runs ADD COLUMN status TEXT")
            if version < SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front (waits busy_timeout)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:  # e.g. locked longer than busy_timeout: one line, not a traceback
                raise ConfigError(f"{self.path}: store not writable: {exc}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise ConfigError(f"{self.path}: store write failed: {exc}") from None
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def remove(path: Path | str) -> None:
        """Delete a (closed) store file and its WAL side files, if present."""
        base = Path(path)
        for p in (base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")):
            p.unlink(missing_ok=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cursors and rows ------------------------------------------------------------------

    def cursor(self, series: str) -> int | None:
        """Open time of the series' last closed bar in the store, or None before the first run."""
        with self._lock:
            row = self._db.execute("SELECT last_closed FROM cursors WHERE series = ?", (series,)).fetchone()
        return None if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        with self._lock:
            if self.readonly and not self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cursors'").fetchone():
                return {}  # a file no run has written yet (read-only: not migrated)
            return {r[0]: int(r[1]) for r in self._db.execute("SELECT series, last_closed FROM cursors")}

    def write(
        self,
        *,
        series: str,
        layer: str,
        coin: str,
        interval: str,
        rows: Iterable[dict[str, Any]],
        closed_upto: int | None,
    ) -> WriteResult:
        """Upsert rows and move the cursor to `closed_upto` (never backwards), atomically.

        Each row dict needs `instrument`, `time`, `payload` (the raw JSON object) and any of the
        typed columns.
        """
        rows = list(rows)
        fetched = _now_ms()
        cols = ("layer", "coin", "instrument", "interval", "time", "series", *TYPED_COLUMNS, "payload",
                "fetched_at")
        sql = (
            f"INSERT INTO bars ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT (layer, coin, instrument, interval, time) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in (*TYPED_COLUMNS, "payload", "fetched_at", "series"))
        )
        values = [
            (layer, coin, r["instrument"], interval, int(r["time"]), series,
             *(r.get(c) for c in TYPED_COLUMNS),
             json.dumps(r["payload"], sort_keys=True, separators=(",", ":")), fetched)
            for r in rows
        ]
        with self._tx() as db:
            before = db.execute("SELECT count(*) FROM bars WHERE series = ?", (series,)).fetchone()[0]
            db.executemany(sql, values)
            after = db.execute("SELECT count(*) FROM bars WHERE series = ?", (series,)).fetchone()[0]
            cursor = None
            if closed_upto is not None:
                db.execute(
                    "INSERT INTO cursors (series, last_closed, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (series) DO UPDATE SET "
                    "last_closed = max(last_closed, excluded.last_closed), updated_at = excluded.updated_at",
                    (series, int(closed_upto), fetched),
                )
            got = db.execute("SELECT last_closed FROM cursors WHERE series = ?", (series,)).fetchone()
            cursor = None if got is None else int(got[0])
        return WriteResult(received=len(values), new_rows=after - before, cursor=cursor)

    def reset_cursor(self, series: str) -> None:
        """Forget a cursor (`--full-refresh`); rows stay and are upserted again."""
        with self._tx() as db:
            db.execute("DELETE FROM cursors WHERE series = ?", (series,))

    def rows(self, series: str) -> list[dict[str, Any]]:
        """A series' rows, ascending by (time, instrument): typed columns plus `payload` decoded."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM bars WHERE series = ? ORDER BY time, instrument", (series,)
            )
            out = []
            for r in cur:
                d = dict(r)
                d["payload"] = json.loads(d["payload"])
                out.append(d)
        return out

    def count(self, series: str | None = None) -> int:
        with self._lock:
            if series is None:
                return int(self._db.execute("SELECT count(*) FROM bars").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM bars WHERE series = ?", (series,)).fetchone()[0])

    # -- runs ------------------------------------------------------------------------------

    def start_run(self) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO runs (started_at, status) VALUES (?, 'running')", (_now_ms(),))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, *, exit_code: int | None, totals: dict[str, Any],
                   outcomes: dict[str, Any], status: str = "finished") -> None:
        """Close a run's row: `finished`, or `interrupted` (Ctrl-C) / `crashed` (a program error)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, requests = ?, retries = ?, rate_limited = ?, "
                "rate_wait_seconds = ?, outcomes = ?, status = ? WHERE id = ?",
                (_now_ms(), exit_code, int(totals.get("requests", 0)), int(totals.get("retries", 0)),
                 int(totals.get("rate_limited", 0)), float(totals.get("rate_wait_seconds", 0.0)),
                 json.dumps(outcomes, sort_keys=True), status, run_id),
            )

    def runs(self) -> list[dict[str, Any]]:
        with self._lock:
            out = [dict(r) for r in self._db.execute("SELECT * FROM runs ORDER BY id")]
        for r in out:
            r["outcomes"] = json.loads(r["outcomes"]) if r["outcomes"] else None
        return out
