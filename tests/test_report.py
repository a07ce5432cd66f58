"""`cgpreset report`: a self-contained page with a chart per coin and layer, checked in a real browser."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgpreset.analyst.report import write_report
from cgpreset.cli import cli
from cgpreset.models.config import load_configs
from tests.analyst_db import HOUR, T0, make_views_db
from tests.browser import find_chromium, open_page

COINS = ("BTC", "SOL")
BARS = 48
NOW = T0 + BARS * HOUR  # an hour after the forming bar opened: every series is fresh


def _config(coin: str) -> str:
    return f"""version: 1
coin: {coin}
plan: standard
interval: 1h
history_days: 90
layers:
  funding: {{exchange: OKX, symbol: {coin}-USDT-SWAP}}
  open_interest: {{symbol: {coin}}}
  liquidation: {{symbol: {coin}, exchange_list: [Binance, OKX, Bybit]}}
  taker_volume: {{symbol: {coin}, exchange_list: [Binance, OKX, Bybit]}}
  liquidation_exchanges: {{symbol: {coin}, range: 1h, exchanges: [All, Binance, OKX, Bybit]}}
  etf_flows: {{asset: bitcoin}}
health: {{freshness_intervals: 2, min_rows: 1, max_gap_bars: 0, flag_all_zero: true, tolerance: 0.01}}
"""


@pytest.fixture
def configs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "configs"
    d.mkdir()
    for coin in COINS:
        (d / f"{coin.lower()}.yaml").write_text(_config(coin))
    return d


def _figures(html: str) -> dict[str, dict[str, object]]:
    m = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return dict(json.loads(m.group(1)))


def test_report_has_a_chart_per_coin_and_layer_with_verdicts(configs_dir: Path, tmp_path: Path) -> None:
    db = make_views_db(tmp_path / "s.db", coins=COINS, bars=BARS)
    out = tmp_path / "report.html"
    result = write_report(load_configs([configs_dir]), db, out, source="emulator", now_ms=NOW)
    html = out.read_text()
    figures = _figures(html)
    layers = ("funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges")
    assert sorted(figures) == sorted([f"chart-{c}-{layer}" for c in COINS for layer in layers]
                                     + ["chart-macro-etf_flows"])
    assert (result.charts, result.failed, result.empty) == (11, 0, 0)
    assert "embedded CoinGlass emulator (synthetic data, not CoinGlass)" in html
    funding = figures["chart-SOL-funding"]["data"][0]  # type: ignore[index]
    assert funding["type"] == "candlestick" and len(funding["x"]) == BARS
    breakdown = figures["chart-BTC-liquidation_exchanges"]["data"]  # type: ignore[index]
    assert sorted(t["name"] for t in breakdown) == ["Binance", "Bybit", "OKX"]  # "All" is their sum, not a bar
    assert html.count("Plotly.newPlot") == 1 and html.count("<script") == 3  # plotly.js, figures, loader
    page = re.sub(r"<script>.*?</script>", "", html, count=1, flags=re.S)  # plotly.js itself holds link texts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from a network
    assert result.size_bytes == out.stat().st_size < 12_000_000


def test_gaps_and_stale_data_are_marked_on_the_chart(configs_dir: Path, tmp_path: Path) -> None:
    db = make_views_db(tmp_path / "s.db", coins=COINS, bars=BARS, gap_at=20)
    out = tmp_path / "report.html"
    later = NOW + 10 * HOUR
    result = write_report(load_configs([configs_dir]), db, out, source=None, now_ms=later)
    figures = _figures(out.read_text())
    oi = figures["chart-BTC-open_interest"]["layout"]
    shapes = oi["shapes"]  # type: ignore[index]
    assert {"x0": T0 + 19 * HOUR, "x1": T0 + 21 * HOUR}.items() <= shapes[0].items()  # the gap, grey
    assert shapes[1]["x0"] == T0 + (BARS - 2) * HOUR and shapes[1]["x1"] == later  # stale since the last closed bar
    note = oi["annotations"][0]["text"]  # type: ignore[index]
    assert "gaps: 1 bars missing" in note and "freshness:" in note
    assert "FAILED" in oi["title"]["text"]  # type: ignore[index]
    assert result.failed == 8  # every bar series; the exchange snapshots and the daily ETF flows are fine
    assert "not recorded in this store: it may be the CoinGlass API or the emulator" in out.read_text()


def test_report_command_writes_the_page_and_exits_1_on_findings(configs_dir: Path, tmp_path: Path) -> None:
    db = make_views_db(tmp_path / "s.db", coins=("BTC",), bars=BARS)  # SOL has nothing stored
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(configs_dir), "--store", str(db), "--html", str(out),
                                      "--source", "api"])
    assert result.exit_code == 1, result.output
    assert re.fullmatch(rf"report: {re.escape(out.as_posix())} \(\d+\.\d MB, 11 charts, \d+ failed, 5 empty\)\n",
                        result.stdout)
    assert "Data source:</strong> the CoinGlass API" in out.read_text()
    bad = CliRunner().invoke(cli, ["report", str(configs_dir), "--store", str(tmp_path / "no.db"),
                                   "--html", str(out)])
    assert bad.exit_code == 2 and bad.stderr.endswith("no.db: no such store (no run has written it yet)\n")


def test_report_opens_offline_in_chromium_and_draws_every_chart(configs_dir: Path, tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (.ci/run installs the Debian package)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    db = make_views_db(tmp_path / "s.db", coins=COINS, bars=BARS, gap_at=10)
    out = tmp_path / "report.html"
    write_report(load_configs([configs_dir]), db, out, source="emulator", now_ms=NOW)
    with open_page(out.resolve().as_uri()) as page:
        drawn = page.evaluate("new Promise(done => { const poll = () => document.body.dataset.drawn === "
                              "document.body.dataset.charts ? done(Number(document.body.dataset.drawn)) "
                              ": setTimeout(poll, 20); poll(); })")
        svgs = page.evaluate("Array.from(document.querySelectorAll('.chart')).filter(c => "
                             "c.classList.contains('js-plotly-plot') && c.querySelector('svg.main-svg')).length")
        traces = page.evaluate("document.querySelectorAll('.chart .trace').length")
        shot = page.screenshot(tmp_path / "report.png")
        errors, requests = page.script_errors(), page.requests()
    assert errors == []
    assert drawn == svgs == 11
    assert traces >= 11
    assert requests == [out.resolve().as_uri()]  # offline: nothing but the page itself
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
