"""The emulator serves every catalogue layer from its definition: a repo's own layers (loaded with
`cgpreset.layers.use`) and each shipped definition served the generic way, with the documented
checks, windows, times, plan gates and error bodies, and rows the client decodes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgpreset import layers
from cgpreset.api.catalogue import layer_endpoint
from cgpreset.api.rows import decode_rows
from cgpreset.cli import cli
from cgpreset.emulator import serve
from cgpreset.emulator.api import ApiModel
from cgpreset.emulator.bodies import PAIR_NOT_FOUND, SERVER_ERROR, UPGRADE_PLAN, interval_not_in_plan, missing_param
from cgpreset.emulator.data import COIN_BY_CODE
from cgpreset.emulator.market import Market
from cgpreset.emulator.rows import ceil_bar, listed_ms
from cgpreset.layers import Catalogue, LayerSpec
from cgpreset.plans import DAY_MS, HOUR_MS, INTERVAL_MS, MINUTE_MS, Plan, bar_open, history_days

from .test_emulator_support import NOW, MovableNow, body

#: A repo's own definitions, shaped like endpoints the docs describe (notes/endpoints.md §1, §4,
#: §8, §10, §11, §18), under paths of their own (cgpreset may ship the real ones: a path several
#: definitions share is answered from the first); `own_floor` has an interval floor of its own.
DEFINITIONS: dict[str, str] = {
    "global_long_short": """
name: global_long_short
title: Global long/short account ratio
endpoint: {path: /api/own/futures/global-long-short-account-ratio/history}
kind: pair
history: windows
time: {field: time, unit: ms}
fields:
  - {name: global_account_long_percent, type: number, unit: percent}
  - {name: global_account_short_percent, type: number, unit: percent}
  - {name: global_account_long_short_ratio, type: number, unit: ratio}
""",
    "oi_weight_funding": """
name: oi_weight_funding
title: OI-weighted funding rate OHLC
endpoint: {path: /api/own/futures/funding-rate/oi-weight-history}
kind: coin
history: windows
time: {field: time, unit: ms}
fields:
  - {name: open, type: number, unit: percent, signed: true}
  - {name: high, type: number, unit: percent, signed: true}
  - {name: low, type: number, unit: percent, signed: true}
  - {name: close, type: number, unit: percent, signed: true}
checks: [ohlc]
chart: candles
""",
    "futures_price": """
name: futures_price
title: Futures price OHLC
endpoint: {path: /api/own/futures/price/history}
kind: pair
history: windows
time: {field: time, unit: ms}
fields:
  - {name: open, type: number, unit: quote}
  - {name: high, type: number, unit: quote}
  - {name: low, type: number, unit: quote}
  - {name: close, type: number, unit: quote}
  - {name: volume_usd, type: number, unit: USD}
checks: [ohlc]
chart: candles
""",
    "own_floor": """
name: own_floor
title: Aggregated CVD
endpoint: {path: /api/own/futures/aggregated-cvd/history}
kind: coin_exchanges
history: windows
min_plan: startup
interval_floor: {startup: 1h}
time: {field: time, unit: ms}
fields:
  - {name: agg_taker_buy_vol, type: number, unit: USD}
  - {name: agg_taker_sell_vol, type: number, unit: USD}
  - {name: cum_vol_delta, type: number, unit: USD, signed: true}
""",
    "own_premium": """
name: own_premium
title: Coinbase premium index
endpoint: {path: /api/own/coinbase-premium-index}
kind: macro
history: windows
time: {field: time, unit: s}
fields:
  - {name: premium, type: number, unit: USD, signed: true}
  - {name: premium_rate, type: number, unit: percent, signed: true}
  - {name: coinbase_price, type: number, unit: USD, required: false}
""",
    "sol_etf_flows": """
name: sol_etf_flows
title: SOL ETF net flows
endpoint: {path: /api/own/etf/solana/flow-history}
kind: macro
history: whole
bar: 1d
interval_floor: false
time: {field: timestamp, unit: ms}
fields:
  - {name: flow_usd, type: number, unit: USD, signed: true}
  - {name: price_usd, type: number, unit: quote, required: false}
  - {name: etf_flows, type: list, required: false}
detail:
  field: etf_flows
  key: ticker
  key_field: etf_ticker
  table: data_sol_etf_tickers
  view: sol_etf_flows_by_ticker
  fields:
    - {name: flow_usd, type: number, unit: USD, signed: true}
