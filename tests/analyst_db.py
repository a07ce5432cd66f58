"""A small SQLite database with the store's analyst views (names and columns as the catalogue
derives them, as the store has them)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cgpreset import layers
from cgpreset.analyst.views import EVENTS, View, views
from cgpreset.store import open_store

HOUR = 3_600_000
DAY = 24 * HOUR
#: 2026-11-01T00:00Z
T0 = 1_793_491_200_000
#: The shipped views (the fixture fills these; a test adds a made-up layer's with `add_view`).
SHIPPED_VIEWS = ("funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges", "etf_flows",
                 "etf_flows_by_ticker")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ddl(v: View) -> str:
    cols = []
    for c in v.columns:
        kind = "TEXT" if c in v.text else "INTEGER" if c in ("time", "closed") else "REAL"
        cols.append(f"{c} {kind}")
    # A base table plus a view over it, as the store has: the analyst code only sees the view.
    return (f"DROP VIEW IF EXISTS {v.name}; CREATE TABLE t_{v.name} ({', '.join(cols)}); "
            f"CREATE VIEW {v.name} AS SELECT * FROM t_{v.name};")


def add_view(db: sqlite3.Connection, view: str | View, rows: Iterable[Mapping[str, Any]] = ()) -> None:
    """Create a view of the active catalogue (or `view` as given) and fill it; `ts` is derived from
    `time`, a row's missing columns are NULL."""
    v = views()[view] if isinstance(view, str) else view
    db.executescript(_ddl(v))
    insert(db, v.name, rows)


def insert(db: sqlite3.Connection, view: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows into a view made by `add_view` (by column name; `ts` from `time` unless given)."""
    columns = [r[1] for r in db.execute(f"PRAGMA table_info(t_{view})")]
    db.executemany(f"INSERT INTO t_{view} VALUES ({', '.join('?' for _ in columns)})",
                   [tuple(r.get(c, iso(r["time"]) if c == "ts" else None) for c in columns) for r in rows])


def add_events(db: sqlite3.Connection, events: Iterable[Mapping[str, Any]]) -> None:
    """The stream's liquidation_events view (its columns as the store contract gives them), filled."""
    add_view(db, EVENTS, events)


def make_views_db(path: Path, *, coins: tuple[str, ...] = ("BTC", "SOL"), bars: int = 48, start: int = T0,
                  gap_at: int | None = None) -> Path:
    """Every shipped view filled with `bars` hourly bars per coin (the last one still forming).

    `gap_at`: leave that bar index out of every series (a gap for the report to mark). A real store
    (its base tables) whose shipped views read these rows instead of its layer tables'.
    """
    active = layers.catalogue()
    layers.reset()  # a store that met the shipped layers only: a test adds a made-up layer's view itself
    try:
        open_store(path).close()
    finally:
        layers.use(active)
    db = sqlite3.connect(path)
    for view in SHIPPED_VIEWS:
        add_view(db, view)
    for ci, coin in enumerate(coins):
        for i in range(bars):
            if i == gap_at:
                continue
            t, closed = start + i * HOUR, int(i < bars - 1)
            base = 100.0 * (ci + 1) + 5 * math.sin(i / 5)
            ohlc = dict(zip(("open", "high", "low", "close"), (base, base + 1.25, base - 1.5, base + 0.5), strict=True))
            bar = {"coin": coin, "interval": "1h", "time": t, "closed": closed}
            insert(db, "funding", [{**bar, "exchange": "OKX", "instrument": f"{coin}-USDT-SWAP",
                                    **{k: v / 10_000 for k, v in ohlc.items()}}])
            insert(db, "open_interest", [{**bar, **ohlc}])
            insert(db, "liquidation", [{**bar, "long_usd": 1000.0 * i + 0.1, "short_usd": 500.5 * i}])
            insert(db, "taker_volume", [{**bar, "buy_usd": 2e6 + i / 3, "sell_usd": 1.9e6 + i / 7}])
            snapshot = []
            for ex, share in (("Binance", 0.5), ("OKX", 0.3), ("Bybit", 0.2)):
                long_usd, short_usd = 1e5 * share * (i + 1), 4e4 * share * (i + 1)
                snapshot.append({"exchange": ex, "long_usd": long_usd, "short_usd": short_usd,
                                 "total_usd": long_usd + short_usd})
            snapshot.append({"exchange": "All", "long_usd": 1e5 * (i + 1), "short_usd": 4e4 * (i + 1),
                             "total_usd": 1.4e5 * (i + 1)})
            insert(db, "liquidation_exchanges", [{"coin": coin, "time": t, **r} for r in snapshot])
    for d in range(max(1, bars // 24) + 3):
        t = start + d * DAY
        insert(db, "etf_flows", [{"time": t, "flow_usd": 1e8 - 3e7 * d, "price_usd": 65000.0 + d, "closed": 1}])
        insert(db, "etf_flows_by_ticker", [{"time": t, "ticker": ticker, "flow_usd": (1e8 - 3e7 * d) * share}
                                           for ticker, share in (("IBIT", 0.7), ("FBTC", 0.3))])
    db.commit()
    db.close()
    return path
