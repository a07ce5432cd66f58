"""A repo's own layers are exported and charted like the shipped ones: views, export and the
report's charts all follow the layer definition (one made-up layer per chart kind)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgpreset import layers
from cgpreset.analyst.charts import GREEN, RED, trace_name, traces
from cgpreset.analyst.report import write_report
from cgpreset.analyst.views import View, layer_view, views
from cgpreset.cli import cli
from cgpreset.layers.definition import parse_definition
from cgpreset.models.config import load_configs
from tests.analyst_db import HOUR, T0, add_view, make_views_db

BARS = 24
NOW = T0 + BARS * HOUR  # an hour after the forming bar opened: every series is fresh

#: One made-up layer per chart kind, as a repo would write them in layers/*.yaml.
DEFINITIONS = {
    "my_basis": """name: my_basis
title: Basis OHLC (%)
endpoint: {path: /api/futures/basis/history}
kind: pair
history: windows
time: {field: time, unit: ms}
fields:
  - {name: open, type: number, unit: percent}
  - {name: high, type: number, unit: percent}
  - {name: low, type: number, unit: percent}
  - {name: close, type: number, unit: percent, label: basis}
checks: [gaps, freshness, ohlc, all_zero]
chart: candles
""",
    "my_price": """name: my_price
title: Futures price (quote)
endpoint: {path: /api/futures/price/history}
kind: coin
history: windows
time: {field: time, unit: ms}
fields:
  - {name: open, type: number, unit: quote}
  - {name: high, type: number, unit: quote}
  - {name: low, type: number, unit: quote}
  - {name: close, type: number, unit: quote}
  - {name: volume_usd, type: number, unit: USD, label: volume}
checks: [gaps, freshness, ohlc]
chart: line_close
""",
    "my_ratio": """name: my_ratio
title: Long / short accounts
endpoint: {path: /api/futures/global-long-short-account-ratio/history}
kind: pair
history: windows
time: {field: time, unit: ms}
fields:
  - {name: global_account_long_percent, column: long_percent, type: number, unit: percent, label: long}
  - {name: global_account_short_percent, column: short_percent, type: number, unit: percent, label: short %}
  - {name: global_account_long_short_ratio, column: long_short_ratio, type: number, unit: ratio, label: long/short}
checks: [gaps, freshness]
chart: lines
""",
    "my_taker": """name: my_taker
title: Spot taker buy / sell (USD)
endpoint: {path: /api/spot/aggregated-taker-buy-sell-volume/history}
kind: coin_exchanges
history: windows
time: {field: time, unit: ms}
fields:
  - {name: aggregated_buy_volume_usd, column: buy_usd, type: number, unit: USD, label: buy}
  - {name: aggregated_sell_volume_usd, column: sell_usd, type: number, unit: USD, label: sell}
checks: [gaps, freshness, all_zero]
chart: bars
""",
    "my_oi_exchanges": """name: my_oi_exchanges
title: Open interest by exchange (USD)
endpoint: {path: /api/futures/open-interest/exchange-list}
kind: exchange_snapshot
history: snapshot
range: {1h: 1h}
fields:
  - {name: exchange, type: str}
  - {name: open_interest_usd, column: oi_usd, type: number, unit: USD}
  - {name: open_interest_quantity, column: oi_coin, type: number, unit: coin}
chart: by_exchange
""",
    "my_premium": """name: my_premium
title: Coinbase premium index
endpoint: {path: /api/coinbase-premium-index}
kind: macro
history: windows
time: {field: time, unit: s}
fields:
  - {name: premium, type: number, unit: index, signed: true}
  - {name: premium_rate, type: number, unit: percent, signed: true}