checks: [etf_sum]
chart: flows
""",
}
SHIPPED = tuple(layers.shipped())
#: Each shipped definition again under a path of its own: served from the definition, not by hand.
GENERIC = tuple(f"g_{name}" for name in SHIPPED)


@pytest.fixture(autouse=True)
def own_layers(tmp_path: Path) -> Iterator[Catalogue]:
    """The shipped layers, a repo's own (definition files in layers/) and the shipped ones cloned."""
    folder = tmp_path / "layers"
    folder.mkdir()
    for name, text in DEFINITIONS.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    loaded = layers.load([folder])
    clones = [replace(s, id=f"g_{s.id}", path=f"/api/generic/{s.id}", source="test")
              for s in layers.shipped().values()]
    yield layers.use(loaded.with_specs(clones))
    layers.reset()


def model(plan: str = "standard", now: Any = None) -> ApiModel:
    return ApiModel(Plan(plan), 7, now or (lambda: NOW))


def params_for(ls: LayerSpec, interval: str = "1h", **extra: Any) -> dict[str, str]:
    """Valid parameters for the layer's kind (BTC; on Binance for a pair)."""
    by_kind = {"pair": {"exchange": "Binance", "symbol": "BTCUSDT"}, "coin": {"symbol": "BTC"},
               "coin_exchanges": {"exchange_list": "Binance,OKX", "symbol": "BTC"},
               "exchange_snapshot": {"range": next(iter(ls.range_buckets or {"": ""})), "symbol": "BTC"},
               "macro": {}}
    out = {**by_kind[ls.kind], **ls.fixed_params}
    if ls.windowed:
        out.update(interval=interval, limit="50")
    return {k: str(v) for k, v in {**out, **extra}.items()}


def ms(ls: LayerSpec, value: int) -> int:
    return value * 1000 if ls.time_unit == "s" else value


def answer(ls: LayerSpec, m: ApiModel | None = None, **extra: Any) -> dict[str, Any]:
    return (m or model()).answer(ls.path, params_for(ls, **extra))


def numeric(value: Any) -> float:
    assert not isinstance(value, bool)
    return float(value)


# -- every layer: field names, types, decoding, times -------------------------------------------------

@pytest.mark.parametrize("name", [*SHIPPED, *DEFINITIONS, *GENERIC])
def test_every_layer_answers_its_fields_and_types_and_the_client_decodes_them(name: str) -> None:
    ls = layers.spec(name)
    got = answer(ls)
    assert got["code"] == "0", got
    rows = got["data"]
    assert rows
    names = {n: f for f in ls.fields for n in (f.name, *f.aliases)}
    for row in rows:
        keys = [k for k in row if k != ls.time_field]
        assert set(keys) <= set(names), keys
        assert {f.name for f in ls.fields if f.required} <= {names[k].name for k in keys}
        for k in keys:
            value, kind = row[k], names[k].type
            if kind == "number":
                assert isinstance(value, (int, float, str)) and not isinstance(value, bool)
                numeric(value)
            else:
                assert isinstance(value, {"int": int, "str": str, "bool": bool, "list": list}[kind]), (k, value)
    decoded = decode_rows(layer_endpoint(ls), json.dumps(rows).encode())
    assert len(decoded.rows) == len(rows) and decoded.unknown == ()
    if ls.time_field is None:
        return
    times = [ms(ls, r[ls.time_field]) for r in rows]
    bar = ls.bar or "1h"
    assert times == sorted(set(times))
    assert all(bar_open(t, bar) == t for t in times)
    assert times[-1] == bar_open(NOW, bar)  # the forming bar last


def test_an_own_layer_uses_the_definition_field_order_and_ohlc_strings_like_the_docs() -> None:
    ls = layers.spec("futures_price")
    row = answer(ls)["data"][0]
    assert list(row) == ["time", "open", "high", "low", "close", "volume_usd"]
    assert all(isinstance(row[k], str) for k in ("open", "high", "low", "close"))
    assert isinstance(row["volume_usd"], float)


# -- plausible values by unit -------------------------------------------------------------------------------

def test_long_and_short_percent_sum_to_100_and_the_ratio_divides_them() -> None:
    rows = answer(layers.spec("global_long_short"), limit=500)["data"]
    for r in rows:
        long, short = r["global_account_long_percent"], r["global_account_short_percent"]
        assert 30 < long < 70 and long + short == pytest.approx(100)
        assert r["global_account_long_short_ratio"] == pytest.approx(long / short, abs=0.006)
    assert len({r["global_account_long_percent"] for r in rows}) > 100  # it moves


