"""The PostgreSQL backend of the store (schema v3, see store/schema.py): one server, many runners.

A page goes in as COPY into a temporary table and one `INSERT ... ON CONFLICT DO UPDATE` into its
layer's table, with its series' cursor, in one short transaction: a killed runner leaves whole
pages only, and a rerun or an overlapping window never duplicates a row. Lock order, the same in
every transaction: the series' advisory lock, then its rows (in key order), then its cursor row;
so runners writing the same series wait for each other and never deadlock. A series' id is taken
with `INSERT ... ON CONFLICT DO NOTHING` and a SELECT, outside any page's transaction. Each run
holds a session advisory lock on its runs row: the next run marks a row whose lock is free (its
process is gone, on whichever machine) as `abandoned`. The password is never stored or shown.

Every call is bounded (store/waits.py: the run's time left, capped): lock and statement timeouts
on its session, a watchdog for a server that stops answering (store/pg_guard.py). A connection
that died while idle is replaced before a call uses it; a page's write and the runs row's
updates are tried again on a fresh connection after a lost one (a restart, a failover).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg

from cgpreset.api import cancel
from cgpreset.clock import WallClock, wall_ms
from cgpreset.errors import ConfigError, StoreUnavailableError
from cgpreset.layers import spec
from cgpreset.plans import interval_ms
from cgpreset.store import coverage, stream_sql
from cgpreset.store.base import KnownPlan, Page, SeriesRef, WriteResult
from cgpreset.store.dialect import POSTGRES
from cgpreset.store.dsn import PgDsn
from cgpreset.store.pg_connect import connect, converting
from cgpreset.store.pg_guard import Reconnects, Watchdog, retrying
from cgpreset.store.pg_pool import Pool, checked
from cgpreset.store.pg_schema import LOCK_NS, bring_to_v3, check, found_tables, stored_version
from cgpreset.store.pg_stream import PgStreamStore, lock_free
from cgpreset.store.schema import SCHEMA_VERSION, TableDef, detail_table
from cgpreset.store.shared import SharedStore
from cgpreset.store.sqlite import HEARTBEAT_MS
from cgpreset.store.waits import Bound, TimeLeft, Waits

#: Connections writing pages at once (each page's transaction is short; the API sets the pace).
POOL_SIZE = 4
RUN_LOCK_NS = LOCK_NS + 1
_WRITE = "store write failed"
_READ = "store read failed"
P = ParamSpec("P")
R = TypeVar("R")


def upsert_sql(t: TableDef, source: str) -> str:
    """Move `source`'s rows into `t`: new keys inserted, changed rows updated, unchanged ones left
    alone; the statement's one row is how many keys were new."""
    cols = t.column_names
    rest = [c for c in cols if c not in t.key]
    old, new = ", ".join(f"t.{c}" for c in rest), ", ".join(f"excluded.{c}" for c in rest)
    change = (f" DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)} "
              f"WHERE ({old}) IS DISTINCT FROM ({new})" if rest else " DO NOTHING")
    return (f"WITH up AS (INSERT INTO {t.name} AS t ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {source} "
            f"ON CONFLICT ({', '.join(t.key)}){change} RETURNING (xmax = 0) AS new) "
            "SELECT count(*) FILTER (WHERE new) FROM up")


