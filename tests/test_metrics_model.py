"""The metrics builder (pure): a RunResult and the store's coverage in, a fresh registry out.

The bar counts are checked against an oracle that knows each bar's state, for any layout of held
bars, known holes and pending holes around the wanted range (hypothesis).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset.plans import HOUR_MS, Plan
from cgpreset.run.metrics import exposition, run_registry
from cgpreset.run.outcome import FAILED, OK, RunResult, SeriesResult
from cgpreset.run.series import Series, expand, wanted_range
from cgpreset.store.base import Coverage, Hole
from cgpreset.timeframes import KNOWN_HOLE_RUNS, runs_of
from tests.fakes import NOW
from tests.test_metrics import parse, values
from tests.test_series import configs

END_S = NOW / 1000 + 90  # the run took a minute and a half


def _series(layer: str, **kw: Any) -> Series:
    return next(s for s in expand(configs("SOL", history_days=2, **kw)) if s.layer == layer)


def _result(*results: SeriesResult, plan: Plan | None = Plan.STANDARD) -> RunResult:
    return RunResult(list(results), plan, {"requests": 3}, 90.0, NOW, source="emulator")


def _samples(result: RunResult, coverage: dict[str, Coverage] | None = None, **kw: Any) -> Any:
    return parse(exposition(run_registry(result, coverage=coverage or {}, end_s=END_S, **kw)))


def test_series_metrics_carry_the_interval_and_the_contracts_new_names() -> None:
    funding = _series("funding")
    lo, end = wanted_range(funding, now_ms=NOW, plan=Plan.STANDARD)
    forming = end - HOUR_MS
    held = Coverage(((lo, lo + 10 * HOUR_MS), (lo + 15 * HOUR_MS, forming)),
                    (Hole(lo + 10 * HOUR_MS, lo + 12 * HOUR_MS, attempts=KNOWN_HOLE_RUNS),
                     Hole(lo + 12 * HOUR_MS, lo + 13 * HOUR_MS, attempts=1)))
    last = forming - HOUR_MS
    samples = _samples(_result(SeriesResult(funding, rows=5, requests=2, last_closed=last)),
                       {funding.id: held}, shards=4)
    labels = {"coin": "SOL", "layer": "funding", "series": funding.id, "interval": "1h"}

    def one(name: str) -> float:
        (value,) = values(samples, name, **labels)
        return value

    assert one("cgpreset_series_missing_bars") == 3  # the pending hole and the two bars nobody asked for yet
    assert one("cgpreset_series_known_hole_bars") == 2
    assert one("cgpreset_series_last_closed_bar_timestamp_seconds") == last / 1000
    assert one("cgpreset_series_age_bars") == (END_S * 1000 - last) / HOUR_MS
    assert one("cgpreset_series_interval_seconds") == 3600
    assert one("cgpreset_series_freshness_limit_bars") == funding.health.freshness_intervals
    assert one("cgpreset_series_rows") == 5 and one("cgpreset_series_requests") == 2
    assert values(samples, "cgpreset_series_outcome", outcome="ok", **labels) == [1.0]
    assert values(samples, "cgpreset_run_start_timestamp_seconds") == [NOW / 1000]
    assert values(samples, "cgpreset_run_end_timestamp_seconds") == [END_S]
    assert values(samples, "cgpreset_run_shards") == [4]
    assert values(samples, "cgpreset_run_source", source="emulator") == [1]


def test_a_series_with_nothing_stored_misses_its_whole_range_and_has_no_age() -> None:
    funding, oi = _series("funding"), _series("open_interest")
    lo, end = wanted_range(oi, now_ms=NOW, plan=Plan.STANDARD)
    samples = _samples(_result(SeriesResult(funding, outcome=FAILED), SeriesResult(oi)))
    assert values(samples, "cgpreset_series_missing_bars", layer="open_interest") == [(end - lo) / HOUR_MS - 1]
    assert values(samples, "cgpreset_series_known_hole_bars", layer="open_interest") == [0]
    for name in ("cgpreset_series_age_bars", "cgpreset_series_last_closed_bar_timestamp_seconds",
                 "cgpreset_series_last_bar_age_seconds", "cgpreset_series_latency_seconds"):
        assert values(samples, name) == [], name
    assert values(samples, "cgpreset_series_outcome", layer="funding", outcome="failed") == [1.0]
    assert values(samples, "cgpreset_run_series", outcome="failed") == [1]


def test_snapshots_and_unknown_plans_have_no_bar_counts() -> None:
    snapshot = _series("liquidation_exchanges")
    assert not snapshot.is_history
    samples = _samples(_result(SeriesResult(snapshot, rows=4)))
    assert values(samples, "cgpreset_series_rows", layer="liquidation_exchanges") == [4]
    assert values(samples, "cgpreset_series_missing_bars") == []
    refused = _samples(_result(SeriesResult(_series("funding"), outcome=FAILED), plan=None))
    assert values(refused, "cgpreset_series_missing_bars") == []  # the wanted range depends on the plan
    assert values(refused, "cgpreset_series_interval_seconds", layer="funding") == [3600]


def test_the_daily_etf_flows_allow_the_age_their_check_allows() -> None:
    etf = _series("etf_flows")
    samples = _samples(_result(SeriesResult(etf, last_closed=NOW - 3 * 24 * HOUR_MS)))
    assert values(samples, "cgpreset_series_freshness_limit_bars", layer="etf_flows") == [5]  # weekends
    assert values(samples, "cgpreset_series_interval_seconds", layer="etf_flows") == [86400]


def test_each_call_builds_its_own_registry() -> None:
    """No process-wide state: a second run's metrics never carry the first one's series."""
    funding, oi = _series("funding"), _series("open_interest")
    first = exposition(run_registry(_result(SeriesResult(funding)), coverage={}, end_s=END_S))
    second = exposition(run_registry(_result(SeriesResult(oi)), coverage={}, end_s=END_S))
    assert "funding" in first and "funding" not in second


HELD, KNOWN, PENDING, ABSENT = "held", "known", "pending", "absent"


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["1h", "4h"]), st.integers(0, 8),
       st.lists(st.sampled_from([HELD, KNOWN, PENDING, ABSENT]), min_size=1, max_size=80))
def test_missing_and_known_bars_count_each_wanted_bar_by_its_state(interval: str, before: int,
                                                                   states: list[str]) -> None:
    """Bars laid out from `before` bars ahead of the wanted range, past its end: the metrics count
    exactly the wanted closed bars that are pending or absent, and those in known holes."""
    funding = _series("funding", interval=interval)
    step = HOUR_MS * int(interval[:-1])
    lo, end = wanted_range(funding, now_ms=NOW, plan=Plan.STANDARD)
    bars = {lo + (i - before) * step: state for i, state in enumerate(states)}
    spans = runs_of([t for t, s in bars.items() if s == HELD], step)
    holes = [Hole(a, b, attempts=KNOWN_HOLE_RUNS if state == KNOWN else 1)
             for state in (KNOWN, PENDING) for a, b in runs_of([t for t, s in bars.items() if s == state], step)]
    cov = Coverage(tuple(spans), tuple(sorted(holes)))
    samples = _samples(_result(SeriesResult(funding, outcome=OK)), {funding.id: cov})
    wanted = range(lo, end - step, step)  # the closed bars: the forming one is never missing
    assert values(samples, "cgpreset_series_missing_bars") == [
        sum(1 for t in wanted if bars.get(t, ABSENT) in (PENDING, ABSENT))]
    assert values(samples, "cgpreset_series_known_hole_bars") == [sum(1 for t in wanted if bars.get(t) == KNOWN)]
