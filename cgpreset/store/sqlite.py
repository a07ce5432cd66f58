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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgpreset.errors import ConfigError

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

#: The tables `cgpreset stream --store` adds to the same file (created by stream_store.connect).
#: They carry no version of their own: the file's `user_version` is the run schema's.
STREAM_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_events (
    kind        TEXT    NOT NULL,
    exchange    TEXT    NOT NULL,
    symbol      TEXT    NOT NULL,
    time_ms     INTEGER NOT NULL,
    side_raw    TEXT    NOT NULL,
    price       REAL    NOT NULL,
    volume_usd  REAL    NOT NULL,
    base_asset  TEXT    NOT NULL,
    side        TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    run_id      INTEGER,
    received_at REAL    NOT NULL,
    PRIMARY KEY (kind, exchange, symbol, time_ms, side_raw, price, volume_usd)
);
CREATE INDEX IF NOT EXISTS stream_events_coin_time ON stream_events (base_asset, time_ms);
CREATE TABLE IF NOT EXISTS stream_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at        REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    ended_at          REAL,
    status            TEXT    NOT NULL,
    stop_reason       TEXT,
    url               TEXT    NOT NULL,
    channels          TEXT    NOT NULL,
    coins             TEXT,
    events            INTEGER NOT NULL DEFAULT 0,
    events_per_minute REAL    NOT NULL DEFAULT 0,
    reconnects        INTEGER NOT NULL DEFAULT 0,
    pings_sent        INTEGER NOT NULL DEFAULT 0,
    pongs_received    INTEGER NOT NULL DEFAULT 0,
    last_event_at     REAL,
    summary           TEXT    NOT NULL DEFAULT '{}'
);
"""


def _user_tables(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Every table and view of a database (SQLite's own excluded) with its column names."""
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    )]
    return {n: tuple(r[0] for r in db.execute("SELECT name FROM pragma_table_info(?)", (n,))) for n in names}


def _columns(schema: str) -> dict[str, tuple[str, ...]]:
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(schema)
        return _user_tables(db)
    finally:
        db.close()


#: What each schema version's tables hold (columns, by name); v0 is a file no run has written yet.
RUN_TABLES = _columns(_SCHEMA)
_RUN_TABLES_AT = {
    0: RUN_TABLES,
    1: {**RUN_TABLES, "runs": tuple(c for c in RUN_TABLES["runs"] if c != "status")},
    2: RUN_TABLES,
}
STREAM_TABLES = _columns(STREAM_SCHEMA)

# -- one way to turn what SQLite says about a file into one line -----------------------------

_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def store_error(path: Path, exc: sqlite3.Error, doing: str) -> ConfigError:
    """One line naming the file: not a database, damaged, or `doing` failed (locked, no permission...)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # extended codes keep the primary in the low byte
    text = str(exc)
    if code == _SQLITE_NOTADB or "not a database" in text:
        return ConfigError(f"{path}: not a cgpreset store ({text})")
    if code == _SQLITE_CORRUPT or "malformed" in text:
        return ConfigError(f"{path}: store is damaged ({text})")
    return ConfigError(f"{path}: {doing}: {text}")


@contextmanager
def converting(path: Path, doing: str) -> Iterator[None]:
    """Every store access runs inside this: an SQLite error, or stored JSON that no longer parses,
    leaves as a one-line ConfigError naming the file, never as a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(path, exc, doing) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: store is damaged (a stored JSON value does not parse: {exc})") from None


