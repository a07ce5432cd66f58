"""The SQLite backend of the store (schema v3, see store/schema.py): one file, many writers.

WAL journal, a busy timeout, and every write in one `BEGIN IMMEDIATE` transaction, so several
run-preset processes can write the same file at once. Rows are keyed by (series, time) in their
layer's table: reruns and overlapping windows never duplicate a row, and the still-forming bar
is rewritten. A page's rows and its series' cursor are written in one transaction, under the
lock only for as long as the writing takes; new rows are counted from the insert itself (no
count scans). The API key is never stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpreset.clock import WallClock, wall_ms
from cgpreset.errors import ConfigError, StoreUnavailableError
from cgpreset.layers import spec
from cgpreset.plans import interval_ms
from cgpreset.store import coverage, sqlite_schema, stream_sql
from cgpreset.store.base import Cursor, KnownPlan, Page, SeriesRef, WriteResult
from cgpreset.store.dialect import SQLITE
from cgpreset.store.schema import SCHEMA_VERSION, detail_table, table_name
from cgpreset.store.shared import SharedStore
from cgpreset.store.sqlite_schema import (  # noqa: F401 - the file checks are part of this module's API
    BUSY_TIMEOUT_MS,
    begin_immediate,
    bring_to_v3,
    check_intact,
    check_path,
    check_store,
    check_tables,
    check_version,
    converting,
    store_error,
)
from cgpreset.store.waits import TimeLeft, Waits

if TYPE_CHECKING:
    from cgpreset.store.stream_tables import StreamStore

#: A `running` run whose heartbeat is older than this is taken for killed (its pid may be reused).
STALE_RUN_MS = 15 * 60_000
#: How often a writing run refreshes its heartbeat.
HEARTBEAT_MS = 30_000


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class SQLiteStore(SharedStore):
    """One SQLite file; safe to share between threads (one connection behind a lock).

    `readonly=True` (for `--dry-run`) never creates, migrates or writes the file: a file that is
    not there is one line ("no such store"); a store written by nothing yet reads as empty, and
    a v1/v2 store is read as it is (its cursors), not migrated.

    Opening checks the file (`check_store`): a damaged, foreign or newer store is refused before
    anything is read or written, in every mode; a writing open also reads it whole first
    (`check_intact`, bounded), then migrates and grows it to the active catalogue
    (store/growth.py) in one transaction. Every method runs inside `_db_for`, so whatever SQLite
    reports later (a page damaged after opening) is one line naming the file too: ConfigError, or
    StoreUnavailableError (exit 75) for what passes (a full disk, a lock held past the wait).

    `time_left` (seconds to the run's deadline, or None) bounds the wait for another writer's
    lock (store/waits.py): past the deadline a write raises DeadlineExceededError.
    """

    _d = SQLITE

    def __init__(self, path: Path | str, *, readonly: bool = False, time_left: TimeLeft | None = None,
                 clock: WallClock = wall_ms) -> None:
        self.path = Path(path)
        self._clock = clock  # now, in ms: run rows, coverage, stream liveness
        self.display = str(self.path)
        self.readonly = readonly
        self._waits = Waits(time_left, lock_cap_s=sqlite_schema.BUSY_TIMEOUT_MS / 1000)
        self._lock = threading.RLock()
        self._version = self._file_version = SCHEMA_VERSION
        self._series_ids: dict[str, int] = {}
        self._met = {}
        self._run_id: int | None = None
        self._beat = 0
        if readonly and self.path.is_dir():
            raise ConfigError(f"{self.path}: is a directory")
        if readonly and not self.path.exists():  # a read never creates the file
            raise ConfigError(f"{self.path}: no such store (no run has written it yet)")
        if not readonly:
            check_path(self.path)
        with converting(self.path, "cannot open store"):
            self._db = self._connect()
        try:
            with converting(self.path, "cannot open store"):
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                version, self._found = check_store(self._db, self.path)  # before WAL or migration touch it
                self._file_version = version
                if readonly:
                    self._version = version if "cursors" in self._found else -1
                else:
                    left = self._waits.bound(f"{self.path}: cannot open store", grace=True).statement_s
                    check_intact(self._db, self.path, min(sqlite_schema.INTACT_CHECK_S, left))
                    self._db.execute("PRAGMA journal_mode = WAL")
                    self._db.execute("PRAGMA synchronous = NORMAL")
                    self._met_all()
                    with self._tx(grace=True) as db:
                        self._found = bring_to_v3(db, self.path)
        except BaseException:
            self._db.close()
            raise

    def _grow(self) -> None:
        """Add the tables and views of layers that joined the catalogue since the store opened."""
        with self._tx(grace=True) as db:
            self._found = sqlite_schema.grow(db, self.path)
        self._met_all()

    def _connect(self, *, readonly: bool | None = None) -> sqlite3.Connection:
        timeout = BUSY_TIMEOUT_MS / 1000
        if not (self.readonly if readonly is None else readonly):
            return sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        # Read-only: mode=ro never writes the file; without a -wal file no other connection has
        # it open, so read it as immutable, which creates no -shm/-wal files either.
        wal = self.path.with_name(self.path.name + "-wal")
        uri = self.path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?mode=ro&immutable=1")
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)

    @contextmanager
    def _db_for(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite errors turned into one ConfigError line."""
        with self._lock, converting(self.path, doing):
            yield self._db

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db_for("store read failed")

    @contextmanager
    def _tx(self, *, grace: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front, waiting for another
        writer as long as store/waits.py allows (`grace`: not a page, a moment past the deadline)."""
        with self._lock:
            try:
                with self._db_for("store not writable") as db:
                    begin_immediate(db, self.path, self._waits.bound(f"{self.path}: store not writable", grace=grace))
                try:
                    with self._db_for("store write failed") as db:
                        yield db
                        db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        with suppress(sqlite3.Error):  # a damaged file may refuse even this; the error above says why
                            self._db.execute("ROLLBACK")
                    raise
            except StoreUnavailableError as exc:
                if not grace:
                    self._waits.down(exc)  # the pages other threads are about to write fail at once
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cursors ---------------------------------------------------------------------------

    def _legacy(self) -> bool:
        """A read-only v1/v2 file (not migrated): its cursors are read from v2's tables."""
        return self._version in (1, 2)

    def positions(self) -> dict[str, Cursor]:
        """Every series' cursor with the oldest and newest bars stored, by series key."""
        if self._version < 0 or self._version == 0:  # a file no run has written yet (read-only)
            return {}
        with self._reading() as db:
            if self._legacy():
                return {k: Cursor(int(c), lo, hi) for k, c, lo, hi in db.execute(
                    "SELECT c.series, c.last_closed, (SELECT min(time) FROM bars WHERE series = c.series), "
                    "(SELECT max(time) FROM bars WHERE series = c.series) FROM cursors c")}
            return self._current_positions(db)

    def cursor(self, series: str) -> int | None:
        """Open time of the series' last closed bar in the store, or None before the first run."""
        return self.cursors().get(series) if self.readonly else self._cursor(series)

    def _cursor(self, series: str) -> int | None:
        with self._reading() as db:
            row = db.execute("SELECT c.last_closed FROM cursors c JOIN series s ON s.id = c.series "
                             "WHERE s.key = ?", (series,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _columns_of(self, db: Any) -> dict[str, tuple[str, ...]]:
        return sqlite_schema.user_tables(db)

    # -- what else a command reads and writes: the analyst's connection, the stream ----------

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only DB-API connection for the analyst views (closed after the block)."""
        with converting(self.path, "cannot open store"):
            db = self._connect(readonly=True)
        try:
            yield db
        finally:
            db.close()

    def stream_sink(self) -> StreamStore:
        """Where `stream --store` writes its events and liveness: this store's own connection."""
        from cgpreset.store.stream_tables import StreamStore

        return StreamStore(self)

    def stream_liveness(self, *, now: float | None = None) -> dict[str, Any] | None:
        """Liveness of the most recent stream run (see stream_tables.latest_liveness); None when no
        stream has run here."""
        from cgpreset.store.stream_tables import stream_gone

        if "stream_runs" not in self._found:
            return None
        with self._reading() as db:
            row = stream_sql.last_run(db)
        if row is None:
            return None
        now = self._clock() / 1000 if now is None else now
        per_second = 1000 if self._file_version >= 3 else 1  # before v3 its times were seconds
        try:
            gone = row["status"] == "running" and stream_gone(
                row.get("pid"), int(row["updated_at"] * 1000 / per_second), stream_sql.ms(now))
            return stream_sql.liveness(row, now, per_second, gone=gone)
        except (IndexError, KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: stream_runs row {row['id']} is not readable ({exc})") from None

    # -- writing ---------------------------------------------------------------------------

    def _series_id(self, db: sqlite3.Connection, ref: SeriesRef) -> int:
        """The series' integer id; its row is added on first write (inside the caller's transaction)."""
        sid = self._series_ids.get(ref.key)
        if sid is not None:
            return sid
        row = db.execute("SELECT id FROM series WHERE key = ?", (ref.key,)).fetchone()
        if row is None:
            cur = db.execute("INSERT INTO series (key, layer, coin, exchange, instrument, interval, params) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (ref.key, ref.layer, ref.coin, ref.exchange,
                                                              ref.instrument, ref.interval, ref.params))
            return int(cur.lastrowid or 0)  # cached once the transaction commits (see write)
        self._series_ids[ref.key] = int(row[0])
        return int(row[0])

    def write(self, page: Page) -> WriteResult:
        """Store a page's rows and move the series' cursor to `closed_upto` (never backwards), atomically.

        Rows new to the store are inserted and counted by the insert itself; rows that may be
        stored already (their time within the series' stored bounds) are then upserted, so the
        forming bar and a re-fetched closed bar take their latest values. A windowed page also
        updates the series' coverage (spans held, holes found) in the same transaction.
        """
        ls = spec(page.series.layer)
        table = self._table_for(ls)
        times = [r[0] for r in page.rows]
        now = self._clock()
        with self._tx() as db:
            sid = self._series_id(db, page.series)
            bounds = db.execute("SELECT last_closed, earliest, latest FROM cursors WHERE series = ?",
                                (sid,)).fetchone()
            rows = [(sid, *r) for r in page.rows]
            before = db.total_changes
            db.executemany(SQLITE.insert(table), rows)
            new = db.total_changes - before
            if new < len(rows):  # some were stored already: give them this answer's values
                lo, hi = (bounds[1], bounds[2]) if bounds and bounds[1] is not None else (None, None)
                again = rows if lo is None else [r for r in rows if lo <= r[1] <= hi]
                db.executemany(SQLITE.insert(table, on_conflict="update"), again)
            detail = detail_table(ls)
            if page.detail and detail is not None:
                db.executemany(SQLITE.insert(detail, on_conflict="update"), [(sid, *d) for d in page.detail])
            if page.raw is not None:
                db.execute("INSERT OR REPLACE INTO raw_pages (series, fetched_at, reason, body) VALUES (?, ?, ?, ?)",
                           (sid, now, page.raw_reason or "kept", page.raw))
            removed = 0
            if page.asked is not None:
                interval = page.series.interval
                removed = coverage.remove_stale(db, SQLITE, table.name, sid, page, interval)
                coverage.record(db, SQLITE, sid, page, interval_ms(interval), run=self._run_id, now=now)
            cursor = self._move_cursor(db, sid, bounds, page.closed_upto, times, now, removed > 0)
            self._beat_in(db, now)
        self._series_ids[page.series.key] = sid
        return WriteResult(received=len(rows), new_rows=new, cursor=cursor, removed=removed)

    @staticmethod
    def _move_cursor(db: sqlite3.Connection, sid: int, bounds: Any, closed_upto: int | None, times: list[int],
                     now: int, recount: bool = False) -> int | None:
        old_closed, lo, hi = bounds if bounds else (None, None, None)
        closed = max((c for c in (old_closed, closed_upto) if c is not None), default=None)
        if times:
            lo = min(times) if lo is None else min(lo, min(times))
            hi = max(times) if hi is None else max(hi, max(times))
        if recount:  # stale rows went: the bounds are what is stored now
            layer = db.execute("SELECT layer FROM series WHERE id = ?", (sid,)).fetchone()[0]
            lo, hi = db.execute(f"SELECT min(time), max(time) FROM {table_name(layer)} WHERE series = ?",
                                (sid,)).fetchone()
        if bounds is None and not times and closed is None:
            return None
        db.execute("INSERT INTO cursors (series, last_closed, earliest, latest, updated_at) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (series) DO UPDATE SET last_closed = excluded.last_closed, "
                   "earliest = excluded.earliest, latest = excluded.latest, updated_at = excluded.updated_at",
                   (sid, closed, lo, hi, now))
        return closed

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, *, pid: int | None = None, now_ms: int | None = None, source: str | None = None) -> int:
        """Record a new run as `running` (with its data's source), after marking runs left `running`
        by a killed process."""
        now = self._clock() if now_ms is None else now_ms
        with self._tx(grace=True) as db:
            self._mark_abandoned(db, now)
            cur = db.execute("INSERT INTO runs (started_at, status, pid, heartbeat_at, source) "
                             "VALUES (?, 'running', ?, ?, ?)", (now, os.getpid() if pid is None else pid, now, source))
            self._run_id = int(cur.lastrowid or 0)
            self._beat = now
            return self._run_id

    @staticmethod
    def _mark_abandoned(db: sqlite3.Connection, now: int) -> int:
        """`running` rows whose process is gone or whose heartbeat is stale become `abandoned`."""
        gone = [rid for rid, pid, beat in db.execute("SELECT id, pid, heartbeat_at FROM runs WHERE status = 'running'")
                if pid is None or not _pid_alive(int(pid)) or (beat or 0) < now - STALE_RUN_MS]
        for rid in gone:
            db.execute("UPDATE runs SET status = 'abandoned', ended_at = coalesce(heartbeat_at, started_at) "
                       "WHERE id = ?", (rid,))
        return len(gone)

    def _beat_in(self, db: sqlite3.Connection, now: int) -> None:
        if self._run_id is not None and now - self._beat >= HEARTBEAT_MS:
            db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, self._run_id))
            self._beat = now

    def heartbeat(self, run_id: int, *, now_ms: int | None = None) -> None:
        """Say the run is alive (writes refresh it too, every HEARTBEAT_MS)."""
        now = self._clock() if now_ms is None else now_ms
        with self._tx(grace=True) as db:
            db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))

    def record_plan(self, run_id: int, plan: str, *, max_limit: int | None, now_ms: int | None = None) -> None:
        """Remember the key's plan (and its requests per minute, API-KEY-MAX-LIMIT) for the next runs."""
        now = self._clock() if now_ms is None else now_ms
        with self._tx(grace=True) as db:
            db.execute("UPDATE runs SET plan = ?, plan_at = ?, max_limit = ? WHERE id = ?",
                       (plan, now, max_limit, run_id))

    def sources(self) -> list[str]:
        """Every source whose data the runs and stream runs recorded ("emulator" or an API host), sorted."""
        if self._version != SCHEMA_VERSION:
            return []
        with self._reading() as db:
            found: set[str] = set()
            for table in ("runs", "stream_runs"):  # a v3 file from before they recorded it has no column
                if "source" in self._found.get(table, ()):
                    found |= {str(r[0]) for r in db.execute(f"SELECT DISTINCT source FROM {table} "
                                                            "WHERE source IS NOT NULL")}
            return sorted(found)

    def known_plan(self) -> KnownPlan | None:
        """The plan the latest run recorded, or None."""
        if self._version != SCHEMA_VERSION:
            return None
        with self._reading() as db:
            row = db.execute("SELECT plan, plan_at, max_limit FROM runs WHERE plan IS NOT NULL "
                             "ORDER BY plan_at DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else KnownPlan(str(row[0]), int(row[1]), None if row[2] is None else int(row[2]))

    def finish_run(self, run_id: int, *, exit_code: int | None, totals: dict[str, Any],
                   outcomes: dict[str, Any], status: str = "finished") -> None:
        """Close a run's row: `finished`, or `interrupted` (Ctrl-C) / `crashed` (a program error)."""
        with self._tx(grace=True) as db:
            db.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, requests = ?, retries = ?, rate_limited = ?, "
                "rate_wait_seconds = ?, outcomes = ?, status = ? WHERE id = ?",
                (self._clock(), exit_code, int(totals.get("requests", 0)), int(totals.get("retries", 0)),
                 int(totals.get("rate_limited", 0)), float(totals.get("rate_wait_seconds", 0.0)),
                 json.dumps(outcomes, sort_keys=True), status, run_id),
            )

    def set_exit_code(self, run_id: int, exit_code: int) -> None:
        """The process's exit code, when it differs from the run's (a metrics file not written: 2)."""
        with self._tx(grace=True) as db:
            db.execute("UPDATE runs SET exit_code = ? WHERE id = ?", (exit_code, run_id))

    def runs(self) -> list[dict[str, Any]]:
        if self._version < 1:
            return []
        with self._reading() as db:
            cur = db.execute("SELECT * FROM runs ORDER BY id")
            names = [d[0] for d in cur.description]
            out = [dict(zip(names, r, strict=True)) for r in cur]
            for r in out:  # inside the guard: stored JSON that no longer parses is one line too
                r["outcomes"] = json.loads(r["outcomes"]) if r["outcomes"] else None
        return out

