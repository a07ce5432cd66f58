"""Open a store for reading its analyst views: a DB-API connection, whatever the backend.

`store` may be a path (an SQLite file, opened read-only: reading never creates or changes it), a
`postgresql://` URL (a read-only transaction), or an already open DB-API connection (sqlite3,
psycopg), which is used as it is and left open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cgpreset.errors import ConfigError
from cgpreset.redact import redact
from cgpreset.store.dsn import PgDsn, display, store_location


def is_db_error(exc: BaseException) -> bool:
    """A driver error (sqlite3's or psycopg's, without importing psycopg): the store cannot be read."""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.split(".")[0] in ("psycopg", "psycopg2")


def _open_sqlite(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise ConfigError(f"{path}: no such store (no run has written it yet)")
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a cgpreset store")
    try:
        db = sqlite3.connect(f"file:{quote(path.resolve().as_posix())}?mode=ro", uri=True, check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: not a cgpreset store ({exc})") from None
    return db


@contextmanager
def connect(store: Any) -> Iterator[Any]:
    """A DB-API connection to `store` for the duration of the block (closed after, if opened here)."""
    if isinstance(store, (str, Path, PgDsn)):
        location = store if isinstance(store, PgDsn) else store_location(store)
        db = _open_pg(location) if isinstance(location, PgDsn) else _open_sqlite(location)
        try:
            with reading(display(location), location.password if isinstance(location, PgDsn) else None):
                yield db
        finally:
            db.close()
        return
    if hasattr(store, "cursor") and callable(store.cursor):
        with reading("the store"):
            yield store
        return
    raise ConfigError(f"not a store: {type(store).__name__} (expected a path or a DB-API connection)")


def label(store: Any) -> str:
    """How messages and reports name `store` (a PostgreSQL URL without its password)."""
    if isinstance(store, PgDsn):
        return store.display
    if isinstance(store, (str, Path)):
        return display(store_location(store))
    return "the store"


def _open_pg(dsn: PgDsn) -> Any:
    from cgpreset.store.pg_connect import connect as pg_connect

    db = pg_connect(dsn, autocommit=False)  # a transaction: a named (streaming) cursor needs one
    db.read_only = True
    return db


@contextmanager
def reading(label: str, secret: str | None = None) -> Iterator[None]:
    """Driver errors inside the block become one ConfigError line naming the store."""
    try:
        yield
    except Exception as exc:
        if not is_db_error(exc):
            raise
        text = redact(" ".join(str(exc).split()), secret)
        if "no such table" in text or "does not exist" in text:
            text += " (written by an older cgpreset? `cgpreset run-preset` migrates it)"
        raise ConfigError(f"store {label}: {text}") from None
