"""Pages of hourly open-interest bars to write into any store, and the rows an SQLite store file
holds: helpers shared by the store, run and resilience tests (no tests here)."""

from __future__ import annotations

import sqlite3
from typing import Any

from cgpreset.layers import catalogue
from cgpreset.store.base import Page, SeriesRef, Store
from cgpreset.store.schema import layer_table

H = 3_600_000


def stored_rows(con: sqlite3.Connection) -> int:
    """Rows in every layer table of an open store file."""
    tables = [layer_table(ls).name for ls in catalogue().values()]
    return sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)


def ref(series: str = "oi/SOL/all/1h", layer: str = "open_interest", coin: str = "SOL") -> SeriesRef:
    return SeriesRef(series, layer, coin, None, None, "1h", "{}")


def page(times: list[int], closed_upto: int | None, series: str = "oi/SOL/all/1h", close: float = 1.0,
         layer: str = "open_interest", coin: str = "SOL") -> Page:
    """OHLC rows (time, open, high, low, close, closed) of an open-interest (or funding) series."""
    rows = [(t, 1.0, 2.0, 0.5, close, int(closed_upto is not None and t <= closed_upto)) for t in times]
    return Page(ref(series, layer, coin), rows, closed_upto)


def write(store: Store, times: list[int], closed_upto: int | None, series: str = "oi/SOL/all/1h",
          close: float = 1.0) -> Any:
    return store.write(page(times, closed_upto, series, close))
