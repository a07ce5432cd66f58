"""The store: schema v3 behind one interface, SQLite the embedded backend (PostgreSQL next).

    from cgpreset.store import open_store
    with open_store("cgpreset.db") as store:          # or "postgresql://user@host/db"
        store.cursors()                              # {series key: last closed bar (ms)}

`open_store(target, *, readonly=False, time_left=None)` returns a `Store` (store/base.py):
`write(Page)` stores one answer's rows with its series' cursor in one transaction; `cursor`/`cursors`/`positions`
say where each series stands (last closed bar, oldest and newest bar stored); `rows`/`count`
read back; `start_run`/`heartbeat`/`record_plan`/`finish_run`/`runs`/`known_plan` keep the
runs table. The schema is data in store/schema.py: the `series` table, one table per layer
(`data_<layer>`, keyed by series and time; REAL values; `closed`), cursors, runs, raw_pages,
the stream tables, and the analyst views `funding`, `open_interest`, `liquidation`,
`taker_volume`, `liquidation_exchanges`, `etf_flows`, `etf_flows_by_ticker`, whose SQL
(`schema.view_sql(ts_template)`) every backend creates. Times are ms since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cgpreset.store.base import Cursor, KnownPlan, Page, SeriesRef, Store, StreamSink, WriteResult
from cgpreset.store.dsn import PgDsn, StoreLocation, store_location

__all__ = ["Cursor", "KnownPlan", "Page", "SeriesRef", "Store", "StreamSink", "WriteResult", "open_store",
           "open_stream_store"]


def open_store(target: str | Path | StoreLocation, *, readonly: bool = False,
               time_left: Callable[[], float | None] | None = None) -> Store:
    """The store at `target`: an SQLite file path, or a `postgresql://` URL (PgDsn).

    `time_left`: seconds to the caller's deadline (None: none), e.g. `Budget.time_left`; every wait
    of the store (a lock, a statement, a reconnect) ends by then (store/waits.py).
    """
    location = target if isinstance(target, PgDsn) else store_location(target)
    if isinstance(location, PgDsn):
        from cgpreset.store.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        store: Store = PostgresStore(location, readonly=readonly, time_left=time_left)
        return store
    from cgpreset.store.sqlite import SQLiteStore

    return SQLiteStore(location, readonly=readonly, time_left=time_left)


def open_stream_store(target: str | Path | StoreLocation) -> StreamSink:
    """The stream tables of the store at `target` (`stream --store`): SQLite file or PostgreSQL."""
    location = target if isinstance(target, PgDsn) else store_location(target)
    if isinstance(location, PgDsn):
        from cgpreset.store.pg_stream import PgStreamStore

        return PgStreamStore(location)
    from cgpreset.store.stream_tables import StreamStore

    return StreamStore(location)
