"""Health checks: each one passing and failing."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset.api.catalogue import endpoint
from cgpreset.api.rows import decode_rows
from cgpreset.layers import REGISTRY, spec
from cgpreset.models.config import HealthSpec
from cgpreset.run.checks import (
    check_all_zero,
    check_etf_tickers,
    check_exchange_sum,
    check_freshness,
    check_gaps,
    check_long_short_total,
    check_min_rows,
    check_ohlc,
    frame,
    run_checks,
)
from tests.conftest import load_fixture

H = 3_600_000


def liq_rows() -> list[dict]:
    return decode_rows(endpoint("liquidation-exchange-list"),
                       load_fixture("futures_liquidation_exchange-list.json")["data"]).dicts()


def consistent_liq_rows() -> list[dict]:
    rows = [r for r in liq_rows() if r["exchange"] != "All"]
    total = {k: sum(r[k] for r in rows) for k in ("liquidation_usd", "long_liquidation_usd",
                                                   "short_liquidation_usd")}
    return [{"exchange": "All", **total}, *rows]


def liq(rows: list[dict]) -> Any:
    return frame(spec("liquidation_exchanges"), rows)


def etf(rows: list[dict]) -> Any:
    return frame(spec("etf_flows"), rows, "timestamp")


def ohlc(t: int, o: float = 1, h: float = 2, low: float = 0.5, c: float = 1.5) -> dict:
    return {"time": t, "open": o, "high": h, "low": low, "close": c}


def test_min_rows() -> None:
    assert check_min_rows([1, 2], 2).ok
    assert not check_min_rows([1], 2).ok


def test_freshness() -> None:
    now = 100 * H + 10
    assert check_freshness(99 * H, "1h", now, 2).ok
    bad = check_freshness(95 * H, "1h", now, 2)
    assert not bad.ok and "5.0 intervals old > 2" in bad.detail
    assert not check_freshness(None, "1h", now, 2).ok


def test_gaps_and_order() -> None:
    assert check_gaps([0, H, 2 * H], "1h", 0).ok
    gap = check_gaps([0, H, 4 * H], "1h", 0)
    assert not gap.ok and "2 bars missing" in gap.detail
    assert check_gaps([0, H, 4 * H], "1h", 2).ok
    assert not check_gaps([0, 2 * H, H], "1h", 5).ok  # not ascending
    assert not check_gaps([0, 0], "1h", 5).ok  # duplicate time


def test_ohlc() -> None:
    assert check_ohlc(frame(spec("funding"), [ohlc(0), ohlc(H, o=2, c=0.5)])).ok
    bad = check_ohlc(frame(spec("funding"), [ohlc(0), ohlc(H, o=3)]))  # open above high
    assert not bad.ok and "first at 3600000" in bad.detail
    assert not check_ohlc(frame(spec("funding"), [ohlc(0, c=0.1)])).ok  # close below low


def test_exchange_sum_all_row() -> None:
    assert check_exchange_sum(liq(consistent_liq_rows()), 0.01).ok
    # the fixture is truncated to 3 exchanges: the real "All" total exceeds their sum
    bad = check_exchange_sum(liq(liq_rows()), 0.01)
    assert bad is not None and not bad.ok and bad.detail.startswith("All 97,418.70 vs sum of 3 exchanges")
    zero_all = consistent_liq_rows()
    zero_all[0]["liquidation_usd"] = 0.0  # a known CoinGlass failure mode
    assert not check_exchange_sum(liq(zero_all), 0.01).ok
    assert check_exchange_sum(liq([r for r in liq_rows() if r["exchange"] != "All"]), 0.01) is None


def test_long_short_total() -> None:
    assert check_long_short_total(liq(liq_rows()), 0.001).ok  # the real capture is consistent
    rows = copy.deepcopy(liq_rows())
    rows[1]["long_liquidation_usd"] = 0.0  # long/short zeroed while the total is right
    bad = check_long_short_total(liq(rows), 0.01)
    assert bad is not None and not bad.ok and "HTX" in bad.detail


def test_etf_flow_equals_sum_of_tickers() -> None:
    rows = decode_rows(endpoint("etf-bitcoin-flow-history"),
                       load_fixture("etf_bitcoin_flow-history.json")["data"]).dicts()
    # the fixture is a composite of two captures and lacks some tickers (574.8M of 655.3M)
    assert not check_etf_tickers(etf(rows), 0.01).ok  # type: ignore[union-attr]
    rows[0]["flow_usd"] = sum(t["flow_usd"] for t in rows[0]["etf_flows"])
    ok = check_etf_tickers(etf(rows), 0.01)
    assert ok is not None and ok.ok
    rows[0]["flow_usd"] += 50_000_000
    bad = check_etf_tickers(etf(rows), 0.01)
    assert bad is not None and not bad.ok
    assert check_etf_tickers(etf([{"timestamp": 0, "flow_usd": 1.0}]), 0.01) is None  # no tickers: not evaluated
    nulls = [{"timestamp": 0, "flow_usd": 5.0, "etf_flows": [{"etf_ticker": "A", "flow_usd": 5},
                                                               {"etf_ticker": "B", "flow_usd": None}]}]
    assert check_etf_tickers(etf(nulls), 0.01).ok  # type: ignore[union-attr]


def test_all_zero() -> None:
    fields = ("aggregated_long_liquidation_usd", "aggregated_short_liquidation_usd")
    zero = [{"time": t, fields[0]: 0, fields[1]: 0.0} for t in range(3)]
    bad = check_all_zero(frame(spec("liquidation"), zero), fields)
    assert bad is not None and not bad.ok
    zero[1][fields[0]] = 10.0
    assert check_all_zero(frame(spec("liquidation"), zero), fields).ok  # type: ignore[union-attr]
    assert check_all_zero(frame(spec("liquidation"), zero[:2]), fields) is None  # too few rows to say


def test_run_checks_by_layer() -> None:
    now = 10 * H + 5
    rows = [ohlc(t * H) for t in range(11)]
    names = [c.name for c in run_checks("funding", rows, interval="1h", health=HealthSpec(), now_ms=now,
                                        last_closed=9 * H)]
    assert names == ["min_rows", "gaps", "freshness", "ohlc", "all_zero"]
    liq = run_checks("liquidation_exchanges", consistent_liq_rows(), interval="1h", health=HealthSpec(),
                     now_ms=now, last_closed=None)
    assert [c.name for c in liq] == ["min_rows", "all_equals_sum", "long_short_total", "negative_usd", "all_zero"]
    assert all(c.ok for c in liq)
    no_zero = run_checks("funding", rows, interval="1h", health=HealthSpec(flag_all_zero=False), now_ms=now,
                         last_closed=9 * H)
    assert "all_zero" not in [c.name for c in no_zero]


def test_gap_at_the_run_boundary_counts() -> None:
    # the store's cursor was bar 10; this run's first bar is 14: bars 11..13 are missing
    assert check_gaps([14 * H, 15 * H], "1h", 0).ok  # blind without the cursor
    gap = check_gaps([14 * H, 15 * H], "1h", 0, previous=10 * H)
    assert not gap.ok and gap.detail == f"3 bars missing before {14 * H}"
    assert check_gaps([10 * H, 11 * H], "1h", 0, previous=10 * H).ok  # restarted at the cursor itself
    assert check_gaps([11 * H, 12 * H], "1h", 0, previous=10 * H).ok


def test_incomplete_series_gets_no_row_count_or_freshness_verdict() -> None:
    rows = [{"time": t * H, "open": 1, "high": 2, "low": 0.5, "close": 1} for t in range(3)]
    health = HealthSpec(min_rows=100)
    now = 1000 * H
    full = run_checks("funding", rows, interval="1h", health=health, now_ms=now, last_closed=2 * H)
    assert {c.name for c in full if not c.ok} == {"min_rows", "freshness"}
    partial = run_checks("funding", rows, interval="1h", health=health, now_ms=now, last_closed=2 * H,
                         complete=False)
    assert [c.name for c in partial] == ["gaps", "ohlc", "all_zero"] and all(c.ok for c in partial)


@st.composite
def stored_rows(draw: st.DrawFn) -> tuple[Any, list[dict], list[tuple]]:
    """A layer of the catalogue and rows of it as the engine holds them (the layer table's tuples)
    and as dicts by API field (an answer's, the report's): ascending bars with gaps and repeats,
    values zero, negative, equal or null where the field may be."""
    ls = draw(st.sampled_from(list(REGISTRY.values())))
    step = 24 * H if ls.whole_history else H
    times = sorted(draw(st.lists(st.integers(0, 30), max_size=12)))
    value = st.one_of(st.sampled_from([0.0, 1.0, 2.0, -1.0]), st.floats(-1e6, 1e6, allow_nan=False))
    dicts: list[dict] = []
    for t in times:
        row = {"time": 1000 * step + t * step}
        if ls.row_key:
            row[ls.row_key] = draw(st.sampled_from(["All", "Binance", "OKX"]))
        for f in ls.fields:
            if f.stored:
                row[f.name] = draw(st.one_of(value, st.none()) if not f.required else value)
        dicts.append(row)
    closed = draw(st.integers(0, len(dicts)))
    tuples = [(r["time"], *([r[ls.row_key]] if ls.row_key else []), *(r.get(c.field) for c in ls.columns),
               *([] if ls.row_key else [int(i < closed)])) for i, r in enumerate(dicts)]
    return ls, dicts, tuples


@settings(max_examples=300, deadline=None)
@given(stored_rows(), st.integers(0, 3), st.integers(0, 2), st.sampled_from([0.0, 0.01]), st.booleans(),
       st.booleans(), st.booleans(), st.one_of(st.none(), st.integers(990, 1040)), st.integers(1000, 1040))
def test_the_same_verdicts_whichever_shape_the_rows_come_in(
        case: Any, min_rows: int, max_gap: int, tolerance: float, flag_all_zero: bool, complete: bool, gaps: bool,
        previous: int | None, now: int) -> None:
    ls, dicts, tuples = case
    step = 24 * H if ls.whole_history else H
    health = HealthSpec(min_rows=min_rows, max_gap_bars=max_gap, tolerance=tolerance, flag_all_zero=flag_all_zero)
    interval = "1d" if ls.whole_history else "1h"
    kw: dict[str, Any] = {"interval": interval, "health": health, "now_ms": now * step + 5,
                          "last_closed": max((r["time"] for r in dicts), default=None),
                          "previous": None if previous is None else previous * step, "complete": complete,
                          "gaps": gaps}
    assert run_checks(ls.id, dicts, **kw) == run_checks(ls.id, tuples, **kw)