checks: [gaps, freshness]
chart: flows
""",
}

#: Each view's columns: the series' (from the kind), [row key], time, ts, stored, [closed].
COLUMNS = {
    "my_basis": ("coin", "exchange", "instrument", "interval", "time", "ts", "open", "high", "low", "close", "closed"),
    "my_price": ("coin", "interval", "time", "ts", "open", "high", "low", "close", "volume_usd", "closed"),
    "my_ratio": ("coin", "exchange", "instrument", "interval", "time", "ts", "long_percent", "short_percent",
                 "long_short_ratio", "closed"),
    "my_taker": ("coin", "interval", "time", "ts", "buy_usd", "sell_usd", "closed"),
    "my_oi_exchanges": ("coin", "exchange", "time", "ts", "oi_usd", "oi_coin"),
    "my_premium": ("interval", "time", "ts", "premium", "premium_rate", "closed"),
}

CONFIG = """version: 1
coin: {coin}
plan: standard
interval: 1h
history_days: 30
layers:
  my_basis: {{exchange: OKX, symbol: {coin}-USDT-SWAP}}
  my_price: {{symbol: {coin}}}
  my_ratio: {{exchange: OKX, symbol: {coin}-USDT-SWAP}}
  my_taker: {{symbol: {coin}, exchange_list: [Binance, OKX]}}
  my_oi_exchanges: {{symbol: {coin}, range: 1h, exchanges: [All, Binance, OKX]}}
  my_premium: {{}}
health: {{freshness_intervals: 2, min_rows: 1, max_gap_bars: 0, flag_all_zero: true, tolerance: 0.01}}
"""


@pytest.fixture
def own_layers(tmp_path: Path) -> Iterator[Path]:
    """The made-up definitions in ./layers (the working directory is tmp_path), made active."""
    folder = tmp_path / "layers"
    folder.mkdir()
    for name, text in DEFINITIONS.items():
        (folder / f"{name}.yaml").write_text(text)
    layers.use([Path("layers")])
    yield folder
    layers.reset()


def _rows(v: View, coins: tuple[str, ...] = ("BTC", "SOL"), bars: int = BARS) -> list[dict[str, Any]]:
    """Hourly rows for every column the view has (the last bar still forming): OHLC valid, other
    values multiples of a base that goes below zero for the premium; on a snapshot, one row per
    exchange (60 % and 40 %) and their total, "All"."""
    names = ("coin", "exchange", "instrument", "interval", "time", "ts", "closed")
    values = [c for c in v.columns if c not in names]
    out = []
    for ci, coin in enumerate(coins if "coin" in v.columns else ("*",)):
        for i in range(bars):
            base = 10.0 * (ci + 1) + i % 5 - (12 if "premium" in v.columns else 0)
            ohlc = {"open": base, "high": base + 1, "low": base - 1, "close": base + 0.5}
            row: dict[str, Any] = {"coin": coin, "exchange": "OKX", "instrument": f"{coin}-USDT-SWAP",
                                   "interval": "1h", "time": T0 + i * HOUR, "closed": int(i < bars - 1),
                                   **{c: ohlc.get(c, base * (j + 1)) for j, c in enumerate(values)}}
            if "closed" in v.columns:
                out.append(row)
                continue
            out += [{**row, "exchange": ex, **{c: row[c] * share for c in values}}
                    for ex, share in (("Binance", 0.6), ("OKX", 0.4))]
            out.append({**row, "exchange": "All"})
    return out


def _own_db(path: Path, names: tuple[str, ...] = tuple(DEFINITIONS)) -> Path:
    """The shipped views (filled) plus the made-up layers' views, filled with `_rows`."""
    make_views_db(path, coins=("BTC", "SOL"), bars=BARS)
    db = sqlite3.connect(path)
    for name in names:
        add_view(db, name, _rows(views()[name]))
    db.commit()
    db.close()
    return path