@pytest.mark.parametrize("name", ["oi_weight_funding", "futures_price", "g_funding", "g_open_interest"])
def test_ohlc_bars_are_consistent_and_each_opens_at_the_close_before(name: str) -> None:
    rows = answer(layers.spec(name), interval="1h", limit=300)["data"]
    bars = [tuple(numeric(r[k]) for k in ("open", "high", "low", "close")) for r in rows]
    for o, h, lo, c in bars:
        assert lo <= min(o, c) <= max(o, c) <= h
    assert all(a[3] == b[0] for a, b in zip(bars, bars[1:], strict=False))


def test_scales_follow_the_unit_and_the_coin() -> None:
    market = Market(7)
    sol = COIN_BY_CODE["SOL"]
    price = answer(layers.spec("futures_price"), exchange="OKX", symbol="SOL-USDT-SWAP", interval="4h",
                   limit=100)["data"]
    for r in price[:-1]:
        assert numeric(r["close"]) == pytest.approx(market.price(sol, r["time"] + 4 * HOUR_MS), rel=1e-4)
        assert r["volume_usd"] > 0
    funding = answer(layers.spec("oi_weight_funding"), symbol="SOL", limit=200)["data"]
    assert all(-0.01 < numeric(r["close"]) < 0.02 for r in funding)
    cvd = answer(layers.spec("own_floor"), limit=300)["data"]
    assert all(r["agg_taker_buy_vol"] > 0 and r["agg_taker_sell_vol"] > 0 for r in cvd)
    deltas = [r["cum_vol_delta"] for r in cvd]
    assert min(deltas) < 0 < max(deltas)  # signed: around 0
    premium = answer(layers.spec("own_premium"), limit=300)["data"]
    rates = [r["premium_rate"] for r in premium]
    assert min(rates) < 0 < max(rates) and all(abs(x) < 0.2 for x in rates)
    btc = COIN_BY_CODE["BTC"]
    for r in premium[:-1]:  # a price is a level (BTC's: the series is the market's), the premium that rate of it
        assert r["coinbase_price"] == pytest.approx(market.price(btc, r["time"] * 1000), rel=1e-4)
        assert r["premium"] == pytest.approx(r["coinbase_price"] * r["premium_rate"] / 100, rel=1e-3, abs=1e-3)


def test_checks_of_the_shipped_definitions_hold_when_served_from_them() -> None:
    ex = answer(layers.spec("g_liquidation_exchanges"), range="24h")["data"]
    total, rows = ex[0], ex[1:]
    assert total["exchange"] == "All" and {r["exchange"] for r in rows} == set(COIN_BY_CODE["BTC"].venues)
    for r in ex:
        assert r["liquidation_usd"] == pytest.approx(r["long_liquidation_usd"] + r["short_liquidation_usd"])
    assert total["liquidation_usd"] == pytest.approx(sum(r["liquidation_usd"] for r in rows))
    assert [r["liquidation_usd"] for r in rows] == sorted((r["liquidation_usd"] for r in rows), reverse=True)
    for name in ("g_etf_flows", "sol_etf_flows"):
        for day in answer(layers.spec(name))["data"][-30:]:
            assert day["flow_usd"] == pytest.approx(sum(f["flow_usd"] for f in day["etf_flows"]), rel=1e-9)
            assert len({f["etf_ticker"] for f in day["etf_flows"]}) == len(day["etf_flows"]) > 1


# -- times, windows and the closed-bar cache --------------------------------------------------------------

def test_seconds_layer_sends_seconds_on_the_grid_for_a_window_in_ms() -> None:
    ls = layers.spec("own_premium")
    start = bar_open(NOW, "1h") - 10 * HOUR_MS
    rows = answer(ls, start_time=start, end_time=start + 3 * HOUR_MS)["data"]
    assert [r["time"] for r in rows] == [start // 1000, start // 1000 + 3600, start // 1000 + 7200]


def _expected(ls: LayerSpec, plan: Plan, interval: str, start: int | None, end: int | None,
              limit: int | None) -> list[int]:
    """The bars a window holds, worked out from the rules (not from the emulator's code)."""
    step, current = INTERVAL_MS[interval], bar_open(NOW, interval)
    days = history_days(plan, interval)
    listed = listed_ms("2020-01-01")  # BTC: the coin of Binance BTCUSDT and of a macro layer
    first = ceil_bar(listed if days is None else max(listed, NOW - days * DAY_MS), interval)
    bars = [t for t in range(first, current + 1, step) if end is None or t < end]
    if start is not None:
        return [t for t in bars if t >= start][: limit or 1000]
    return bars[-(limit or 1000):]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["global_long_short", "own_premium"]),
       plan=st.sampled_from([Plan.STARTUP, Plan.STANDARD, Plan.PROFESSIONAL]),
       interval=st.sampled_from(["30m", "1h", "4h", "12h", "1d"]), data=st.data())
