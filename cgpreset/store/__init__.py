"""The store: schema v3 behind one interface, on SQLite (a file) or PostgreSQL (a server).

    from cgpreset.store import open_store
    with open_store("cgpreset.db") as store:          # or "postgresql://user@host/db"
        store.cursors()                              # {series key: last closed bar (ms)}

`open_store(target, *, readonly=False, time_left=None)` returns a `Store` (store/base.py), which
is everything a command needs: `write(Page)` stores one answer's rows with its series' cursor in
one transaction; `cursor`/`cursors`/`positions`/`coverage` say where each series stands;
`rows`/`count` read back; `start_run`/`heartbeat`/`record_plan`/`finish_run`/`runs`/`known_plan`
keep the runs table; `reader()` is a DB-API connection to the analyst views; `stream_sink()` is
where `stream --store` writes, `stream_liveness()` what `health` and `stream-alive` read.

The schema is data (store/schema.py): the base tables (`series`, cursors, coverage, holes, runs,
raw_pages, the stream tables), one table per layer of the catalogue (`data_<layer>`, keyed by
series and time), a view per layer named after it and `liquidation_events`. A writing open adds
the tables and views of layers the store has not met (store/growth.py): no layer added later is
a version bump. Times are ms since the epoch (UTC). Modules outside the store import only this
package, store.base (the values) and store.dsn (where a store is): never a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cgpreset.clock import WallClock, wall_ms
from cgpreset.store.base import Cursor, KnownPlan, Page, SeriesRef, Store, StreamSink, WriteResult
from cgpreset.store.dsn import PgDsn, StoreLocation, store_location

__all__ = ["Cursor", "KnownPlan", "Page", "SeriesRef", "Store", "StreamSink", "WriteResult", "open_store",
           "stream_liveness"]


def open_store(target: str | Path | StoreLocation, *, readonly: bool = False,
               time_left: Callable[[], float | None] | None = None, clock: WallClock = wall_ms) -> Store:
    """The store at `target`: an SQLite file path, or a `postgresql://` URL (PgDsn).

    `time_left`: seconds to the caller's deadline (None: none), e.g. `Budget.time_left`; every wait
    of the store (a lock, a statement, a reconnect) ends by then (store/waits.py). A read-only
    open of an SQLite file that does not exist is one ConfigError line ("no such store").
    `clock`: now in ms (cgpreset/clock.py), for what the store stamps (run rows, coverage, liveness).
    """
    location = target if isinstance(target, PgDsn) else store_location(target)
    if isinstance(location, PgDsn):
        from cgpreset.store.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        store: Store = PostgresStore(location, readonly=readonly, time_left=time_left, clock=clock)
        return store
    from cgpreset.store.sqlite import SQLiteStore

    return SQLiteStore(location, readonly=readonly, time_left=time_left, clock=clock)


def stream_liveness(target: str | Path | StoreLocation, *, now: float | None = None) -> dict[str, Any] | None:
    """The latest stream run's liveness in the store at `target` (read-only); None when no stream
    has written there, or there is no SQLite file yet (a read never creates one)."""
    location = target if isinstance(target, PgDsn) else store_location(target)
    if isinstance(location, Path) and not location.is_dir() and not location.exists():
        return None
    with open_store(location, readonly=True) as store:
        return store.stream_liveness(now=now)

