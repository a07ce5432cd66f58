"""Config → series expansion and request planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgpreset.models.config import CoinConfig
from cgpreset.plans import DAY_MS, HOUR_MS, Plan, bar_open, interval_ms
from cgpreset.run.series import MACRO, Series, expand, floor_problems, plan_run, plan_series
from cgpreset.store.base import Coverage, Hole
from cgpreset.timeframes import KNOWN_HOLE_RUNS
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


def stored(s: Series, upto: int, since: int | None = None, holes: tuple[Hole, ...] = ()) -> Coverage:
    """A store holding the closed bars of `s` from `since` (default: 30 days back) to `upto`."""
    first = bar_open(NOW - 30 * DAY_MS, s.interval) if since is None else since
    return Coverage(((first, upto + interval_ms(s.interval)),), holes)


def test_first_run_backfills_history_days_in_pages_newest_first() -> None:
    s = next(s for s in expand(configs("SOL", history_days=90)) if s.layer == "open_interest")
    p = plan_series(s, coverage=None, now_ms=NOW, plan=Plan.STANDARD)
    # 90 days of 1h bars + the forming bar = 2161 bars = 3 pages of 1000
    assert p.backfill and p.requests == 3
    assert p.windows[0][1] == bar_open(NOW, "1h") + HOUR_MS  # the newest window first
    assert p.windows[-1][0] == bar_open(NOW - 90 * DAY_MS, "1h")
    assert all(b - a <= 1000 * HOUR_MS for a, b in p.windows)
    assert [w[0] for w in p.windows] == sorted((w[0] for w in p.windows), reverse=True)


def test_backfill_capped_by_plan() -> None:
    # the config was written for Standard, the key turns out to be Hobbyist: its first whole 4h bar
    s = next(s for s in expand(configs("SOL", interval="4h", history_days=360)) if s.layer == "funding")
    p = plan_series(s, coverage=None, now_ms=NOW, plan=Plan.HOBBYIST)
    assert p.windows[-1][0] == bar_open(NOW - 180 * DAY_MS, "4h") + 4 * HOUR_MS
    assert "capped at 180 days" in p.notes[0]


def test_incremental_run_is_one_request_from_the_last_closed_bar() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    last_closed = bar_open(NOW, "1h") - HOUR_MS
    p = plan_series(s, coverage=stored(s, last_closed), now_ms=NOW, plan=Plan.STANDARD)
    assert not p.backfill and p.requests == 1
    # the last closed bar again (our clock may run ahead of the API's) and the forming bar
    assert p.windows == ((last_closed, bar_open(NOW, "1h") + HOUR_MS),)


def test_incremental_restarts_at_the_last_bar_held_even_if_it_looks_forming() -> None:
    # the stored last bar is the bar our clock calls forming (clock skew): it is asked for again
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    p = plan_series(s, coverage=stored(s, bar_open(NOW, "1h")), now_ms=NOW, plan=Plan.STANDARD)
    assert p.requests == 1 and p.windows[0][0] == bar_open(NOW, "1h")


def test_a_store_far_behind_fetches_only_the_wanted_range() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")  # history_days 30
    old = bar_open(NOW - 50 * DAY_MS, "1h")
    p = plan_series(s, coverage=stored(s, old, since=old - 10 * DAY_MS), now_ms=NOW, plan=Plan.STANDARD)
    assert p.backfill and p.requests == 1 and p.windows[0][0] == bar_open(NOW - 30 * DAY_MS, "1h")


def test_full_refresh_ignores_what_is_held_and_known_holes() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    hole = Hole(NOW - 10 * DAY_MS, NOW - 9 * DAY_MS, attempts=KNOWN_HOLE_RUNS)
    p = plan_series(s, coverage=stored(s, NOW - HOUR_MS, holes=(hole,)), now_ms=NOW, plan=Plan.STANDARD,
                    full_refresh=True)
    assert p.backfill and p.windows[-1][0] == bar_open(NOW - 30 * DAY_MS, "1h")


def test_a_hole_inside_the_range_is_asked_for_with_the_newest_bars_first() -> None:
    s = next(s for s in expand(configs("SOL")) if s.layer == "funding")
    lo, last = bar_open(NOW - 30 * DAY_MS, "1h"), bar_open(NOW, "1h") - HOUR_MS
    gap = (lo + 100 * HOUR_MS, lo + 103 * HOUR_MS)  # 3 bars, 617 bars before the last one
    p = plan_series(s, coverage=Coverage(((lo, gap[0]), (gap[1], last + HOUR_MS))), now_ms=NOW,
                    plan=Plan.STANDARD)
    # one window reaches from the newest bar back over the gap (within 1000 bars): still 1 request
    assert p.requests == 1 and p.windows[0] == (gap[0], bar_open(NOW, "1h") + HOUR_MS)
    assert "filling 3 missing bars in 1 gap" in p.notes


def test_a_known_hole_is_not_asked_again_and_a_pending_one_is() -> None:
    s = next(s for s in expand(configs("SOL", history_days=90)) if s.layer == "funding")
    lo, last = bar_open(NOW - 90 * DAY_MS, "1h"), bar_open(NOW, "1h") - HOUR_MS
    gap = (lo + 10 * HOUR_MS, lo + 12 * HOUR_MS)  # far older than 1000 bars: a window of its own
    held = ((lo, gap[0]), (gap[1], last + HOUR_MS))
    pending = plan_series(s, coverage=Coverage(held, (Hole(*gap, attempts=KNOWN_HOLE_RUNS - 1),)), now_ms=NOW,
                          plan=Plan.STANDARD)
    assert pending.windows == ((last, bar_open(NOW, "1h") + HOUR_MS), gap)
    known = plan_series(s, coverage=Coverage(held, (Hole(*gap, attempts=KNOWN_HOLE_RUNS),)), now_ms=NOW,
                        plan=Plan.STANDARD)
    assert known.windows == ((last, bar_open(NOW, "1h") + HOUR_MS),)
    assert any("1 known hole (2 bars) not asked again" in n for n in known.notes)


def test_a_deeper_history_fetches_the_older_part_once_held_it_is_not_asked_again() -> None:
    s = next(s for s in expand(configs("SOL", history_days=150)) if s.layer == "funding")
    last = bar_open(NOW, "1h") - HOUR_MS
    p = plan_series(s, coverage=stored(s, last), now_ms=NOW, plan=Plan.STANDARD)  # 30 of 150 days held
    assert p.requests == 1 + 3 and any("backfilling 120 older days" in n for n in p.notes)
    assert p.windows[-1][0] == bar_open(NOW - 150 * DAY_MS, "1h")
    # interrupted after the first older window: the rest is still missing, and asked for next run
    first_older = p.windows[1]
    after = Coverage(((first_older[0], last + HOUR_MS),))
    q = plan_series(s, coverage=after, now_ms=NOW, plan=Plan.STANDARD)
    assert q.requests == 1 + 2 and q.windows[-1][0] == bar_open(NOW - 150 * DAY_MS, "1h")


def test_run_plan_counts_requests_and_minutes() -> None:
    series = expand(configs(*[f"C{i}" for i in range(10)]))
    rp = plan_run(series, coverage={}, now_ms=NOW, plan=Plan.STANDARD)
    # 10 coins x 4 history layers x 1 page + 10 snapshots + 1 ETF
    assert rp.requests == 40 + 10 + 1
    assert abs(rp.minutes - 51 / 300) < 1e-9
    held = {s.id: stored(s, bar_open(NOW, s.interval) - HOUR_MS) for s in series if s.is_history}
    assert plan_run(series, coverage=held, now_ms=NOW, plan=Plan.STANDARD).requests == 51


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
