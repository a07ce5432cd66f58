"""The stream's liquidation events: `cgpreset export liquidation_events` and the report's section.

The store's `liquidation_events` view (coin, exchange, symbol, side, usd, price, time, ts) is made
here as the store contract gives it; a test against the store's own view belongs with the store.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.analyst.charts import GREEN, RED
from cgpreset.analyst.report import write_report
from cgpreset.cli import cli
from cgpreset.models.config import load_configs
from tests.analyst_db import DAY, HOUR, T0, add_events, iso, make_views_db
from tests.test_report import _config

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
    con = sqlite3.connect(db)
    con.execute("DROP VIEW liquidation_events")  # a store of a release before the view, read as it is
    con.close()
    result = _export("--store", str(db))
    assert (result.exit_code, result.stdout) == (0, ",".join(COLUMNS) + "\n")
    assert result.stderr == ("note: the store has no liquidation_events view yet, so it has no rows "
                             "(`cgpreset stream --store` adds it and fills it)\n")


def _configs(tmp_path: Path) -> Path:
    d = tmp_path / "configs"
    d.mkdir()
    for coin in ("BTC", "SOL"):
        (d / f"{coin.lower()}.yaml").write_text(_config(coin).replace("history_days: 90", "history_days: 2"))
    return d


def _figures(html: str) -> dict[str, Any]:
    m = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return dict(json.loads(m.group(1)))


def test_the_report_shows_each_coins_events_by_exchange_and_side(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = write_report(load_configs([_configs(tmp_path)]), db, out, source="api", now_ms=NOW)
    assert (result.charts, result.failed, result.empty) == (11 + 2, 0, 0)  # the events are shown, not checked
    html = out.read_text()
    figures = _figures(html)
    btc = figures["chart-BTC-liquidation_events"]
    assert [(t["name"], t["x"], t["y"], t["text"], t["marker"]["color"]) for t in btc["data"]] == [
        ("long liquidations USD", ["OKX", "Binance"], [1000.0, 600.0], ["1 event", "3 events"], GREEN),
        ("short liquidations USD", ["OKX", "Binance"], [None, 50.0], ["", "1 event"], RED)]
    assert btc["layout"]["title"]["text"] == ("Liquidation events by exchange (USD, streamed) · 5 events since "
                                              "2026-11-01 00:00")
    sol = figures["chart-SOL-liquidation_events"]
    assert sol["data"] == []
    assert sol["layout"]["annotations"][0]["text"] == "no liquidation events of SOL streamed since 2026-11-01 00:00"
    # each coin's section: its layers, then its events; the macro layers after every coin
    ids = re.findall(r'<div class="chart" id="([^"]+)"', html)
    assert ids.index("chart-BTC-liquidation_events") == ids.index("chart-BTC-liquidation_exchanges") + 1
    assert ids[-1] == "chart-macro-etf_flows"
    assert re.search(r"<td>BTC</td><td><a href=\"#chart-BTC-liquidation_events\">liquidation_events</a></td>"
                     r"<td>stream, since 2026-11-01 00:00</td><td class=\"num\">5</td>", html)
    assert "5 events, 1,650 USD" in html and "no events in the window" in html


@pytest.mark.parametrize("events", [None, []])
def test_no_events_no_section(tmp_path: Path, events: list[dict[str, Any]] | None) -> None:
    db = make_views_db(tmp_path / "s.db", coins=("BTC", "SOL"), bars=BARS)
    if events is not None:  # the view, but nothing streamed
        con = sqlite3.connect(db)
        add_events(con, events)
        con.commit()
        con.close()
    out = tmp_path / "report.html"
    result = write_report(load_configs([_configs(tmp_path)]), db, out, source="api", now_ms=NOW)
    assert result.charts == 11 and result.missing == ()
    assert "liquidation_events" not in out.read_text().split("<script>", 1)[0]
    assert not any("liquidation_events" in k for k in _figures(out.read_text()))


def test_postgres_gives_the_same_events_as_sqlite(db: Path, pg_dsn: str) -> None:
    """The export's bytes and the report's sums, from a PostgreSQL store with the same events."""
    import psycopg

    from cgpreset.analyst.events import coin_events, has_events
    from cgpreset.analyst.source import connect

    cols = "coin TEXT, exchange TEXT, symbol TEXT, side TEXT, usd DOUBLE PRECISION, price DOUBLE PRECISION, " \
           "time BIGINT, ts TEXT"
    from cgpreset.store import open_store

    open_store(pg_dsn).close()  # a real store, whose events view reads these rows instead of its own
    with psycopg.connect(pg_dsn) as pg:
        pg.execute("DROP VIEW liquidation_events")
        pg.execute("DROP VIEW funding")  # a view it lacks (a store of an older release, read as it is)
        pg.execute(f"CREATE TABLE t_events ({cols})")
        pg.execute("CREATE VIEW liquidation_events AS SELECT * FROM t_events")
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO t_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            [(*(e[c] for c in COLUMNS[:-1]), iso(e["time"])) for e in EVENTS])
    for fmt in ("csv", "jsonl"):
        from_pg, from_sqlite = _export("--store", pg_dsn, "--format", fmt), _export("--store", str(db), "--format", fmt)
        assert from_pg.exit_code == 0, from_pg.output
        assert from_pg.stdout == from_sqlite.stdout
    with connect(pg_dsn) as pg_conn, connect(db) as sqlite_conn:
        assert has_events(pg_conn) and has_events(sqlite_conn)
        assert coin_events(pg_conn, "BTC", NOW - 2 * DAY, NOW) == coin_events(sqlite_conn, "BTC", NOW - 2 * DAY, NOW)
        assert coin_events(pg_conn, "BTC", NOW - 2 * DAY, NOW).events == 5
    no_view = CliRunner().invoke(cli, ["export", "funding", "--store", pg_dsn])  # a view it lacks: empty, noted
    assert (no_view.exit_code, no_view.stdout.count("\n")) == (0, 1)
    assert no_view.stderr.startswith("note: the store has no funding view yet")