def _db_rows(path: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = sqlite3.connect(path)
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    rows = [tuple(bool(v) if c == "closed" else v for c, v in zip(cols, r, strict=True)) for r in cur]
    con.close()
    return cols, rows


@pytest.mark.usefixtures("own_layers")
def test_a_layers_view_has_the_columns_its_definition_gives() -> None:
    for name, columns in COLUMNS.items():
        v = views()[name]
        assert v.columns == columns, name
        assert v.order == tuple(c for c in columns if c in ("coin", "exchange", "instrument", "interval")) + ("time",)
    assert views()["my_oi_exchanges"].text == {"coin", "exchange", "ts"}
    layers.reset()
    assert "my_basis" not in views()  # derived per catalogue, never kept from another one


def test_the_store_creates_the_views_the_analyst_reads(tmp_path: Path) -> None:
    """The store's own views of the shipped layers have exactly the catalogue's columns."""
    from cgpreset.store import open_store

    open_store(tmp_path / "s.db").close()
    con = sqlite3.connect(tmp_path / "s.db")
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    checked = []
    for name, v in views().items():
        if name in have:
            assert tuple(r[1] for r in con.execute(f"PRAGMA table_info({name})")) == v.columns, name
            checked.append(name)
    assert set(layers.layer_names()) <= set(checked)  # liquidation_events: once the store adds its view


@pytest.mark.parametrize("name", list(DEFINITIONS))
@pytest.mark.usefixtures("own_layers")
def test_export_writes_a_layer_of_the_repo_in_every_format(tmp_path: Path, name: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    db = _own_db(tmp_path / "s.db", (name,))
    layers.reset()  # the command loads ./layers itself
    v = layer_view(layers.load([Path("layers")])[name])
    cols, want = _db_rows(db, f"SELECT * FROM {name} ORDER BY {', '.join(v.order)}")
    assert tuple(cols) == COLUMNS[name]

    as_csv = CliRunner().invoke(cli, ["export", name, "--store", str(db)])
    assert as_csv.exit_code == 0, as_csv.output
    lines = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert tuple(lines[0]) == COLUMNS[name] and len(lines) == 1 + len(want)
    text = [[_csv_value(v) for v in row] for row in want]
    assert lines[1:] == text

    as_jsonl = CliRunner().invoke(cli, ["export", name, "--store", str(db), "--format", "jsonl"])
    assert [tuple(json.loads(x).values()) for x in as_jsonl.stdout.splitlines()] == want

    out = tmp_path / f"{name}.parquet"
    as_parquet = CliRunner().invoke(cli, ["export", name, "--store", str(db), "--format", "parquet", "--output",
                                          str(out)])
    assert as_parquet.exit_code == 0, as_parquet.output
    table = pq.read_table(out)
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["time"] == pa.timestamp("ms", tz="UTC") and types["ts"] == pa.string()
    assert all(types[c] == pa.string() for c in v.text)
    assert all(types[c] == pa.float64() for c in COLUMNS[name] if c not in v.text | {"time", "closed"})
    assert "closed" not in types or types["closed"] == pa.bool_()
    assert table.num_rows == len(want)


def _csv_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def test_export_of_a_layer_outside_its_repo_is_unknown(tmp_path: Path) -> None:
    db = make_views_db(tmp_path / "s.db")
    result = CliRunner().invoke(cli, ["export", "my_basis", "--store", str(db)])
    assert result.exit_code == 2
    assert re.match(r"Error: unknown layer 'my_basis'( \(did you mean \w+\?\))?: expected one of funding, ",
                    result.stderr)
    assert result.stderr.endswith(", liquidation_events (`cgpreset layers` lists the layers)\n")


@pytest.mark.usefixtures("own_layers")
def test_read_gives_a_layer_the_store_lacks_as_no_rows_and_a_warning(tmp_path: Path) -> None:
    from cgpreset.analyst.read import read

    db = _own_db(tmp_path / "s.db", ("my_taker",))
    taker = read(db, "my_taker", coin="SOL", closed_only=True)
    assert taker.columns == COLUMNS["my_taker"] and len(taker) == BARS - 1 and taker.missing is None
    with pytest.warns(UserWarning, match="the store has no my_ratio view yet, so it has no rows"):
        ratio = read(db, "my_ratio")
    assert (ratio, ratio.columns) == ([], COLUMNS["my_ratio"])


def _configs(tmp_path: Path, coins: tuple[str, ...] = ("BTC",)) -> Path:
    d = tmp_path / "configs"
    d.mkdir()
    for coin in coins:
        (d / f"{coin.lower()}.yaml").write_text(CONFIG.format(coin=coin))
    return d


def _figures(html: str) -> dict[str, Any]:
    m = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return dict(json.loads(m.group(1)))


@pytest.mark.usefixtures("own_layers")
def test_the_report_charts_each_layer_as_its_definition_says(tmp_path: Path) -> None:
    db = _own_db(tmp_path / "s.db")
    out = tmp_path / "report.html"
    result = write_report(load_configs([_configs(tmp_path)]), db, out, source="api", now_ms=NOW)
    figures = _figures(out.read_text())
    assert [f["layout"]["title"]["text"] for f in figures.values() if "OK" not in f["layout"]["title"]["text"]] == []
    assert (result.charts, result.failed, result.empty, result.missing) == (6, 0, 0, ())
    figures = _figures(out.read_text())
    # the catalogue's order (the definitions give none: by name), the macro layer last
    assert list(figures) == [f"chart-BTC-{n}" for n in sorted(DEFINITIONS) if n != "my_premium"] + [
        "chart-macro-my_premium"]

    def chart(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        f = figures[f"chart-macro-{name}" if name == "my_premium" else f"chart-BTC-{name}"]
        return f["data"], f["layout"]

    data, layout = chart("my_basis")  # candles: named by the close's label and the unit
    assert [(t["type"], t["name"]) for t in data] == [("candlestick", "basis %")]
    assert data[0]["close"][:2] == [10.5, 11.5] and len(data[0]["open"]) == BARS
    assert layout["title"]["text"] == "Basis OHLC (%) · OKX BTC-USDT-SWAP · OK"
    data, layout = chart("my_price")  # line_close: the layer's name, close and unit; its volume beside
    assert [(t["type"], t["name"], t.get("yaxis")) for t in data] == [("scatter", "my price (close, quote)", None),
                                                                     ("bar", "volume USD", "y2")]
    assert (layout["yaxis"]["title"]["text"], layout["yaxis2"]["title"]["text"]) == ("quote", "USD")
    assert layout["title"]["text"] == "Futures price (quote) · OK"
    data, layout = chart("my_ratio")  # lines: one per column (a label may carry its unit); the ratio on a second axis
    assert [(t["name"], t.get("yaxis")) for t in data] == [("long %", None), ("short %", None),
                                                          ("long/short ratio", "y2")]
    assert layout["yaxis"]["title"]["text"] == "%" and layout["yaxis2"]["title"]["text"] == "ratio"
    assert layout["yaxis2"]["overlaying"] == "y"
    data, layout = chart("my_taker")  # bars: a pair of columns reads green / red
    assert [(t["type"], t["name"], t["marker"]["color"]) for t in data] == [("bar", "buy USD", GREEN),
                                                                           ("bar", "sell USD", RED)]
    assert layout["barmode"] == "group" and "yaxis2" not in layout
    data, layout = chart("my_oi_exchanges")  # by_exchange: stacked per exchange, the total not drawn
    assert [t["name"] for t in data] == ["Binance", "OKX"] and layout["barmode"] == "stack"
    assert data[0]["y"][0] == pytest.approx(10.0 * 0.6)
    data, layout = chart("my_premium")  # flows: the first signed column, green in, red out
    assert [t["name"] for t in data] == ["premium index"]
    assert data[0]["y"][:5] == [-2, -1, 0, 1, 2] and data[0]["marker"]["color"][:5] == [RED, RED, GREEN, GREEN, GREEN]
    assert layout["title"]["text"] == "Coinbase premium index · OK"


@pytest.mark.usefixtures("own_layers")
def test_a_layer_the_store_has_no_view_for_reads_as_empty_with_one_line(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    db = _own_db(tmp_path / "s.db", ("my_price",))  # every other made-up layer: no view yet
    configs = _configs(tmp_path)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(configs), "--store", str(db), "--html", str(out)])
    assert result.exit_code == 1, result.output  # empty series
    note = ("note: the store has no my_basis view yet, so it has no rows (a run-preset of a config with the "
            "my_basis layer adds it)\n")
    assert note in result.stderr and result.stderr.count("note: ") == 5
    assert "Traceback" not in result.output
    assert re.search(r"6 charts, \d failed, 5 empty", result.stdout)  # my_price: stale by the wall clock
    html = out.read_text()
    assert "the store has no my_ratio view yet" in _figures(html)["chart-BTC-my_ratio"]["layout"]["annotations"][0][
        "text"]

    for fmt, expect in (("csv", ",".join(COLUMNS["my_basis"]) + "\n"), ("jsonl", "")):
        exported = CliRunner().invoke(cli, ["export", "my_basis", "--store", str(db), "--format", fmt])
        assert (exported.exit_code, exported.stdout) == (0, expect)
        assert exported.stderr == note
    parquet = tmp_path / "empty.parquet"
    exported = CliRunner().invoke(cli, ["export", "my_basis", "--store", str(db), "--format", "parquet",
                                        "--output", str(parquet)])
    assert exported.exit_code == 0 and exported.stderr.endswith(f"exported 0 rows of my_basis to {parquet}\n")
    assert pq.read_table(parquet).column_names == list(COLUMNS["my_basis"])


_UNITS = st.sampled_from(["USD", "percent", "ratio", "coin", "quote", "count", "index"])
_FIELD = st.fixed_dictionaries({"unit": _UNITS, "label": st.none() | st.text("abc ", min_size=1, max_size=8),
                                "signed": st.booleans()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["pair", "coin", "coin_exchanges", "macro"]), chart=st.sampled_from(
    ["line_close", "lines", "bars", "flows"]), fields=st.lists(_FIELD, min_size=1, max_size=5),
       bars=st.integers(0, 6))
def test_any_definition_gets_a_view_and_a_chart_named_from_its_fields(kind: str, chart: str,
                                                                      fields: list[dict[str, Any]],
                                                                      bars: int) -> None:
    ls = parse_definition({
        "name": "my_layer", "title": "Mine", "endpoint": {"path": "/api/mine"}, "kind": kind, "history": "windows",
        "time": {"field": "t", "unit": "s"}, "chart": chart,
        "fields": [{"name": f"v{i}", "type": "number", **{k: v for k, v in f.items() if v is not None}}
                   for i, f in enumerate(fields)]}, "test")
    v = layer_view(ls)
    values = tuple(f"v{i}" for i in range(len(fields)))
    assert v.columns == (*ls.view_series, "time", "ts", *values, "closed")
    assert set(v.order) <= set(v.columns) and set(v.text) <= set(v.columns)
    rows = [{"time": T0 + i * HOUR, **{c: (-1) ** i * (i + 1.0) for c in values}} for i in range(bars)]
    drawn = traces(ls, rows)
    if chart in ("lines", "bars"):
        assert [t["name"] for t in drawn] == [trace_name(c) for c in ls.columns]
        first_unit = ls.columns[0].unit
        assert [t.get("yaxis") for t in drawn] == [None if c.unit == first_unit else "y2" for c in ls.columns]
    else:
        assert len(drawn) == 1
    for t in drawn:
        assert t["name"] and t["name"].strip() == t["name"]  # never empty, never padded
        assert len(t["y"]) == bars


@pytest.mark.usefixtures("own_layers")
def test_the_report_of_own_layers_and_events_draws_in_chromium(tmp_path: Path) -> None:
    from tests.analyst_db import add_events
    from tests.browser import find_chromium, open_page

    if find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (.ci/run installs the Debian package)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    db = _own_db(tmp_path / "s.db")
    con = sqlite3.connect(db)
    add_events(con, [{"coin": "BTC", "exchange": ex, "symbol": "BTCUSDT", "side": side, "usd": 1e3 * (i + 1),
                      "price": 6e4, "time": NOW - (i + 1) * HOUR}
                     for i, (ex, side) in enumerate([("Binance", "long"), ("OKX", "short"), ("OKX", "long")])])
    con.commit()
    con.close()
    out = tmp_path / "report.html"
    result = write_report(load_configs([_configs(tmp_path)]), db, out, source="api", now_ms=NOW)
    assert result.charts == 7
    with open_page(out.resolve().as_uri()) as page:
        drawn = page.evaluate("new Promise(done => { const poll = () => document.body.dataset.drawn === "
                              "document.body.dataset.charts ? done(Number(document.body.dataset.drawn)) "
                              ": setTimeout(poll, 20); poll(); })")
        axes = page.evaluate("document.querySelectorAll('#chart-BTC-my_ratio .yaxislayer-above').length + "
                             "document.querySelectorAll('#chart-BTC-my_ratio g.y2tick').length")
        bars = page.evaluate("Array.from(document.querySelectorAll('#chart-BTC-liquidation_events .bars .point'))"
                             ".map(p => p.textContent).filter(t => t)")
        errors = page.script_errors()
    assert errors == [] and drawn == 7
    assert axes > 1  # the ratio's own axis on the right
    assert sorted(bars) == ["1 event"] * 3  # OKX long and short, Binance long: each bar with its count