def _dedupe(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """One row per key (the last one wins, as row-by-row upserts would), in key order: one statement
    may not touch a row twice, and every writer locks rows in the same order."""
    last = {r[:width]: r for r in rows}
    return [last[k] for k in sorted(last)]


def _check_can_write(db: psycopg.Connection, dsn: PgDsn) -> None:
    """Pages go in through temporary tables: a role without TEMPORARY on the database is refused in
    one line when the store opens, not once per series."""
    row = db.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY'), current_database()").fetchone()
    if row is not None and not row[0]:
        raise ConfigError(f"{dsn}: no permission: this role may not create temporary tables (GRANT TEMPORARY ON "
                          f"DATABASE {row[1]} TO it; see the README: privileges a PostgreSQL store needs)")


def _reconnecting(method: Callable[Concatenate[PostgresStore, P], R]) -> Callable[Concatenate[PostgresStore, P], R]:
    """The call again on fresh connections after its connection was lost (pg_guard.retrying): for
    methods whose transaction either committed or not and that may safely run twice."""
    @functools.wraps(method)
    def again(store: PostgresStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return retrying(lambda: method(store, *args, **kwargs), store._reconnects, store._pool.discard_idle)
        except StoreUnavailableError as exc:
            store._waits.down(exc)
            raise
    return again


class PostgresStore(SharedStore):
    """A PostgreSQL database (the current schema of its search_path); safe to share between threads.

    `readonly=True` (for `--dry-run`) never creates, migrates or writes: its session is read-only
    and a database no run has written yet reads as empty. Opening checks the schema: a newer,
    foreign or damaged one, or a database that holds other tables, is refused in one line; a
    writing open then grows it to the active catalogue (store/growth.py, pg_schema.bring_to_v3).
    `time_left` (seconds to the run's deadline, or None) bounds every call (store/waits.py);
    `sleep` is the pause before a reconnect (tests pass a recorder).
    """

    _d = POSTGRES

    def __init__(self, dsn: PgDsn, *, readonly: bool = False, time_left: TimeLeft | None = None,
                 sleep: Callable[[float], None] = cancel.sleep, clock: WallClock = wall_ms) -> None:
        self.dsn = dsn
        self._clock = clock  # now, in ms: run rows, coverage, stream liveness
        self.display = dsn.display
        self.readonly = readonly
        self._lock = threading.RLock()
        self._series_ids: dict[str, int] = {}
        self._met = {}
        self._run_id: int | None = None
        self._beat = 0
        self._waits = Waits(time_left)
        self._reconnects = Reconnects(self._waits.time_left, sleep)
        self._watchdog = Watchdog()
        self._pool = Pool(dsn, POOL_SIZE, self._watchdog, self._reconnects)
        self._main: psycopg.Connection | None = None
        try:
            with self._on_main("cannot open store", grace=True) as db:
                if readonly:
                    self._found = found_tables(db)
                    self._version = stored_version(db, self._found)
                    check(dsn, self._version, self._found)
                else:
                    _check_can_write(db, dsn)  # before anything is created
                    self._met_all()
                    bring_to_v3(db, dsn)
                    self._found = found_tables(db)
                    self._version = SCHEMA_VERSION
        except BaseException:
            self.close()
            raise

    def _grow(self) -> None:
        """Add the tables and views of layers that joined the catalogue since the store opened."""
        with self._on_main(_WRITE, grace=True) as db:
            bring_to_v3(db, self.dsn)
            self._found = found_tables(db)
        self._met_all()

    def close(self) -> None:
        with self._lock:
            self._pool.close()
            if self._main is not None:
                self._main.close()
        self._watchdog.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _on_main(self, doing: str, *, grace: bool = False) -> Iterator[psycopg.Connection]:
        """The main connection (reads, the runs row), live and bounded for one call, under the lock;
        `grace`: a moment past the deadline (not for a page; store/waits.py)."""
        def bound() -> Bound:  # taken once the lock is ours: the wait for it counts
            return self._waits.bound(f"{self.dsn}: {doing}", grace=grace)

        with self._lock:  # held by another call for at most its own limits
            db, limits = checked(self.dsn, self._main, bound, doing, self._watchdog,
                                 lambda limits: connect(self.dsn, bound=limits), self._reconnects)
            with self._watchdog.watching(db, limits) as cut, converting(self.dsn, doing, limits, cut):
                if db is not self._main:
                    self._main = db
                    self._session(db)
                yield db

    def _session(self, db: psycopg.Connection) -> None:
        """A new main connection: read-only for a read-only store; the run's lock taken again (the
        session that held it is gone, so another runner may find the run abandoned meanwhile)."""
        if self.readonly:
            db.execute("SET default_transaction_read_only = on")
        if self._run_id is not None:
            db.execute("SELECT pg_try_advisory_lock(%s, %s::int)", (RUN_LOCK_NS, self._run_id))

    def _reading(self) -> AbstractContextManager[psycopg.Connection]:
        return self._on_main(_READ, grace=True)

    @contextmanager
    def _on_pool(self, doing: str = _WRITE, *, grace: bool = False) -> Iterator[psycopg.Connection]:
        """A pooled connection, live and bounded for one call (see _on_main)."""
        def bound() -> Bound:
            return self._waits.bound(f"{self.dsn}: {doing}", grace=grace)

        with self._pool.connection(bound, doing) as (db, limits, cut), converting(self.dsn, doing, limits, cut):
            yield db

    @contextmanager
    def _tx(self, doing: str = _WRITE, *, grace: bool = False) -> Iterator[psycopg.Connection]:
        """One write transaction on a pooled connection (rolled back on any error)."""
        with self._on_pool(doing, grace=grace) as db, db.transaction():
            yield db

    # -- cursors ---------------------------------------------------------------------------

    @_reconnecting
    def cursor(self, series: str) -> int | None:
        """Open time of the series' last closed bar in the store, or None before the first run."""
        if self._version != SCHEMA_VERSION:
            return None
        with self._on_main(_READ) as db:  # a series' own read, before its pages: no grace past the deadline
            row = db.execute("SELECT c.last_closed FROM cursors c JOIN series s ON s.id = c.series "
                             "WHERE s.key = %s", (series,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # Reads, and writes that may run twice (a retire marks the same series again): tried again on a
    # fresh connection when the session ended between the connection's check and the statement.
    reset_cursor = _reconnecting(SharedStore.reset_cursor)
    coverage = _reconnecting(SharedStore.coverage)
    cursors = _reconnecting(SharedStore.cursors)
    positions = _reconnecting(SharedStore.positions)
    rows = _reconnecting(SharedStore.rows)
    count = _reconnecting(SharedStore.count)
    retire = _reconnecting(SharedStore.retire)

    def _columns_of(self, db: Any) -> dict[str, tuple[str, ...]]:
        return found_tables(db)

    # -- what else a command reads and writes: the analyst's connection, the stream ----------

    @contextmanager
    def reader(self) -> Iterator[psycopg.Connection]:
        """A DB-API connection for the analyst views: read-only, in a transaction (a named, streaming
        cursor needs one), without the store's call limits (an export may read for minutes)."""
        db = connect(self.dsn, autocommit=False)
        try:
            db.read_only = True
            yield db
        finally:
            db.close()

    def stream_sink(self) -> PgStreamStore:
        """Where `stream --store` writes: a connection of its own, which holds the stream run's lock."""
        return PgStreamStore(self.dsn, grown=True)

    def stream_liveness(self, *, now: float | None = None) -> dict[str, Any] | None:
        """Liveness of the most recent stream run (see stream_tables.latest_liveness); None when no
        stream has run here. A `running` row whose lock is free is a killed stream's (`abandoned`)."""
        if self._version != SCHEMA_VERSION:
            return None
        with self._reading() as db:
            row = stream_sql.last_run(db)
            gone = False
            if row is not None and row["status"] == "running":
                with db.transaction():
                    gone = lock_free(db, int(row["id"]))
        if row is None:
            return None
        try:
            return stream_sql.liveness(row, self._clock() / 1000 if now is None else now, 1000, gone=gone)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{self.dsn}: stream_runs row {row['id']} is not readable ({exc})") from None

    # -- writing ---------------------------------------------------------------------------

    def _series_id(self, ref: SeriesRef) -> int:
        """The series' integer id, its row added if new (by whichever runner comes first)."""
        sid = self._series_ids.get(ref.key)
        if sid is not None:
            return sid
        with self._on_pool() as db:
            row = db.execute(
                "INSERT INTO series (key, layer, coin, exchange, instrument, interval, params) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING id",
                (ref.key, ref.layer, ref.coin, ref.exchange, ref.instrument, ref.interval, ref.params)).fetchone()
            if row is None:
                row = db.execute("SELECT id FROM series WHERE key = %s", (ref.key,)).fetchone()
        sid = self._series_ids[ref.key] = int(row[0])  # type: ignore[index]
        return sid

    def _copy_in(self, db: psycopg.Connection, t: TableDef, rows: list[tuple[Any, ...]]) -> str:
        """COPY rows into this connection's temporary twin of `t` (emptied at each commit)."""
        temp = f"incoming_{t.name}"
        made = self._pool.temp_tables.setdefault(id(db), set())
        if temp not in made:
            db.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} (LIKE {t.name}) ON COMMIT DELETE ROWS")
            made.add(temp)
        with db.cursor().copy(f"COPY {temp} ({', '.join(t.column_names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return temp

    def _upsert(self, db: psycopg.Connection, t: TableDef, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        temp = self._copy_in(db, t, _dedupe(rows, len(t.key)))
        return int(db.execute(upsert_sql(t, temp)).fetchone()[0])  # type: ignore[index]

    @_reconnecting
    def write(self, page: Page) -> WriteResult:
        """Store a page's rows and move the series' cursor to `closed_upto` (never backwards), atomically.

        A windowed page also updates the series' coverage (spans held, holes found) in the same
        transaction, under the series' lock.
        """
        ls = spec(page.series.layer)
        sid = self._series_id(page.series)
        rows = [(sid, *r) for r in page.rows]
        times = [int(r[0]) for r in page.rows]
        now = self._clock()
        table = self._table_for(ls)
        detail = detail_table(ls)
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, %s::int)", (LOCK_NS, sid))
            new = self._upsert(db, table, rows)
            if page.detail and detail is not None:
                self._upsert(db, detail, [(sid, *d) for d in page.detail])
            if page.raw is not None:
                db.execute("INSERT INTO raw_pages (series, fetched_at, reason, body) VALUES (%s, %s, %s, %s) "
                           "ON CONFLICT (series, fetched_at, reason) DO UPDATE SET body = excluded.body",
                           (sid, now, page.raw_reason or "kept", page.raw))
            removed = 0
            if page.asked is not None:
                interval = page.series.interval
                removed = coverage.remove_stale(db, POSTGRES, table.name, sid, page, interval)
                coverage.record(db, POSTGRES, sid, page, interval_ms(interval), run=self._run_id, now=now)
            cursor = self._move_cursor(db, sid, page.closed_upto, times, now)
            if removed:  # stale rows went: the bounds are what is stored now
                db.execute(f"UPDATE cursors SET (earliest, latest) = (SELECT min(time), max(time) FROM {table.name} "
                           "WHERE series = %s) WHERE series = %s", (sid, sid))
            self._beat_in(db, now)
        return WriteResult(received=len(rows), new_rows=new, cursor=cursor, removed=removed)

    @staticmethod
    def _move_cursor(db: psycopg.Connection, sid: int, closed_upto: int | None, times: list[int],
                     now: int) -> int | None:
        if not times and closed_upto is None:
            row = db.execute("SELECT last_closed FROM cursors WHERE series = %s", (sid,)).fetchone()
            return None if row is None or row[0] is None else int(row[0])
        row = db.execute(
            "INSERT INTO cursors AS c (series, last_closed, earliest, latest, updated_at) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (series) DO UPDATE SET last_closed = GREATEST(c.last_closed, excluded.last_closed), "
            "earliest = LEAST(c.earliest, excluded.earliest), latest = GREATEST(c.latest, excluded.latest), "
            "updated_at = excluded.updated_at RETURNING last_closed",
            (sid, closed_upto, min(times, default=None), max(times, default=None), now)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, *, pid: int | None = None, now_ms: int | None = None, source: str | None = None) -> int:
        """Record a new run as `running` and hold its lock for as long as this store is open,
        after marking `running` rows whose lock is free (their process is gone) as `abandoned`."""
        now = self._clock() if now_ms is None else now_ms
        with self._on_main(_WRITE, grace=True) as db, db.transaction():
            running = [r[0] for r in db.execute("SELECT id FROM runs WHERE status = 'running' ORDER BY id")]
            for rid in running:
                if db.execute("SELECT pg_try_advisory_xact_lock(%s, %s::int)", (RUN_LOCK_NS, rid)).fetchone()[0]:  # type: ignore[index]
                    db.execute("UPDATE runs SET status = 'abandoned', ended_at = coalesce(heartbeat_at, started_at) "
                               "WHERE id = %s", (rid,))
            row = db.execute("INSERT INTO runs (started_at, status, pid, heartbeat_at, source) "
                             "VALUES (%s, 'running', %s, %s, %s) RETURNING id",
                             (now, os.getpid() if pid is None else pid, now, source)).fetchone()
            self._run_id = int(row[0])  # type: ignore[index]
            db.execute("SELECT pg_advisory_lock(%s, %s::int)", (RUN_LOCK_NS, self._run_id))
            self._beat = now
            return self._run_id

    def _beat_in(self, db: psycopg.Connection, now: int) -> None:
        if self._run_id is not None and now - self._beat >= HEARTBEAT_MS:
            self._beat = now
            db.execute("UPDATE runs SET heartbeat_at = %s WHERE id = %s", (now, self._run_id))

    @_reconnecting
    def heartbeat(self, run_id: int, *, now_ms: int | None = None) -> None:
        """Say the run is alive (writes refresh it too, every HEARTBEAT_MS)."""
        with self._tx(grace=True) as db:
            db.execute("UPDATE runs SET heartbeat_at = %s WHERE id = %s", (self._clock() if now_ms is None else now_ms,
                                                                          run_id))

    @_reconnecting
    def record_plan(self, run_id: int, plan: str, *, max_limit: int | None, now_ms: int | None = None) -> None:
        """Remember the key's plan (and its requests per minute, API-KEY-MAX-LIMIT) for the next runs."""
        with self._tx(grace=True) as db:
            db.execute("UPDATE runs SET plan = %s, plan_at = %s, max_limit = %s WHERE id = %s",
                       (plan, self._clock() if now_ms is None else now_ms, max_limit, run_id))

    @_reconnecting
    def sources(self) -> list[str]:
        """Every source whose data the runs and stream runs recorded ("emulator" or an API host), sorted."""
        if self._version != SCHEMA_VERSION:
            return []
        with self._reading() as db:
            found: set[str] = set()
            for table in ("runs", "stream_runs"):  # a v3 database from before they recorded it has no column
                if "source" in self._found.get(table, ()):
                    found |= {str(r[0]) for r in db.execute(f"SELECT DISTINCT source FROM {table} "
                                                            "WHERE source IS NOT NULL")}
            return sorted(found)

    @_reconnecting
    def known_plan(self) -> KnownPlan | None:
        """The plan the latest run recorded, or None."""
        if self._version != SCHEMA_VERSION:
            return None
        with self._reading() as db:
            row = db.execute("SELECT plan, plan_at, max_limit FROM runs WHERE plan IS NOT NULL "
                             "ORDER BY plan_at DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else KnownPlan(str(row[0]), int(row[1]), None if row[2] is None else int(row[2]))

    @_reconnecting
    def finish_run(self, run_id: int, *, exit_code: int | None, totals: dict[str, Any],
                   outcomes: dict[str, Any], status: str = "finished") -> None:
        """Close a run's row: `finished`, or `interrupted` (Ctrl-C) / `crashed` (a program error)."""
        with self._on_main(_WRITE, grace=True) as db:
            with db.transaction():
                db.execute(
                    "UPDATE runs SET ended_at = %s, exit_code = %s, requests = %s, retries = %s, rate_limited = %s, "
                    "rate_wait_seconds = %s, outcomes = %s, status = %s WHERE id = %s",
                    (self._clock(), exit_code, int(totals.get("requests", 0)), int(totals.get("retries", 0)),
                     int(totals.get("rate_limited", 0)), float(totals.get("rate_wait_seconds", 0.0)),
                     json.dumps(outcomes, sort_keys=True), status, run_id))
            if run_id == self._run_id:
                db.execute("SELECT pg_advisory_unlock(%s, %s::int)", (RUN_LOCK_NS, run_id))
                self._run_id = None

    @_reconnecting
    def set_exit_code(self, run_id: int, exit_code: int) -> None:
        """The process's exit code, when it differs from the run's (a metrics file not written: 2)."""
        with self._on_main(_WRITE, grace=True) as db, db.transaction():
            db.execute("UPDATE runs SET exit_code = %s WHERE id = %s", (exit_code, run_id))

    @_reconnecting
    def runs(self) -> list[dict[str, Any]]:
        if self._version != SCHEMA_VERSION:
            return []
        with self._reading() as db:
            cur = db.execute("SELECT * FROM runs ORDER BY id")
            names = [d.name for d in cur.description or ()]
            out = [dict(zip(names, r, strict=True)) for r in cur]
        for r in out:
            r["outcomes"] = json.loads(r["outcomes"]) if r["outcomes"] else None
        return out
