"""REST behaviour of the emulator: history windows, plans, limits, rate limit, headers, universe."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cgpreset.emulator import serve
from cgpreset.emulator.data import INSTRUMENTS, TOP10_BY_OI
from cgpreset.plans import DAY_MS, HOUR_MS, MINUTE_MS, bar_open

from .test_emulator_support import NOW, MovableNow, body, get

FUNDING = "/api/futures/funding-rate/history"
OI_HIST = "/api/futures/open-interest/aggregated-history"
LIQ_HIST = "/api/futures/liquidation/aggregated-history"
TAKER = "/api/futures/aggregated-taker-buy-sell-volume/history"


@pytest.fixture
def now() -> MovableNow:
    return MovableNow()


@pytest.fixture
def emu(now: MovableNow) -> Any:
    with serve(plan="standard", seed=7, now_ms=now) as e:
        yield e


def data(emu: Any, path: str, **params: Any) -> Any:
    b = body(emu, path, **params)
    assert b["code"] == "0", b
    return b["data"]


# -- lifecycle -------------------------------------------------------------------------------------------

def test_starts_and_stops_fast_on_free_ports() -> None:
    started = time.monotonic()
    with serve() as emu:
        up = time.monotonic() - started
        assert emu.base_url.startswith("http://127.0.0.1:")
        assert emu.ws_url.startswith("ws://127.0.0.1:") and emu.ws_url.endswith("/ws-api")
        assert emu.plan == "standard" and len(emu.api_key) >= 16
        get(emu, "/api/futures/supported-coins")
        stopping = time.monotonic()
    assert up < 0.3
    assert time.monotonic() - stopping < 0.5


def test_given_api_key_is_used_and_never_recorded() -> None:
    with serve(api_key="my-secret-key-123") as emu:
        assert emu.api_key == "my-secret-key-123"
        get(emu, "/api/futures/supported-coins")
        get(emu, "/api/futures/supported-coins", key="wrong-key-456")
        rec = emu.recorded()
    assert [r.key_present for r in rec] == [True, True]
    assert [r.code for r in rec] == ["0", "400"]
    assert "my-secret-key-123" not in repr(rec) and "wrong-key-456" not in repr(rec)


def test_recorded_requests_and_reset(emu: Any) -> None:
    get(emu, FUNDING, exchange="Binance", symbol="SOLUSDT", interval="8h", limit=2)
    get(emu, "/api/futures/supported-coins", key=None)
    first, second = emu.recorded()
    assert first.path == FUNDING and first.params == {"exchange": "Binance", "symbol": "SOLUSDT",
                                                      "interval": "8h", "limit": "2"}
    assert (first.http_status, first.code, first.key_present) == (200, "0", True)
    assert (second.code, second.key_present) == ("401", False)
    assert second.t >= first.t
    emu.reset_records()
    assert emu.recorded() == []


# -- history windows --------------------------------------------------------------------------------------

def test_bars_are_aligned_ascending_and_the_last_one_is_forming(emu: Any) -> None:
    rows = data(emu, OI_HIST, symbol="SOL", interval="1h", limit=5)
    times = [r["time"] for r in rows]
    assert times == sorted(times) and len(times) == 5
    assert all(t % HOUR_MS == 0 for t in times)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {HOUR_MS}
    assert times[-1] == bar_open(NOW, "1h")


def test_closed_bars_never_change_the_forming_bar_does(emu: Any, now: MovableNow) -> None:
    before = data(emu, FUNDING, exchange="Binance", symbol="SOLUSDT", interval="1h", limit=4)
    now.value += 10 * MINUTE_MS
    after = data(emu, FUNDING, exchange="Binance", symbol="SOLUSDT", interval="1h", limit=4)
    assert before[:-1] == after[:-1]
    assert before[-1]["time"] == after[-1]["time"]
    assert before[-1] != after[-1]
    assert after[-2]["close"] == after[-1]["open"]  # a bar opens where the previous one closed


def test_a_bar_has_the_same_value_whatever_the_window(emu: Any) -> None:
    wide = data(emu, OI_HIST, symbol="BTC", interval="4h", limit=50)
    start = wide[10]["time"]
    narrow = data(emu, OI_HIST, symbol="BTC", interval="4h", start_time=start, limit=3)
    assert narrow == wide[10:13]


def test_end_time_is_exclusive(emu: Any) -> None:
    start = bar_open(NOW, "1d") - 10 * DAY_MS
    rows = data(emu, LIQ_HIST, exchange_list="Binance", symbol="BTC", interval="1d",
                start_time=start, end_time=start + 3 * DAY_MS)
    assert [r["time"] for r in rows] == [start, start + DAY_MS, start + 2 * DAY_MS]
    rows = data(emu, LIQ_HIST, exchange_list="Binance", symbol="BTC", interval="1d",
                start_time=start, end_time=start + 3 * DAY_MS + 1)
    assert len(rows) == 4


def test_limit_takes_the_newest_bars_without_start_and_the_oldest_with_it(emu: Any) -> None:
    end = bar_open(NOW, "1h") - 5 * HOUR_MS
    newest = data(emu, TAKER, exchange_list="Binance", symbol="ETH", interval="1h", end_time=end, limit=3)
    assert [r["time"] for r in newest] == [end - 3 * HOUR_MS, end - 2 * HOUR_MS, end - HOUR_MS]
    start = end - 48 * HOUR_MS
    oldest = data(emu, TAKER, exchange_list="Binance", symbol="ETH", interval="1h", start_time=start,
                  end_time=end, limit=3)
    assert [r["time"] for r in oldest] == [start, start + HOUR_MS, start + 2 * HOUR_MS]


def test_default_limit_is_1000_and_up_to_4500_is_accepted(emu: Any) -> None:
    assert len(data(emu, OI_HIST, symbol="BTC", interval="5m")) == 1000
    assert len(data(emu, OI_HIST, symbol="BTC", interval="5m", limit=4500)) == 4500
    too_many = body(emu, OI_HIST, symbol="BTC", interval="5m", limit=4501)
    assert too_many["code"] == "400" and "limit" in too_many["msg"]


@pytest.mark.parametrize(("plan", "interval", "days", "rows"), [
    ("hobbyist", "4h", 180, 1080),  # a real Hobbyist probe got 1080 rows for limit=2000 (spec §4)
    ("standard", "1m", 6, 6 * 1440),
    ("professional", "1h", 720, 720 * 24),
])
def test_history_depth_is_cut_to_the_plan(plan: str, interval: str, days: int, rows: int) -> None:
    with serve(plan=plan, now_ms=lambda: NOW) as emu:
        got = data(emu, OI_HIST, symbol="BTC", interval=interval, limit=4500 if rows > 4500 else 2000,
                   start_time=NOW - 2 * days * DAY_MS)
    assert got[0]["time"] >= NOW - days * DAY_MS
    assert len(got) == min(rows, 4500 if rows > 4500 else 2000)


def test_daily_history_goes_back_to_the_listing(emu: Any) -> None:
    rows = data(emu, OI_HIST, symbol="HYPE", interval="1d", start_time=0, limit=4500)
    assert rows[0]["time"] == 1732838400000  # 2024-11-29, HYPE's listing day in the universe


@pytest.mark.parametrize(("plan", "interval", "needed"), [
    ("hobbyist", "1h", "STANDARD"), ("hobbyist", "2h", "STANDARD"), ("startup", "15m", "STANDARD"),
    ("startup", "1m", "STANDARD"),
])
def test_interval_below_the_plan_floor_is_403(plan: str, interval: str, needed: str) -> None:
    with serve(plan=plan, now_ms=lambda: NOW) as emu:
        got = body(emu, FUNDING, exchange="Binance", symbol="BTCUSDT", interval=interval)
    assert got == {"code": "403", "msg": "The requested interval is not available for your current API plan.",
                   "details": {"upgrade_required": needed}}


@pytest.mark.parametrize(("plan", "interval"), [("hobbyist", "4h"), ("hobbyist", "1w"), ("startup", "30m"),
                                                ("standard", "1m")])
def test_intervals_at_or_above_the_floor_work(plan: str, interval: str) -> None:
    with serve(plan=plan, now_ms=lambda: NOW) as emu:
        assert data(emu, FUNDING, exchange="Binance", symbol="BTCUSDT", interval=interval, limit=2)


def test_unknown_interval_is_a_400_parameter_error(emu: Any) -> None:
    got = body(emu, FUNDING, exchange="Binance", symbol="BTCUSDT", interval="h8")
    assert got["code"] == "400" and "parameter" in got["msg"] and "interval" in got["msg"]


# -- plans and parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("plan", "allowed"), [("hobbyist", False), ("startup", False), ("standard", True),
                                               ("professional", True)])
def test_coins_markets_is_standard_and_up(plan: str, allowed: bool) -> None:
    with serve(plan=plan, now_ms=lambda: NOW) as emu:
        got = body(emu, "/api/futures/coins-markets")
        level = body(emu, "/api/user/account/subscription")["data"]["level"]
    assert level == plan.upper()
    assert (got["code"] == "0") is allowed
    if not allowed:
        assert got == {"code": "401", "msg": "Upgrade plan"}


def test_missing_params_name_the_first_missing_in_catalogue_order(emu: Any) -> None:
    got = body(emu, LIQ_HIST, interval="1h")
    assert got == {"code": "400", "msg": "Required String parameter 'exchange_list' is not present"}
    got = body(emu, LIQ_HIST, exchange_list="Binance", interval="1h")
    assert got["msg"] == "Required String parameter 'symbol' is not present"


@pytest.mark.parametrize("path", [FUNDING, OI_HIST, LIQ_HIST, TAKER])
def test_history_without_any_params_is_server_error(emu: Any, path: str) -> None:
    assert body(emu, path) == {"code": "500", "msg": "Server Error"}


def test_unknown_coin_on_coin_endpoints_is_empty_success(emu: Any) -> None:
    assert data(emu, OI_HIST, symbol="NOPE", interval="1h") == []
    assert data(emu, LIQ_HIST, exchange_list="Binance", symbol="BTCUSDT", interval="1h") == []  # a pair code
    assert data(emu, "/api/futures/open-interest/exchange-list", symbol="BTCUSDT") == []
    assert data(emu, "/api/futures/liquidation/exchange-list", symbol="BTCUSDT", range="1h") == []


@pytest.mark.parametrize(("exchange", "symbol"), [("Binance", "BTC"), ("Binance", "SOL-USDT"),
                                                  ("OKX", "HYPE-USDT-SWAP"), ("Kraken", "BTCUSDT")])
def test_unknown_pair_on_pair_endpoint_is_400(emu: Any, exchange: str, symbol: str) -> None:
    got = body(emu, FUNDING, exchange=exchange, symbol=symbol, interval="1h")
    assert got["code"] == "400" and got["msg"].startswith("The requested pair does not exist on the exchange.")


def test_unknown_path_is_404_with_http_200(emu: Any) -> None:
    resp = get(emu, "/api/futures/aggregated-liquidation/history")
    assert resp.status_code == 200
    assert resp.json() == {"code": "404", "msg": "Endpoint not found. Please refer to the API documentation: "
                                                 "https://docs.coinglass.com"}


def test_liquidation_exchange_list_needs_a_valid_range(emu: Any) -> None:
    assert body(emu, "/api/futures/liquidation/exchange-list", symbol="BTC", range="2h")["code"] == "400"


# -- rate limit and headers ---------------------------------------------------------------------------------

def test_headers_on_every_answer(emu: Any) -> None:
    for resp in (get(emu, "/api/futures/supported-coins"), get(emu, "/api/nope"),
                 get(emu, "/api/futures/supported-coins", key=None)):
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["API-KEY-MAX-LIMIT"] == "300"
    assert get(emu, "/api/futures/supported-coins").headers["API-KEY-USE-LIMIT"] == "3"


@pytest.mark.parametrize("status", [200, 429])
def test_rate_limit_per_key_in_a_sliding_minute(status: int) -> None:
    with serve(plan="hobbyist", rate_limit_status=status) as emu:
        get(emu, "/api/futures/supported-coins", key=None)  # no valid key: not counted
        get(emu, "/api/futures/supported-coins", key="bad-key-000")
        answers = [get(emu, "/api/futures/supported-coins") for _ in range(31)]
    assert [a.json()["code"] for a in answers[:30]] == ["0"] * 30
    assert [a.headers["API-KEY-USE-LIMIT"] for a in answers[:3]] == ["1", "2", "3"]
    last = answers[30]
    assert last.status_code == status
    assert last.content == b'{"code":"400","msg":"Too Many Requests"}'
    assert (last.headers["API-KEY-MAX-LIMIT"], last.headers["API-KEY-USE-LIMIT"]) == ("30", "30")


def test_latency_is_added_and_requests_are_served_in_parallel() -> None:
    with serve(latency_ms=200) as emu:
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: get(emu, "/api/futures/supported-coins").json()["code"], range(6)))
        elapsed = time.monotonic() - started
    assert codes == ["0"] * 6
    assert 0.2 <= elapsed < 0.6


# -- data ------------------------------------------------------------------------------------------------

def test_values_have_realistic_scale_and_sane_ohlc(emu: Any) -> None:
    btc = data(emu, OI_HIST, symbol="BTC", interval="1h", limit=200)
    sol = data(emu, OI_HIST, symbol="SOL", interval="1h", limit=200)
    funding = data(emu, FUNDING, exchange="Binance", symbol="SOLUSDT", interval="8h", limit=300)
    for rows in (btc, sol, funding):
        for r in rows:
            o, h, lo, c = (float(r[k]) for k in ("open", "high", "low", "close"))
            assert lo <= min(o, c) <= max(o, c) <= h
    assert all(3e10 < float(r["close"]) < 1.2e11 for r in btc)
    assert all(2e9 < float(r["close"]) < 1e10 for r in sol)
    closes = [float(r["close"]) for r in funding]
    assert all(-0.01 < f <= 0.01 for f in closes) and 0.004 < sum(closes) / len(closes) < 0.01
    liq = data(emu, LIQ_HIST, exchange_list="Binance,OKX,Bybit", symbol="BTC", interval="1d", limit=30)
    assert all(isinstance(r["aggregated_long_liquidation_usd"], float) for r in liq)
    assert 1e6 < sum(r["aggregated_long_liquidation_usd"] for r in liq) / 30 < 1e9


def test_same_seed_same_data_other_seed_other_data() -> None:
    params = {"exchange_list": "Binance", "symbol": "SOL", "interval": "4h", "limit": 20}
    with serve(seed=1, now_ms=lambda: NOW) as a, serve(seed=1, now_ms=lambda: NOW) as b, \
            serve(seed=2, now_ms=lambda: NOW) as c:
        assert data(a, LIQ_HIST, **params) == data(b, LIQ_HIST, **params) != data(c, LIQ_HIST, **params)


def test_top10_by_oi_differs_from_supported_coins_order(emu: Any) -> None:
    rows = data(emu, "/api/futures/coins-markets")
    by_oi = [r["symbol"] for r in sorted(rows, key=lambda r: -r["open_interest_usd"])][:10]
    assert tuple(by_oi) == TOP10_BY_OI
    assert "SOL" in by_oi
    assert by_oi != data(emu, "/api/futures/supported-coins")[:10]
    assert by_oi != [r["symbol"] for r in rows[:10]]  # coins-markets is not sorted by OI either
    assert len(data(emu, "/api/futures/coins-markets", per_page=10, page=2)) == 10


def test_resolver_relevant_gaps_and_instrument_ids(emu: Any) -> None:
    pairs = data(emu, "/api/futures/supported-exchange-pairs")
    listed = {ex: {r["base_asset"] for r in rows} for ex, rows in pairs.items()}
    ids = {ex: {r["instrument_id"] for r in rows} for ex, rows in pairs.items()}
    assert "HYPE" not in listed["OKX"] and "HYPE" in listed["Hyperliquid"]
    assert any(coin not in listed["Bybit"] for coin in TOP10_BY_OI)
    assert {"SOLUSDT", "SOLUSD_PERP", "SOLUSDT_261225", "SOLUSD_261225", "1000PEPEUSDT"} <= ids["Binance"]
    assert {"SOL-USDT-SWAP", "SOL-USD-SWAP", "SOL-USDT-261225"} <= ids["OKX"]
    assert {"SOLUSDT", "SOLUSD"} <= ids["Bybit"]
    assert "SOLUSDT_UMCBL" in ids["Bitget"] and "SOL_USDT" in ids["Gate"] and "SOL-USD" in ids["dYdX"]
    assert {"SOL", "kPEPE"} <= ids["Hyperliquid"]
    pepe = next(r for r in pairs["Binance"] if r["instrument_id"] == "1000PEPEUSDT")
    assert pepe["base_asset"] == "1000PEPE"
    assert data(emu, "/api/futures/supported-exchange-pairs", exchange="OKX") == {"OKX": pairs["OKX"]}
    small = [c for c in ("kPEPE", "FARTCOIN", "TAO", "ZKJ") if sum(c in s for s in listed.values()) <= 2]
    assert len(small) == 4
    assert sum(len(v) for v in INSTRUMENTS.values()) == sum(len(v) for v in pairs.values())


def test_exchange_lists_have_all_first(emu: Any) -> None:
    oi = data(emu, "/api/futures/open-interest/exchange-list", symbol="HYPE")
    assert oi[0]["exchange"] == "All" and "OKX" not in [r["exchange"] for r in oi]
    usd = [r["open_interest_usd"] for r in oi[1:]]
    assert usd == sorted(usd, reverse=True)
    assert oi[0]["open_interest_usd"] == pytest.approx(sum(usd))
    liq = data(emu, "/api/futures/liquidation/exchange-list", range="24h")
    total, rows = liq[0], liq[1:]
    assert total["exchange"] == "All"
    for r in liq:
        assert r["longLiquidation_usd"] + r["shortLiquidation_usd"] == pytest.approx(r["liquidation_usd"])
    assert total["liquidation_usd"] == pytest.approx(sum(r["liquidation_usd"] for r in rows))


def test_etf_history_is_daily_since_launch_and_sums(emu: Any) -> None:
    rows = data(emu, "/api/etf/bitcoin/flow-history")
    assert rows[0]["timestamp"] == 1704931200000
    assert NOW - rows[-1]["timestamp"] < 4 * DAY_MS
    assert 500 < len(rows) < (NOW - 1704931200000) // DAY_MS
    for r in rows:
        assert r["flow_usd"] == sum(f["flow_usd"] for f in r["etf_flows"])
        assert 20_000 < r["price_usd"] < 250_000
