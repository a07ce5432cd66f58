"""Contract tests: the emulator answers with the same envelopes, row keys and value types as the
real samples in tests/fixtures, and reproduces the observed error bodies byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cgpreset.emulator import serve

from .conftest import load_fixture
from .test_emulator_support import NOW, body, get, shape

# (fixture, path, params, kind): REAL samples must match the envelope keys exactly (no `msg`);
# DOCS examples carry "msg": "success", which real success answers mostly omit (spec §2.1), so
# `msg` is left out of the envelope comparison for them, except the taker one, which we mirror.
CONTRACTS = [
    ("futures_funding-rate_history.json", "/api/futures/funding-rate/history",
     {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "1d", "limit": 3}, "real"),
    ("futures_open-interest_aggregated-history.json", "/api/futures/open-interest/aggregated-history",
     {"symbol": "BTC", "interval": "1m", "limit": 2}, "real"),
    ("futures_liquidation_aggregated-history.json", "/api/futures/liquidation/aggregated-history",
     {"exchange_list": "Binance", "symbol": "BTC", "interval": "1d", "limit": 3}, "real"),
    ("futures_liquidation_exchange-list.json", "/api/futures/liquidation/exchange-list",
     {"symbol": "BTC", "range": "1h"}, "real"),
    ("futures_open-interest_exchange-list.json", "/api/futures/open-interest/exchange-list",
     {"symbol": "BTC"}, "real"),
    ("futures_supported-coins.json", "/api/futures/supported-coins", {}, "real"),
    ("etf_bitcoin_flow-history.json", "/api/etf/bitcoin/flow-history", {}, "real"),
    ("user_account_subscription.docs-example.json", "/api/user/account/subscription", {}, "real"),
    ("futures_supported-exchanges.docs-example.json", "/api/futures/supported-exchanges", {}, "real"),
    ("futures_supported-exchange-pairs.docs-example.json", "/api/futures/supported-exchange-pairs", {}, "docs"),
    ("futures_coins-markets.docs-example.json", "/api/futures/coins-markets", {"per_page": 5}, "docs"),
    ("futures_aggregated-taker-buy-sell-volume_history.docs-example.json",
     "/api/futures/aggregated-taker-buy-sell-volume/history",
     {"exchange_list": "Binance,OKX,Bybit", "symbol": "BTC", "interval": "1h", "limit": 3}, "real"),
]


@pytest.fixture(scope="module")
def emu() -> Any:
    with serve(plan="standard", seed=7, now_ms=lambda: NOW) as e:
        yield e


def _rows(data: Any) -> list[Any]:
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return [row for rows in data.values() for row in rows]  # exchange -> instruments
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize(("fixture", "path", "params", "kind"), CONTRACTS, ids=[c[0] for c in CONTRACTS])
def test_same_envelope_row_keys_and_types_as_sample(emu: Any, fixture: str, path: str, params: dict[str, Any],
                                                    kind: str) -> None:
    sample = load_fixture(fixture)
    got = body(emu, path, **params)
    if kind == "real":
        assert list(got) == list(sample)
    else:
        assert [k for k in got if k != "msg"] == [k for k in sample if k != "msg"]
    assert got["code"] == sample["code"] == "0"
    assert type(got["data"]) is type(sample["data"])
    rows, sample_rows = _rows(got["data"]), _rows(sample["data"])
    assert rows, "the emulator returned no rows"
    for row in rows:
        assert shape(row) == shape(sample_rows[0])


def test_open_interest_rows_also_match_the_observed_row(emu: Any) -> None:
    observed = load_fixture("futures_open-interest_aggregated-history.rows-observed.json")[0]
    got = body(emu, "/api/futures/open-interest/aggregated-history", symbol="SOL", interval="4h", limit=5)
    assert all(shape(r) == shape(observed) for r in got["data"])


def test_supported_exchange_pairs_keys_are_observed_exchange_names(emu: Any) -> None:
    observed = set(load_fixture("futures_supported-exchange-pairs.keys-observed.json"))
    got = body(emu, "/api/futures/supported-exchange-pairs")["data"]
    assert set(got) <= observed
    assert {"Binance", "OKX", "Bybit", "Bitget", "Gate", "Hyperliquid", "dYdX"} == set(got)


def test_supported_coins_start_like_the_sample(emu: Any) -> None:
    sample = load_fixture("futures_supported-coins.json")["data"]
    got = body(emu, "/api/futures/supported-coins")["data"]
    assert got[:9] == sample[:9] == ["BTC", "ETH", "SOL", "XRP", "DOGE", "SUI", "HYPE", "ADA", "BNB"]
    assert [c for c in sample if c in got] == got  # same relative order as the real list
    assert {"1000PEPE", "kPEPE"} <= set(got)


def test_etf_first_day_is_the_real_one(emu: Any) -> None:
    sample = load_fixture("etf_bitcoin_flow-history.json")["data"][0]
    first = body(emu, "/api/etf/bitcoin/flow-history")["data"][0]
    assert {k: v for k, v in first.items() if k != "etf_flows"} == {k: v for k, v in sample.items()
                                                                     if k != "etf_flows"}
    # The capture kept 7 tickers; the emulator adds the rest so that flow_usd is their sum.
    assert first["etf_flows"][:7] == sample["etf_flows"]
    assert sum(f["flow_usd"] for f in first["etf_flows"]) == first["flow_usd"]


# -- error bodies -------------------------------------------------------------------------------------

def _compact(b: dict[str, Any]) -> bytes:
    return json.dumps(b, separators=(",", ":"), ensure_ascii=False).encode()


def _observed(msg_start: str) -> dict[str, Any]:
    for entry in load_fixture("_errors_observed.json"):
        if "body" in entry and str(entry["body"].get("msg", "")).startswith(msg_start):
            return entry
    raise AssertionError(f"no observed error starting {msg_start!r}")


# Reproduced byte for byte (message start in _errors_observed.json, how to trigger it).
REPRODUCED = [
    ("Too Many Requests", "hobbyist", "rate"),
    ("Server Error", "standard", "/api/futures/funding-rate/history"),
    ("Required String parameter 'range'", "standard", "/api/futures/liquidation/exchange-list"),
    ("Required String parameter 'symbol'", "standard", "/api/futures/open-interest/exchange-list"),
    ("Required String parameter 'exchange' ", "standard", "/api/futures/funding-rate/history?symbol=SOLUSDT"),
    ("Required String parameter 'exchange_list'", "standard",
     "/api/futures/liquidation/aggregated-history?symbol=BTC&interval=4h"),
    ("API key missing.", "standard", "nokey"),
    ("Invalid API key provided", "standard", "badkey"),
    ("Upgrade plan", "hobbyist", "/api/futures/coins-markets"),
]
# Not reproduced: "Please upgrade to startup|standard|professional" (2025-05 wording; the emulator
# speaks the 2026 "Upgrade plan"); the 404, pair and interval-floor messages were recorded
# truncated or without a code, so only their recorded part is compared (see below).


@pytest.mark.parametrize(("msg", "plan", "how"), REPRODUCED, ids=[r[0] for r in REPRODUCED])
def test_observed_error_bodies_are_reproduced_byte_for_byte(msg: str, plan: str, how: str) -> None:
    expected = _observed(msg)
    with serve(plan=plan, seed=7, now_ms=lambda: NOW) as emu:
        if how == "rate":
            for _ in range(30):
                get(emu, "/api/futures/supported-coins")
            resp = get(emu, "/api/futures/supported-coins")
        elif how == "nokey":
            resp = get(emu, "/api/futures/supported-coins", key=None)
        elif how == "badkey":
            resp = get(emu, "/api/futures/supported-coins", key="not-the-key")
        else:
            resp = get(emu, how)
    assert resp.status_code == 200
    assert str(expected["http_status"]).startswith("200")
    assert resp.content == _compact(expected["body"])


@pytest.mark.parametrize(("msg", "path"), [
    ("Endpoint not found.", "/api/futures/basis"),
    ("The requested pair does not exist", "/api/futures/funding-rate/history?exchange=Binance&symbol=BTC&interval=1d"),
])
def test_truncated_observed_messages_match_their_recorded_part(emu: Any, msg: str, path: str) -> None:
    expected = _observed(msg)["body"]
    got = get(emu, path).json()
    assert got["code"] == expected["code"]
    assert got["msg"].startswith(expected["msg"].split("[...")[0])
    assert list(got) == ["code", "msg"]


def test_interval_floor_error_matches_the_observed_message_and_code() -> None:
    expected = _observed("The requested interval")["body"]
    with serve(plan="hobbyist", now_ms=lambda: NOW) as emu:
        resp = get(emu, "/api/futures/aggregated-taker-buy-sell-volume/history",
                   exchange_list="Binance", symbol="BTC", interval="1h")
    assert resp.content == (b'{"code":"403","msg":"' + expected["msg"].encode()
                            + b'","details":{"upgrade_required":"STANDARD"}}')  # as recorded (S9)
