"""The stream's liquidation events: `cgpreset export liquidation_events`.

The store's `liquidation_events` view (coin, exchange, symbol, side, usd, price, time, ts) is made
here as the store contract gives it; a test against the store's own view belongs with the store.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from tests.analyst_db import DAY, HOUR, T0, add_events, iso, make_views_db

BARS = 48
NOW = T0 + BARS * HOUR
MINUTE = 60_000
COLUMNS = ["coin", "exchange", "symbol", "side", "usd", "price", "time", "ts"]


def _event(coin: str, exchange: str, side: str, usd: float, at: int, symbol: str | None = None) -> dict[str, Any]:
    return {"coin": coin, "exchange": exchange, "symbol": symbol or f"{coin}USDT", "side": side, "usd": usd,
            "price": 60_000.0 + usd, "time": at}


#: BTC: Binance 3 long (600 USD) and 1 short, OKX 1 long (1000 USD), one older than the window;
#: ETH (no config) one; SOL none.
EVENTS = [
    _event("BTC", "Binance", "long", 100.0, NOW - 5 * MINUTE),
    _event("BTC", "Binance", "long", 200.0, NOW - 4 * MINUTE),
    _event("BTC", "Binance", "long", 300.0, NOW - 3 * MINUTE, "BTCUSD_PERP"),
    _event("BTC", "Binance", "short", 50.0, NOW - 2 * MINUTE),
    _event("BTC", "OKX", "long", 1000.0, NOW - HOUR, "BTC-USDT-SWAP"),
    _event("BTC", "OKX", "short", 7.0, NOW - 3 * DAY),  # before the 2-day window
    _event("ETH", "Bybit", "short", 42.0, NOW - MINUTE),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = make_views_db(tmp_path / "s.db", coins=("BTC", "SOL"), bars=BARS)
    con = sqlite3.connect(path)
    add_events(con, EVENTS)
    con.commit()
    con.close()
    return path


def _export(*args: str) -> Any:
    return CliRunner().invoke(cli, ["export", "liquidation_events", *args])


def test_export_writes_every_event_ordered_by_coin_exchange_symbol_time(db: Path) -> None:
    result = _export("--store", str(db))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == COLUMNS
    want = sorted(EVENTS, key=lambda e: (e["coin"], e["exchange"], e["symbol"], e["time"]))
    assert [(r[0], r[1], r[2], r[3], float(r[4]), int(r[6]), r[7]) for r in rows[1:]] == [
        (e["coin"], e["exchange"], e["symbol"], e["side"], e["usd"], e["time"], iso(e["time"])) for e in want]


def test_export_filters_events_by_coin_and_time(db: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    result = _export("--store", str(db), "--coin", "btc", "--start", str(NOW - HOUR), "--format", "jsonl")
    got = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(e["exchange"], e["usd"]) for e in got] == [("Binance", 100.0), ("Binance", 200.0), ("Binance", 50.0),
                                                        ("Binance", 300.0), ("OKX", 1000.0)]
    assert list(got[0]) == COLUMNS
    out = tmp_path / "events.parquet"
    assert _export("--store", str(db), "--format", "parquet", "--output", str(out)).exit_code == 0
    table = pq.read_table(out)
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert table.num_rows == len(EVENTS) and table.column_names == COLUMNS
    assert types["time"] == pa.timestamp("ms", tz="UTC") and types["usd"] == types["price"] == pa.float64()
    assert types["side"] == types["symbol"] == pa.string()


def test_export_refuses_closed_only_on_events(db: Path) -> None:
    result = _export("--store", str(db), "--closed-only")
    assert (result.exit_code, result.stderr) == (
        2, "Error: --closed-only: liquidation_events has no closed column (every event is final)\n")


def test_a_store_without_the_events_view_exports_none_with_one_line(tmp_path: Path) -> None:
    db = make_views_db(tmp_path / "s.db")
    result = _export("--store", str(db))
    assert (result.exit_code, result.stdout) == (0, ",".join(COLUMNS) + "\n")
    assert result.stderr == ("note: the store has no liquidation_events view yet, so it has no rows "
                             "(`cgpreset stream --store` adds it and fills it)\n")

