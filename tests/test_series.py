"""Config → series expansion and request planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgpreset.models.config import CoinConfig
from cgpreset.plans import DAY_MS, HOUR_MS, Plan, bar_open
from cgpreset.run.series import MACRO, expand, floor_problems, plan_run, plan_series
from tests.fakes import NOW  # 25 minutes into an hour (shared with the fake client)


def make_config(coin: str = "SOL", *, interval: str = "1h", history_days: int = 30, plan: str = "standard",
                **overrides: Any) -> CoinConfig:
    """A full config with every layer (tests build variants by overriding)."""
    data: dict[str, Any] = {
        "coin": coin,
        "plan": plan,
        "interval": interval,
        "history_days": history_days,
        "layers": {
            "funding": {"exchange": "Binance", "symbol": f"{coin}USDT"},
            "open_interest": {"symbol": coin},
            "liquidation": {"symbol": coin, "exchange_list": ["Binance", "OKX", "Bybit"]},
            "taker_volume": {"symbol": coin, "exchange_list": ["Binance", "OKX", "Bybit"]},
            "liquidation_exchanges": {"symbol": coin, "range": "1h",
                                      "exchanges": ["All", "Binance", "OKX", "Bybit"]},
            "etf_flows": {"asset": "bitcoin"},
        },
    }
    data.update(overrides)
    return CoinConfig.model_validate(data)


def configs(*coins: str, **kw: Any) -> list[tuple[Path, CoinConfig]]:
    return [(Path(f"{c.lower()}.yaml"), make_config(c, **kw)) for c in coins]


def test_expand_one_series_per_layer_and_etf_once() -> None:
    series = expand(configs("SOL", "BTC", "ETH"))
    assert len(series) == 3 * 5 + 1
    etf = [s for s in series if s.layer == "etf_flows"]
    assert len(etf) == 1
    assert etf[0].coin == MACRO and etf[0].configs == ("SOL", "BTC", "ETH")
    assert series[-1] is etf[0]  # macro last
    funding = next(s for s in series if s.layer == "funding" and s.coin == "SOL")
    assert funding.param_dict == {"exchange": "Binance", "symbol": "SOLUSDT", "interval": "1h"}
    assert funding.id == "funding/SOL/Binance:SOLUSDT/1h"
    liq = next(s for s in series if s.layer == "liquidation" and s.coin == "BTC")
    assert liq.param_dict["exchange_list"] == "Binance,OKX,Bybit"
    ex = next(s for s in series if s.layer == "liquidation_exchanges" and s.coin == "ETH")
    assert ex.keep == ("All", "Binance", "OKX", "Bybit") and not ex.is_history


def test_expand_merges_identical_configs() -> None:
    assert len(expand(configs("SOL", "SOL"))) == 6


def test_first_run_backfills_history_days_in_pages() -> None:
    s = next(s for s in expand(configs("SOL", history_days=90)) if s.layer == "open_interest")
    p = plan_series(s, cursor=None, now_ms=NOW, plan=Plan.STANDARD)
    # 90 days of 1h bars + the forming bar = 2161 bars = 3 pages of 1000
    assert p.backfill and p.requests == 3
    assert p.windows[0][0] == bar_open(NOW - 90 * DAY_MS, "1h")
    assert p.windows[-1][1] == bar_open(NOW, "1h") + HOUR_MS
    assert all(b - a <= 1000 * HOUR_MS for a, b in p.windows)


def test_backfill_capped_by_plan() -> None:
    # the config was written for Standard, the key turns out to be Hobbyist
    s = next(s for s in expand(configs("SOL", interval="4h", history_days=360)) if s.layer == "funding")
    p = plan_series(s, cursor=None, now_ms=NOW, plan=Plan.HOBBYIST)
    assert p.windows[0][0] == bar_open(NOW - 180 * DAY_MS, "4h")
    assert "capped at 180 days" in p.notes[0]


def test_incremental_run_is_one_request_from_the_cursor() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    last_closed = bar_open(NOW, "1h") - HOUR_MS
    p = plan_series(s, cursor=last_closed, now_ms=NOW, plan=Plan.STANDARD)
    assert not p.backfill and p.requests == 1
    # the last closed bar again (our clock may run ahead of the API's) and the forming bar
    assert p.windows == ((last_closed, bar_open(NOW, "1h") + HOUR_MS),)


def test_incremental_restarts_at_the_cursor_even_if_it_looks_forming() -> None:
    # the stored cursor is the bar our clock calls forming (clock skew): it is asked for again
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    p = plan_series(s, cursor=bar_open(NOW, "1h"), now_ms=NOW, plan=Plan.STANDARD)
    assert p.requests == 1 and p.windows[0][0] == bar_open(NOW, "1h")


def test_incremental_pages_through_a_gap() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    p = plan_series(s, cursor=NOW - 50 * DAY_MS, now_ms=NOW, plan=Plan.STANDARD)
    assert p.requests == 2  # 1200 bars since the cursor


def test_full_refresh_ignores_cursor() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    p = plan_series(s, cursor=NOW - HOUR_MS, now_ms=NOW, plan=Plan.STANDARD, full_refresh=True)
    assert p.backfill and p.windows[0][0] == bar_open(NOW - 30 * DAY_MS, "1h")


def test_run_plan_counts_requests_and_minutes() -> None:
    series = expand(configs(*[f"C{i}" for i in range(10)]))
    rp = plan_run(series, cursors={}, now_ms=NOW, plan=Plan.STANDARD)
    # 10 coins x 4 history layers x 1 page + 10 snapshots + 1 ETF
    assert rp.requests == 40 + 10 + 1
    assert abs(rp.minutes - 51 / 300) < 1e-9
    cursors = {s.id: bar_open(NOW, s.interval) - HOUR_MS for s in series if s.is_history}
    assert plan_run(series, cursors=cursors, now_ms=NOW, plan=Plan.STANDARD).requests == 51


def test_same_coin_twice_keeps_every_wish() -> None:
    # two configs for SOL: the exchange rows both keep, and the strictest thresholds
    a = make_config("SOL", health={"freshness_intervals": 3, "min_rows": 1})
    data = a.model_dump(mode="json")
    data["layers"]["liquidation_exchanges"] = {"symbol": "SOL", "range": "1h", "exchanges": ["All", "Binance"]}
    first = CoinConfig.model_validate(data)
    data["layers"]["liquidation_exchanges"]["exchanges"] = ["All", "OKX"]
    data["health"] = {"freshness_intervals": 0.5, "min_rows": 5, "max_gap_bars": 2, "flag_all_zero": False,
                      "tolerance": 0.001}
    second = CoinConfig.model_validate(data)
    series = expand([(Path("a/sol.yaml"), first), (Path("b/sol.yaml"), second)])
    assert len(series) == 6
    ex = next(s for s in series if s.layer == "liquidation_exchanges")
    assert ex.keep == ("All", "Binance", "OKX") and ex.configs == ("SOL", "SOL")
    funding = next(s for s in series if s.layer == "funding")
    assert funding.health.model_dump() == {"freshness_intervals": 0.5, "min_rows": 5, "max_gap_bars": 0,
                                           "flag_all_zero": True, "tolerance": 0.001}


def test_floor_problems_name_file_and_field() -> None:
    cfg = make_config("SOL")  # standard, 1h
    data = make_config("BTC", interval="4h").model_dump(mode="json")
    data["layers"]["funding"]["interval"] = "1h"
    override = CoinConfig.model_validate(data)
    problems = floor_problems([(Path("d1/sol.yaml"), cfg), (Path("d1/btc.yaml"), override)], Plan.HOBBYIST)
    assert problems == [
        "d1/sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
        "d1/btc.yaml: layers.funding.interval: 1h is below the hobbyist plan's floor (4h)",
    ]
    assert floor_problems([(Path("sol.yaml"), cfg)], Plan.STARTUP) == []
    # history deeper than the plan keeps is capped with a note, not a problem
    assert floor_problems(configs("SOL", interval="4h", history_days=360), Plan.HOBBYIST) == []
