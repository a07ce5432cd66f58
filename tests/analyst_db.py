"""A small SQLite database with the store's analyst views (names and columns as the store has them)."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from cgpreset.analyst.views import VIEW_COLUMNS
from cgpreset.store import open_store

HOUR = 3_600_000
DAY = 24 * HOUR
#: 2026-11-01T00:00Z
T0 = 1_793_491_200_000
_TEXT = {"coin", "exchange", "instrument", "interval", "ts", "ticker"}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ddl(view: str) -> str:
    cols = []
    for c in VIEW_COLUMNS[view]:
        kind = "TEXT" if c in _TEXT else "INTEGER" if c in ("time", "closed") else "REAL"
        cols.append(f"{c} {kind}")
    if view == "etf_flows":
        cols.append("price_usd REAL")
    # A base table plus a view over it, as the store has: the analyst code only sees the view.
    return f"CREATE TABLE t_{view} ({', '.join(cols)}); CREATE VIEW {view} AS SELECT * FROM t_{view};"


def make_views_db(path: Path, *, coins: tuple[str, ...] = ("BTC", "SOL"), bars: int = 48, start: int = T0,
                  gap_at: int | None = None) -> Path:
    """Every view filled with `bars` hourly bars per coin (the last one still forming).

    `gap_at`: leave that bar index out of every series (a gap for the report to mark). A store
    (its base tables) whose views read these rows instead of its layer tables'.
    """
    open_store(path).close()
    db = sqlite3.connect(path)
    db.executescript("".join(f"DROP VIEW {v}; {_ddl(v)}" for v in VIEW_COLUMNS))
    for ci, coin in enumerate(coins):
        for i in range(bars):
            if i == gap_at:
                continue
            t, closed = start + i * HOUR, int(i < bars - 1)
            base = 100.0 * (ci + 1) + 5 * math.sin(i / 5)
            ohlc = (base, base + 1.25, base - 1.5, base + 0.5)
            fr = tuple(v / 10_000 for v in ohlc)
            db.execute("INSERT INTO t_funding VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (coin, "OKX", f"{coin}-USDT-SWAP", "1h", t, iso(t), *fr,
                        closed))
            db.execute("INSERT INTO t_open_interest VALUES (?,?,?,?,?,?,?,?,?)",
                       (coin, "1h", t, iso(t), ohlc[0], ohlc[1], ohlc[2], ohlc[3], closed))
            db.execute("INSERT INTO t_liquidation VALUES (?,?,?,?,?,?,?)",
                       (coin, "1h", t, iso(t), 1000.0 * i + 0.1, 500.5 * i, closed))
            db.execute("INSERT INTO t_taker_volume VALUES (?,?,?,?,?,?,?)",
                       (coin, "1h", t, iso(t), 2e6 + i / 3, 1.9e6 + i / 7, closed))
            for ex, share in (("Binance", 0.5), ("OKX", 0.3), ("Bybit", 0.2)):
                long_usd, short_usd = 1e5 * share * (i + 1), 4e4 * share * (i + 1)
                db.execute("INSERT INTO t_liquidation_exchanges VALUES (?,?,?,?,?,?,?)",
                           (coin, ex, t, iso(t), long_usd, short_usd, long_usd + short_usd))
            db.execute("INSERT INTO t_liquidation_exchanges VALUES (?,?,?,?,?,?,?)",
                       (coin, "All", t, iso(t), 1e5 * (i + 1), 4e4 * (i + 1), 1.4e5 * (i + 1)))
    for d in range(max(1, bars // 24) + 3):
        t = start + d * DAY
        db.execute("INSERT INTO t_etf_flows VALUES (?,?,?,?)", (t, iso(t), 1e8 - 3e7 * d, 65000.0 + d))
        for ticker, share in (("IBIT", 0.7), ("FBTC", 0.3)):
            db.execute("INSERT INTO t_etf_flows_by_ticker VALUES (?,?,?,?)",
                       (t, iso(t), ticker, (1e8 - 3e7 * d) * share))
    db.commit()
    db.close()
    return path