def check_path(path: Path) -> None:
    """Refuse a directory; create a missing parent folder (one line if that fails)."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the store's folder: {exc.strerror or exc}") from None


def check_store(db: sqlite3.Connection, path: Path) -> tuple[int, dict[str, tuple[str, ...]]]:
    """Check an open file's schema before anything reads or writes it. Returns (schema version,
    tables). Reads only the schema; call it inside `converting`.

    Refused, each as one ConfigError line: a file of a newer cgpreset (its `user_version` above
    SCHEMA_VERSION); a foreign file (a cgpreset table without the columns of its version, a
    versioned file without the run tables, or an unversioned one with tables but none of
    cgpreset's). No integrity scan here: it would read the whole file on every open (about 1 s
    per GB); damage is reported, as "store is damaged", by the first read or write that meets it.
    """
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    check_version(path, version)
    return version, check_tables(path, version, _user_tables(db))


def check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise ConfigError(f"{path}: written by a newer cgpreset (schema v{version}; this one reads up to "
                          f"v{SCHEMA_VERSION})")
    if version not in _RUN_TABLES_AT:  # negative: no cgpreset writes that
        raise ConfigError(f"{path}: not a cgpreset store (schema v{version})")


def check_tables(path: Path, version: int, found: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The schema half of `check_store`: `found` tables against what `version` promises."""
    expected: Mapping[str, tuple[str, ...]] = {**_RUN_TABLES_AT[version], **STREAM_TABLES}
    problems = []
    if version >= 1:
        absent = [t for t in RUN_TABLES if t not in found]
        if absent:
            problems.append(f"schema v{version} without table {', '.join(absent)}")
    elif found and not found.keys() & expected.keys():
        problems.append(f"none of its tables is cgpreset's: {', '.join(sorted(found)[:5])}")
    for table, columns in expected.items():
        missing = [c for c in columns if table in found and c not in found[table]]
        if missing:
            problems.append(f"table {table} has no column {', '.join(missing[:3])}{', …' if missing[3:] else ''}")
    if problems:
        raise ConfigError(f"{path}: not a cgpreset store ({'; '.join(problems)})")
    return found


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

    Opening checks the file (`check_store`): a damaged, foreign or newer store is refused before
    anything is read or written, in every mode. Every method runs inside `_db_for`, so whatever
    SQLite reports later (a page damaged after opening, a lock held too long) is one ConfigError
    line naming the file too.
    """

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._absent: frozenset[str] = frozenset()  # run tables a read-only, never-written file lacks
        if not readonly:
            check_path(self.path)
        with converting(self.path, "cannot open store"):
            self._db = self._connect()
        try:
            with converting(self.path, "cannot open store"):
                self._db.row_factory = sqlite3.Row
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                _, found = check_store(self._db, self.path)  # before WAL or migration touch a foreign file
                if readonly:
                    self._absent = frozenset(RUN_TABLES) - found.keys()
                else:
                    self._db.execute("PRAGMA journal_mode = WAL")
                    self._db.execute("PRAGMA synchronous = NORMAL")
                    self._migrate()
        except BaseException:
            self._db.close()
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

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION and check the result, in one transaction: a file that
        fails the check is left as it was."""
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])  # another process may have moved it
            check_version(self.path, version)
            if version < 1:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            elif version < 2:  # v1 -> v2: runs.status
                db.execute("ALTER TABLE runs ADD COLUMN status TEXT")
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            check_tables(self.path, SCHEMA_VERSION, _user_tables(db))

    @contextmanager
    def _db_for(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite errors turned into one ConfigError line."""
        with self._lock, converting(self.path, doing):
            yield self._db

    def _reading(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db_for("store read failed")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front (waits busy_timeout)."""
        with self._lock:
            with self._db_for("store not writable") as db:  # e.g. locked longer than busy_timeout
                db.execute("BEGIN IMMEDIATE")
            try:
                with self._db_for("store write failed") as db:
                    yield db
                    db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with suppress(sqlite3.Error):  # a damaged file may refuse even this; the error above says why
                        self._db.execute("ROLLBACK")
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
        if "cursors" in self._absent:
            return None
        with self._reading() as db:
            row = db.execute("SELECT last_closed FROM cursors WHERE series = ?", (series,)).fetchone()
        return None if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        if "cursors" in self._absent:  # a file no run has written yet (read-only: not migrated)
            return {}
        with self._reading() as db:
            return {r[0]: int(r[1]) for r in db.execute("SELECT series, last_closed FROM cursors")}

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
        if "bars" in self._absent:
            return []
        with self._reading() as db:
            out = []
            for r in db.execute("SELECT * FROM bars WHERE series = ? ORDER BY time, instrument", (series,)):
                d = dict(r)
                d["payload"] = json.loads(d["payload"])
                out.append(d)
        return out

    def count(self, series: str | None = None) -> int:
        if "bars" in self._absent:
            return 0
        with self._reading() as db:
            if series is None:
                return int(db.execute("SELECT count(*) FROM bars").fetchone()[0])
            return int(db.execute("SELECT count(*) FROM bars WHERE series = ?", (series,)).fetchone()[0])

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
        if "runs" in self._absent:
            return []
        with self._reading() as db:
            out = [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY id")]
            for r in out:
                r["outcomes"] = json.loads(r["outcomes"]) if r["outcomes"] else None
        return out
