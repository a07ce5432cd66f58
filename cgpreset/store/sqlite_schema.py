"""The SQLite file itself: schema v3's DDL, the open-time checks, migration, one-line errors, the write lock.

Shared by the run store (sqlite.py) and the stream tables (stream_tables.py), so one check knows
the whole file: a damaged, foreign or newer file is refused the same way by every command.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cgpreset.api import cancel
from cgpreset.errors import CgPresetError, ConfigError, StoreUnavailableError
from cgpreset.layers import catalogue
from cgpreset.store import growth
from cgpreset.store.coverage import fill_statements
from cgpreset.store.dialect import SQLITE
from cgpreset.store.migrate import LEGACY_SCHEMA, LEGACY_STREAM_SCHEMA, migrate
from cgpreset.store.schema import LATE_COLUMNS, RUN_BASE, SCHEMA_VERSION, STREAM_TABLES
from cgpreset.store.waits import Bound

#: Longest wait for another process's write lock (a run's page holds it for milliseconds).
BUSY_TIMEOUT_MS = 30_000
#: The write lock is waited for in slices this long, so a stop signal and the deadline are seen
#: between them (SQLite's own wait cannot be interrupted).
LOCK_SLICE_S = 0.1
#: Longest the open-time integrity check reads (at about 3.3 ms per MB, a file up to some 300 MB
#: is checked whole; a larger one in part, from its first table on).
INTACT_CHECK_S = 1.0


def user_tables(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Every table and view of a database (SQLite's own excluded) with its column names."""
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    )]
    return {n: tuple(r[0] for r in db.execute("SELECT name FROM pragma_table_info(?)", (n,))) for n in names}


def _columns(script: str) -> dict[str, tuple[str, ...]]:
    db = sqlite3.connect(":memory:")
    try:
        for statement in (s for s in script.split(";") if s.strip()):
            db.execute(statement)
        return user_tables(db)
    finally:
        db.close()


_LEGACY = _columns(LEGACY_SCHEMA)
LEGACY_STREAM_TABLES = _columns(LEGACY_STREAM_SCHEMA)
#: What the run tables of each schema version before v3 hold (columns, by name); v0 is a file no
#: run has written. A v3 store is checked by store/growth.py (base tables, and its layer tables).
_RUN_TABLES_AT: dict[int, dict[str, tuple[str, ...]]] = {
    0: {},
    1: {**_LEGACY, "runs": tuple(c for c in _LEGACY["runs"] if c != "status")},
    2: _LEGACY,
    3: {t.name: t.column_names for t in RUN_BASE},
}
STREAM_TABLE_NAMES = tuple(t.name for t in STREAM_TABLES)

# -- one way to turn what SQLite says about a file into one line -----------------------------

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_INTERRUPT, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 5, 6, 9, 11, 13, 26


def _code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code (extended codes keep it in the low byte); 0 before Python 3.11."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock this one waited for (SQLITE_BUSY, SQLITE_LOCKED)."""
    return _code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED) or "database is locked" in str(exc)


def store_error(path: Path, exc: sqlite3.Error, doing: str) -> CgPresetError:
    """One line naming the file: not a database, damaged, or `doing` failed. A full disk, or a lock
    held past the wait allowed, passes (StoreUnavailableError, exit 75); the rest (no permission, a
    read-only file, an I/O error) needs someone to act (ConfigError, exit 2)."""
    code, text = _code(exc), str(exc)
    if code == _SQLITE_NOTADB or "not a database" in text:
        return ConfigError(f"{path}: not a cgpreset store ({text})")
    if code == _SQLITE_CORRUPT or "malformed" in text:
        return ConfigError(f"{path}: store is damaged ({text})")
    if code == _SQLITE_FULL or "database or disk is full" in text:
        return StoreUnavailableError(f"{path}: {doing}: {text} (retry when there is room)")
    if is_busy(exc):
        return StoreUnavailableError(f"{path}: {doing}: {text} (another process holds it: retry later)")
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


def begin_immediate(db: sqlite3.Connection, path: Path, bound: Bound) -> None:
    """BEGIN IMMEDIATE: take the write lock, waiting for another writer at most `bound.lock_s`.

    The wait is cut into LOCK_SLICE_S slices of SQLite's busy timeout, so that a stop signal
    (CANCEL, or the main thread's signal handler, which runs between slices) ends it within one.
    Past the limit: DeadlineExceededError when the run's deadline set it, else StoreUnavailableError.
    """
    until = time.monotonic() + bound.lock_s
    try:
        while True:
            left = until - time.monotonic()
            db.execute(f"PRAGMA busy_timeout = {max(0, round(min(left, LOCK_SLICE_S) * 1000))}")
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                cancel.check(str(path))
                if time.monotonic() >= until:
                    raise bound.timed_out(f"{path}: store not writable", "waiting for another process's write lock",
                                          lock=True) from None
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # reads (rarely) wait too, not in slices


