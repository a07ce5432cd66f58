"""Schema v3 in a PostgreSQL database: the version, the open-time check, growth, TimescaleDB.

The tables and views are store/schema.py's, rendered in PostgreSQL's dialect, so a database
holds what the SQLite file holds under the same names; what a writing open adds is
store/growth.py's plan. The version lives in `cgpreset_meta` (SQLite keeps it in
`user_version`), with a digest of each view's SQL. Creating or growing the schema is one
transaction under an advisory lock: several runners opening a new database (or meeting a new
layer) at once create it once, and a failure (no permission, a foreign table in the way) leaves
the database as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import psycopg

from cgpreset.errors import ConfigError
from cgpreset.layers import catalogue
from cgpreset.store import growth
from cgpreset.store.coverage import fill_statements
from cgpreset.store.dialect import POSTGRES
from cgpreset.store.dsn import PgDsn
from cgpreset.store.schema import BASE_TABLES, SCHEMA_VERSION, ViewDef, layer_tables, views

META = "cgpreset_meta"
#: First key of every advisory lock cgpreset takes (the second names what is locked).
LOCK_NS = 0x63677072  # "cgpr"
SCHEMA_LOCK = 0
#: Chunk of a TimescaleDB hypertable on `time` (ms): 30 days.
CHUNK_MS = 30 * 86_400_000

#: Schema version -> the step that brings a database from it to the next version. PostgreSQL
#: stores begin at v3, and a layer never bumps it; a future v4 adds `3: _v3_to_v4` here.
MIGRATIONS: dict[int, Callable[[psycopg.Connection], None]] = {}


def cgpreset_names() -> frozenset[str]:
    """Every table and view name cgpreset may have made in a database, for the active catalogue."""
    layer = {t.name for ls in catalogue().values() for t in layer_tables(ls)}
    return frozenset({META, *(t.name for t in BASE_TABLES), *layer, *(v.name for v in views(catalogue()))})


def hypertable_sql(table: str) -> str:
    """TimescaleDB: a layer (or detail) table as a hypertable on `time` (ms, integer)."""
    return (f"SELECT create_hypertable('{table}', 'time', chunk_time_interval => {CHUNK_MS}::bigint, "
            "if_not_exists => TRUE, migrate_data => TRUE)")


def has_timescaledb(db: psycopg.Connection) -> bool:
    """The extension is installed in this database (cgpreset never installs it: that takes a superuser)."""
    return db.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def found_tables(db: psycopg.Connection) -> dict[str, tuple[str, ...]]:
    """Tables and views of the current schema (the first of search_path) with their columns, in order."""
    found: dict[str, list[str]] = {}
    for table, column in db.execute(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'p', 'm', 'f') "
            "ORDER BY c.relname, a.attnum"):
        found.setdefault(table, []).append(column)
    return {k: tuple(v) for k, v in found.items()}


def stored_version(db: psycopg.Connection, found: dict[str, tuple[str, ...]]) -> int:
    """The database's schema version (0: cgpreset has not written it)."""
    if META not in found:
        return 0
    row = db.execute(f"SELECT value FROM {META} WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except ValueError:
        return -1


def check(dsn: PgDsn, version: int, found: dict[str, tuple[str, ...]]) -> None:
    """Refuse, in one line: a newer schema, a database holding other tables, a base table missing
    or without its columns, a layer table without its key (store/growth.py problems). Tables a
    versioned store holds besides cgpreset's (a newer catalogue's layers included) are left alone."""
    if version > SCHEMA_VERSION:
        raise ConfigError(f"{dsn}: written by a newer cgpreset (schema v{version}; this one reads up to "
                          f"v{SCHEMA_VERSION})")
    if version < 0 or (0 < version < SCHEMA_VERSION and version not in MIGRATIONS):
        raise ConfigError(f"{dsn}: not a cgpreset store (schema v{version})")
    if version == 0 and found:
        others = sorted(found.keys() - cgpreset_names()) or sorted(found)
        raise ConfigError(f"{dsn}: the database holds other tables ({', '.join(others[:5])}"
                          f"{', …' if others[5:] else ''}); give cgpreset a database or schema of its own "
                          "(see the README: a PostgreSQL store)")
    if version == SCHEMA_VERSION and (problems := growth.problems(found, catalogue())):
        raise ConfigError(f"{dsn}: not a cgpreset store ({'; '.join(problems[:3])})")


def bring_to_v3(db: psycopg.Connection, dsn: PgDsn) -> None:
    """Create, migrate or grow the schema to the active catalogue and check the result, in one
    transaction under the schema lock."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NS, SCHEMA_LOCK))
        found = found_tables(db)  # again, under the lock: another runner may have just created it
        version = stored_version(db, found)
        check(dsn, version, found)
        for v in range(version, SCHEMA_VERSION) if version else ():
            MIGRATIONS[v](db)
        if version != SCHEMA_VERSION:
            db.execute(f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(f"INSERT INTO {META} (key, value) VALUES ('schema_version', %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
            found = found_tables(db)
        _grow(db, found)
        check(dsn, SCHEMA_VERSION, found_tables(db))


def _grow(db: psycopg.Connection, found: dict[str, tuple[str, ...]]) -> None:
    """store/growth.py's plan, inside the caller's transaction: tables (hypertables with
    TimescaleDB), columns, `coverage` filled for a store of the release before it, then views."""
    plan = growth.plan(found, catalogue(), POSTGRES)
    for statement in plan.statements:
        db.execute(statement)
    if plan.created and has_timescaledb(db):
        for table in plan.created:
            db.execute(hypertable_sql(table))
    for statement in fill_statements(plan.fill_from or ()):
        db.execute(statement)
    _refresh_views(db, plan.views, found)


def _digest(select: str) -> str:
    return hashlib.sha256(select.encode()).hexdigest()[:16]


def _refresh_views(db: psycopg.Connection, wanted: tuple[ViewDef, ...], found: dict[str, tuple[str, ...]]) -> None:
    """Views made, or those of another release replaced by today's; `cgpreset_meta` keeps a digest
    of each view's SQL, so an unchanged view is not touched. A view whose columns only grew at the
    end is replaced in place (its GRANTs stay); one whose columns changed otherwise is dropped and
    made again (GRANT SELECT on it again: see the README)."""
    stored: dict[str, str] = dict(db.execute(f"SELECT key, value FROM {META} WHERE key LIKE %s",
                                             ("view:%",)).fetchall())
    for view in wanted:
        select = POSTGRES.select(view)
        digest = _digest(select)
        if view.name in found and stored.get(f"view:{view.name}") == digest:
            continue
        before = found.get(view.name, ())
        if view.column_names[:len(before)] != before:
            db.execute(f"DROP VIEW IF EXISTS {view.name}")
        db.execute(f"CREATE OR REPLACE VIEW {view.name} AS {select}")
        db.execute(f"INSERT INTO {META} (key, value) VALUES (%s, %s) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (f"view:{view.name}", digest))
    db.execute(f"DELETE FROM {META} WHERE key = 'views'")  # one digest of every view, before views grew apart