def test_a_window_holds_exactly_its_bars_ascending_at_most_limit(name: str, plan: Plan, interval: str,
                                                                  data: st.DataObject) -> None:
    ls = layers.spec(name)
    days = history_days(plan, interval) or 3000
    low, high = NOW - days * DAY_MS, NOW + 2 * DAY_MS

    def moment(least: int) -> st.SearchStrategy[int]:  # any ms, or a bar's open (the edge cases)
        any_ms = st.integers(least, high)
        return any_ms | any_ms.map(lambda t: max(least, bar_open(t, interval)))

    start = data.draw(st.none() | moment(low), label="start")
    end = data.draw(st.none() | moment(start or low), label="end")
    limit = data.draw(st.none() | st.integers(1, 1000), label="limit")
    params = {k: v for k, v in params_for(ls, interval).items() if k != "limit"}
    params.update({k: str(v) for k, v in (("start_time", start), ("end_time", end), ("limit", limit)) if v is not None})
    got = model(plan.value).answer(ls.path, params)
    times = [ms(ls, r["time"]) for r in got["data"]]
    assert times == _expected(ls, plan, interval, start, end, limit)
    assert len(times) <= (limit or 1000)


def test_closed_bars_stay_and_are_kept_the_forming_bar_moves() -> None:
    now = MovableNow()
    m = model(now=now)
    ls = layers.spec("global_long_short")
    current = bar_open(NOW, "1h")
    closed = {"start_time": str(current - 20 * HOUR_MS), "end_time": str(current)}
    first = m.answer(ls.path, params_for(ls, **closed))
    assert m.answer(ls.path, params_for(ls, **closed)) is first  # from memory
    before = answer(ls, m, limit=5)["data"]
    now.value += 20 * MINUTE_MS
    after = answer(ls, m, limit=5)["data"]
    assert before[:-1] == after[:-1] and before[-1]["time"] == after[-1]["time"] and before[-1] != after[-1]
    narrow = answer(ls, m, start_time=first["data"][5]["time"], limit=3)["data"]
    assert narrow == first["data"][5:8]  # a bar is the same whatever the window


# -- plans, parameters and errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("plan", "interval", "expected"), [
    ("hobbyist", "4h", UPGRADE_PLAN),  # below the layer's minimum plan: any interval
    ("startup", "30m", interval_not_in_plan("30m")),  # below its own floor for Startup (1h)
    ("startup", "1h", None), ("standard", "1m", None),
])
def test_plan_gates_answer_the_documented_bodies(plan: str, interval: str, expected: Any) -> None:
    got = answer(layers.spec("own_floor"), model(plan), interval=interval)
    assert got == expected if expected else got["code"] == "0"


@pytest.mark.parametrize(("plan", "interval", "allowed"), [("hobbyist", "1h", False), ("hobbyist", "4h", True),
                                                           ("startup", "15m", False), ("startup", "30m", True)])
def test_the_plan_floor_applies_to_an_own_layer(plan: str, interval: str, allowed: bool) -> None:
    got = answer(layers.spec("global_long_short"), model(plan), interval=interval)
    assert got["code"] == "0" if allowed else got == interval_not_in_plan(interval)
    assert interval_not_in_plan(interval)["details"] == {"upgrade_required": "STANDARD"}


def test_an_interval_only_the_layers_own_floor_allows_gets_the_plans_finest_depth() -> None:
    fine = replace(layers.spec("global_long_short"), id="fine", path="/api/fine", floor_by_plan={"hobbyist": "1h"})
    layers.use(layers.catalogue().with_specs([fine]))
    rows = answer(fine, model("hobbyist"), start_time=NOW - 400 * DAY_MS, limit=1000)["data"]
    assert rows[0]["time"] == ceil_bar(NOW - 180 * DAY_MS, "1h") and len(rows) == 1000  # Hobbyist 4h: 180 days


def test_a_path_two_definitions_share_is_answered_from_the_first_in_report_order() -> None:
    ratio = layers.spec("global_long_short")
    later = replace(ratio, id="later", order=ratio.order + 1, fields=ratio.fields[:1])
    layers.use(layers.catalogue().with_specs([later]))
    assert list(answer(later)["data"][0]) == ["time", *(f.name for f in ratio.fields)]