def check_intact(db: sqlite3.Connection, path: Path, budget_s: float) -> None:
    """PRAGMA quick_check before a writing open changes anything, so a damaged file is refused
    before a run writes into it (and spreads the damage), not found by a later export.

    It reads the whole file (about 3.3 ms per MB on a warm cache): bounded by `budget_s`, after which
    a larger file counts as checked in part. Call it inside `converting` (damage the check itself
    trips over is "store is damaged" too).
    """
    timer = threading.Timer(max(0.0, budget_s), db.interrupt)  # quick_check ignores the progress handler
    timer.start()
    try:
        found = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.OperationalError as exc:
        if _code(exc) != _SQLITE_INTERRUPT and "interrupted" not in str(exc):
            raise
        return  # out of time: what was read is intact
    finally:
        timer.cancel()
        timer.join()
    lines = [ln for ln in str(found[0] if found else "ok").splitlines() if not ln.startswith("*** in database")]
    if lines != ["ok"]:
        raise ConfigError(f"{path}: store is damaged (quick_check: {' '.join(' '.join(lines).split())[:200]})")


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
    cgpreset's). No integrity scan here (a read-only open need not pay for one): writing opens add
    `check_intact`; other damage is reported, as "store is damaged", by the first read that meets it.
    """
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    check_version(path, version)
    return version, check_tables(path, version, user_tables(db))


def check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise ConfigError(f"{path}: written by a newer cgpreset (schema v{version}; this one reads up to "
                          f"v{SCHEMA_VERSION})")
    if version not in _RUN_TABLES_AT:  # negative: no cgpreset writes that
        raise ConfigError(f"{path}: not a cgpreset store (schema v{version})")


def check_tables(path: Path, version: int, found: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The schema half of `check_store`: `found` tables against what `version` promises."""
    problems = growth.problems(found, catalogue()) if version == SCHEMA_VERSION else _legacy_problems(version, found)
    if problems:
        raise ConfigError(f"{path}: not a cgpreset store ({'; '.join(problems)})")
    return found


def _legacy_problems(version: int, found: dict[str, tuple[str, ...]]) -> list[str]:
    """What a file of schema v0-v2 (migrated to v3 by a writing open) lacks of its version."""
    run_tables = {k: v for k, v in _RUN_TABLES_AT[version].items() if k not in STREAM_TABLE_NAMES}
    expected: Mapping[str, tuple[str, ...]] = {**run_tables, **LEGACY_STREAM_TABLES}
    problems = []
    if version >= 1:
        absent = [t for t in run_tables if t not in found]
        if absent:
            problems.append(f"schema v{version} without table {', '.join(absent)}")
    else:  # an unversioned file holds at most v2's stream tables, or v2's run tables half-made
        if found and not found.keys() & {*expected, *_LEGACY}:
            problems.append(f"none of its tables is cgpreset's: {', '.join(sorted(found)[:5])}")
        expected = {**_LEGACY, **LEGACY_STREAM_TABLES}
    for table, columns in expected.items():
        missing = [c for c in columns if table in found and c not in found[table]
                   and c not in LATE_COLUMNS.get(table, ())]
        if missing:
            problems.append(f"table {table} has no column {', '.join(missing[:3])}{', …' if missing[3:] else ''}")
    return problems


def bring_to_v3(db: sqlite3.Connection, path: Path) -> dict[str, tuple[str, ...]]:
    """Create or migrate the schema to v3, check it, and grow it to the active catalogue, in one
    transaction (the caller's, already begun): a file that fails the check is left as it was.
    Returns the tables and views it holds now."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])  # another process may have moved it
    check_version(path, version)
    if version < SCHEMA_VERSION:
        migrate(db, version, set(user_tables(db)), growth.plan({}, catalogue(), SQLITE).statements)
    return grow(db, path)


def grow(db: sqlite3.Connection, path: Path) -> dict[str, tuple[str, ...]]:
    """Add what a v3 file lacks for the active catalogue (store/growth.py), inside the caller's
    transaction, after checking what it holds. Views whose SQL differs from today's are made
    again (an SQLite view holds no grants). Returns the tables and views it holds now."""
    found = check_tables(path, SCHEMA_VERSION, user_tables(db))
    plan = growth.plan(found, catalogue(), SQLITE)
    for statement in plan.statements:
        db.execute(statement)
    for statement in fill_statements(plan.fill_from or ()):
        db.execute(statement)
    current = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    for view in plan.views:
        select = SQLITE.select(view)
        if not str(current.get(view.name) or "").endswith(select):
            db.execute(f"DROP VIEW IF EXISTS {view.name}")
            db.execute(f"CREATE VIEW {view.name} AS {select}")
        plan.columns[view.name] = view.column_names
    return plan.columns
