"""Open a store for reading its analyst views: a DB-API connection, whatever the backend.

`store` may be a path (an SQLite file, opened read-only: reading never creates or changes it), a
`postgresql://` URL (a read-only transaction), or an already open DB-API connection (sqlite3,
psycopg), which is used as it is and left open. The connection is the store's own
(`Store.reader()`): a damaged, foreign or newer store is refused in one line before any read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cgpreset.errors import ConfigError
from cgpreset.redact import redact
from cgpreset.store import open_store
from cgpreset.store.dsn import PgDsn, display, store_location


def is_db_error(exc: BaseException) -> bool:
    """A driver error (sqlite3's or psycopg's, without importing psycopg): the store cannot be read."""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.split(".")[0] in ("psycopg", "psycopg2")


@contextmanager
def connect(store: Any) -> Iterator[Any]:
    """A DB-API connection to `store` for the duration of the block (closed after, if opened here)."""
    if isinstance(store, (str, Path, PgDsn)):
        location = store if isinstance(store, PgDsn) else store_location(store)
        with open_store(location, readonly=True) as opened, opened.reader() as db, \
                reading(display(location), location.password if isinstance(location, PgDsn) else None):
            yield db
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
            text += " (no run has stored it yet: `cgpreset run-preset` adds a layer's table and view)"
        raise ConfigError(f"store {label}: {text}") from None