def test_missing_parameters_are_named_first_missing_first() -> None:
    ls, m = layers.spec("global_long_short"), model()
    assert m.answer(ls.path, {}) == SERVER_ERROR  # a history endpoint with no parameters at all
    assert m.answer(ls.path, {"symbol": "BTCUSDT", "interval": "1h"}) == missing_param("exchange")
    assert m.answer(ls.path, {"exchange": "Binance", "interval": "1h"}) == missing_param("symbol")
    assert m.answer(ls.path, {"exchange": "Binance", "symbol": "BTCUSDT"}) == missing_param("interval")
    cvd = layers.spec("own_floor")
    assert m.answer(cvd.path, {"symbol": "BTC", "interval": "1h"}) == {
        "code": "400", "msg": "Required String parameter 'exchange_list' is not present"}
    assert m.answer(layers.spec("g_liquidation_exchanges").path, {"symbol": "BTC"}) == missing_param("range")


@pytest.mark.parametrize(("exchange", "symbol"), [("Binance", "BTC"), ("OKX", "BTCUSDT"), ("Kraken", "BTCUSDT"),
                                                  ("OKX", "HYPE-USDT-SWAP")])
def test_an_unknown_pair_is_the_documented_400(exchange: str, symbol: str) -> None:
    assert answer(layers.spec("futures_price"), exchange=exchange, symbol=symbol) == PAIR_NOT_FOUND


def test_unknown_coins_and_exchanges_without_the_coin_answer_no_rows() -> None:
    assert answer(layers.spec("oi_weight_funding"), symbol="BTCUSDT") == {"code": "0", "data": []}
    assert answer(layers.spec("own_floor"), exchange_list="OKX,dYdX", symbol="HYPE") == {"code": "0", "data": []}
    assert answer(layers.spec("g_liquidation_exchanges"), symbol="NOPE") == {"code": "0", "data": []}


def test_bad_values_are_400s() -> None:
    ls = layers.spec("global_long_short")
    for extra in ({"interval": "h1"}, {"limit": "4501"}, {"limit": "0"}, {"start_time": "soon"}):
        got = answer(ls, **extra)
        assert got["code"] == "400" and next(iter(extra)) in got["msg"], got
    assert answer(layers.spec("g_liquidation_exchanges"), range="2h")["code"] == "400"


# -- over HTTP: the catalogue in effect, faults ----------------------------------------------------------------

def test_the_catalogue_is_read_per_request() -> None:
    path = layers.spec("global_long_short").path
    params = params_for(layers.spec("global_long_short"))
    with serve(now_ms=lambda: NOW) as emu:
        assert body(emu, path, **params)["code"] == "0"
        layers.reset()
        assert body(emu, path, **params)["code"] == "404"
        assert body(emu, "/api/futures/funding-rate/history", exchange="Binance", symbol="BTCUSDT",
                    interval="1h")["code"] == "0"


def test_faults_apply_to_an_own_layer_in_its_time_unit() -> None:
    premium, ratio = layers.spec("own_premium"), layers.spec("global_long_short")
    faults = [{"path": "/api/own/futures/global-*", "kind": "hole", "bars": 2, "at": 1},
              {"path": premium.path, "kind": "misaligned", "nth": 1},
              {"path": premium.path, "kind": "types", "nth": 2}]
    with serve(now_ms=lambda: NOW, faults=faults) as emu:
        holed = body(emu, ratio.path, **params_for(ratio, limit=5))["data"]
        shifted = body(emu, premium.path, **params_for(premium, limit=3))["data"]
        retyped = body(emu, premium.path, **params_for(premium, limit=3))["data"]
        clean = body(emu, premium.path, **params_for(premium, limit=3))["data"]
    assert len(holed) == 3 and holed[1]["time"] - holed[0]["time"] == 3 * HOUR_MS
    assert [r["time"] - c["time"] for r, c in zip(shifted, clean, strict=True)] == [1800] * 3  # 30 min, in s
    assert [r["time"] for r in retyped] == [c["time"] for c in clean]  # the time field is left alone
    assert all(isinstance(r["premium"], str) for r in retyped)


# -- end to end -----------------------------------------------------------------------------------------------

def test_run_preset_on_the_emulator_stores_an_own_layers_rows(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "btc.yaml").write_text(
        "coin: BTC\nplan: standard\ninterval: 1h\nhistory_days: 3\n"
        "layers:\n  open_interest: {symbol: BTC}\n  global_long_short: {exchange: Binance, symbol: BTCUSDT}\n",
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["--emulator", "run-preset", str(configs), "--store", "x.db"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "x.db") as con:
        rows = con.execute("SELECT time, global_account_long_percent, global_account_short_percent "
                           "FROM data_global_long_short ORDER BY time").fetchall()
    assert len(rows) == 3 * 24 + 1 and all(a + b == pytest.approx(100) for _, a, b in rows)
