"""Health checks on the rows of one series: pure functions, thresholds from `config.health`.

Each check returns a `Check` (name, ok, detail). A check that cannot be evaluated (too few
rows, a field the API did not send) is left out rather than passed or failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cgpreset.layers import spec
from cgpreset.models.config import HealthSpec
from cgpreset.plans import interval_ms
from cgpreset.store.base import Coverage, spans_in
from cgpreset.timeframes import bar_count

#: Fewer rows than this and "all zero" says nothing (one quiet hour has no liquidations).
ALL_ZERO_MIN_ROWS = 3
#: ETF flows exist on US trading days only: weekends and holidays are not gaps or staleness.
ETF_MAX_GAP_DAYS = 3  # missing days allowed between two flow days (a long weekend)
ETF_FRESH_DAYS = 5


@dataclass(frozen=True)
class Check:
    """The result of one check."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1.0)


def _fmt(x: float) -> str:
    return f"{x:,.2f}"


def check_min_rows(rows: Sequence[Any], min_rows: int) -> Check:
    ok = len(rows) >= min_rows
    return Check("min_rows", ok, f"{len(rows)} rows" + ("" if ok else f" < min_rows {min_rows}"))


def check_freshness(last_closed: int | None, interval: str, now_ms: int, freshness_intervals: float) -> Check:
    """The last closed bar opened within `freshness_intervals` intervals of now."""
    step = interval_ms(interval)
    if last_closed is None:
        return Check("freshness", False, "no closed bar")
    age = now_ms - last_closed
    ok = age <= freshness_intervals * step
    return Check("freshness", ok, f"last closed bar {age / step:.1f} intervals old"
                 + ("" if ok else f" > {freshness_intervals:g}"))


def freshness_limit(layer: str, health: HealthSpec) -> float:
    """How many intervals old the last closed bar may be: the config's health.freshness_intervals,
    at least ETF_FRESH_DAYS for a daily layer (the ETF flows: no bars on weekends and holidays)."""
    daily = spec(layer).interval_from == "1d"
    return max(health.freshness_intervals, ETF_FRESH_DAYS) if daily else health.freshness_intervals


def layer_freshness(layer: str, last_closed: int | None, interval: str, now_ms: int, health: HealthSpec) -> Check:
    """check_freshness as `layer` needs it: the ETF flows exist on trading days only, so they are
    measured in days with a long weekend's slack (ETF_FRESH_DAYS); every other layer in its bars."""
    bar = "1d" if spec(layer).interval_from == "1d" else interval
    return check_freshness(last_closed, bar, now_ms, freshness_limit(layer, health))


def check_gaps(times: Sequence[int], interval: str, max_gap_bars: int, previous: int | None = None) -> Check:
    """Times strictly ascending and no run of more than `max_gap_bars` missing bars.

    `previous` is the last bar stored before these (the series' cursor on an incremental run):
    a gap between it and the first new bar counts too.
    """
    step = interval_ms(interval)
    problems: list[str] = []
    if previous is not None and times and previous < times[0]:
        times = [previous, *times]
    for prev, cur in zip(times, times[1:], strict=False):
        if cur <= prev:
            problems.append(f"not ascending at {cur}")
            continue
        missing = (cur - prev) // step - 1
        if missing > max_gap_bars:
            problems.append(f"{missing} bars missing before {cur}")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return Check("gaps", False, "; ".join(problems[:3]) + more)
    return Check("gaps", True, f"{len(times)} bars ascending, no gap > {max_gap_bars}")


def check_coverage(coverage: Coverage | None, wanted: tuple[int, int], interval: str, max_gap_bars: int) -> Check:
    """The store holds every closed bar of `wanted` ([first bar, forming bar)), but known holes.

    A known hole (the API answered without it on KNOWN_HOLE_RUNS runs) passes, named; any other
    missing span fails (a hole this run found, an older part not fetched yet, bars the last
    answer did not reach): a series is never ok while the store lacks bars it could still get.
    Spans of at most `max_gap_bars` bars pass, as the config allows.
    """
    step = interval_ms(interval)
    _held, known, pending = spans_in(coverage, wanted)
    big = [p for p in pending if (p[1] - p[0]) // step > max_gap_bars]
    note = ""
    if known:
        bars = bar_count([(h.start, h.end) for h in known], step)
        note = (f"; {len(known)} known hole{'s' if len(known) > 1 else ''} ({bars} bar{'s' if bars > 1 else ''}, "
                f"first {_iso(known[0].start)}: the API answered without {'them' if bars > 1 else 'it'} "
                f"on {known[0].attempts} runs)")
    if big:
        bars = bar_count(big, step)
        return Check("gaps", False, f"{bars} bar{'s' if bars > 1 else ''} missing in {len(big)} span"
                                    f"{'s' if len(big) > 1 else ''} (first {_iso(big[0][0])} to {_iso(big[0][1])}); "
                                    f"the next run asks for {'them' if bars > 1 else 'it'} again{note}")
    wanted_bars = (wanted[1] - wanted[0]) // step
    return Check("gaps", True, f"every closed bar of the {wanted_bars} wanted is stored{note}")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def check_ohlc(rows: Sequence[dict[str, Any]], time_field: str = "time") -> Check:
    """low <= open, close <= high on every bar."""
    bad = [r[time_field] for r in rows if not (r["low"] <= min(r["open"], r["close"])
                                              and max(r["open"], r["close"]) <= r["high"])]
    if bad:
        return Check("ohlc", False, f"{len(bad)} bars break low <= open,close <= high (first at {bad[0]})")
    return Check("ohlc", True, "low <= open,close <= high")


def check_exchange_sum(rows: Sequence[dict[str, Any]], tolerance: float) -> Check | None:
    """The "All" row equals the sum of the exchange rows (liquidation exchange-list)."""
    total = [r for r in rows if r.get("exchange") == "All"]
    parts = [r for r in rows if r.get("exchange") != "All"]
    if not total or not parts:
        return None
    want = float(total[0]["liquidation_usd"])
    got = sum(float(r["liquidation_usd"]) for r in parts)
    ok = _close(want, got, tolerance)
    return Check("all_equals_sum", ok, f"All {_fmt(want)} vs sum of {len(parts)} exchanges {_fmt(got)}")


def check_long_short_total(rows: Sequence[dict[str, Any]], tolerance: float) -> Check | None:
    """long + short = total on every row (liquidation exchange-list)."""
    rows = [r for r in rows if "long_liquidation_usd" in r and "short_liquidation_usd" in r]
    if not rows:
        return None
    bad = [r.get("exchange", "?") for r in rows
           if not _close(float(r["long_liquidation_usd"]) + float(r["short_liquidation_usd"]),
                         float(r["liquidation_usd"]), tolerance)]
    if bad:
        return Check("long_short_total", False, f"long + short != total for {', '.join(map(str, bad[:5]))}")
    return Check("long_short_total", True, f"long + short = total on {len(rows)} rows")


def check_etf_tickers(rows: Sequence[dict[str, Any]], tolerance: float) -> Check | None:
    """A day's flow_usd equals the sum of its tickers' flow_usd (null tickers skipped)."""
    bad: list[int] = []
    seen = 0
    for r in rows:
        tickers = r.get("etf_flows")
        if not isinstance(tickers, list) or not tickers:
            continue
        seen += 1
        got = sum(float(t["flow_usd"]) for t in tickers if isinstance(t, dict) and t.get("flow_usd") is not None)
        if not _close(float(r["flow_usd"]), got, tolerance):
            bad.append(int(r["timestamp"]))
    if not seen:
        return None
    if bad:
        return Check("etf_sum", False, f"{len(bad)} days where flow_usd != sum of tickers (first at {bad[0]})")
    return Check("etf_sum", True, f"flow_usd = sum of tickers on {seen} days")


def check_all_zero(rows: Sequence[dict[str, Any]], fields: Iterable[str]) -> Check | None:
    """Flag a series whose every value is zero (CoinGlass has sent such series)."""
    if len(rows) < ALL_ZERO_MIN_ROWS:
        return None
    fields = tuple(fields)
    values = [float(r[f]) for r in rows for f in fields if r.get(f) is not None]
    if not values:
        return None
    ok = any(v != 0 for v in values)
    return Check("all_zero", ok, "has non-zero values" if ok else f"all {len(values)} values are zero")


def run_checks(
    layer: str,
    rows: Sequence[dict[str, Any]],
    *,
    interval: str,
    health: HealthSpec,
    now_ms: int,
    last_closed: int | None,
    time_field: str = "time",
    previous: int | None = None,
    complete: bool = True,
) -> list[Check]:
    """Every check that applies to the layer, over the rows this run received (ascending).

    `previous`: the series' cursor before this run (gaps at the run boundary count).
    `complete=False` (a skipped or failed series): only checks of the rows that did arrive;
    no row count or freshness verdict on data the run never asked for.
    """
    ls = spec(layer)
    wants = set(ls.checks)
    out: list[Check | None] = [check_min_rows(rows, health.min_rows) if complete else None]
    if "exchange_sum" in wants:
        out.append(check_exchange_sum(rows, health.tolerance))
    if "long_short_total" in wants:
        out.append(check_long_short_total(rows, health.tolerance))
    # The ETF flows exist on trading days only: weekends and holidays are neither gaps nor staleness.
    daily = ls.interval_from == "1d"
    bar = "1d" if daily else interval
    if "gaps" in wants:
        times = [int(r[time_field]) for r in rows]
        out.append(check_gaps(times, bar, max(health.max_gap_bars, ETF_MAX_GAP_DAYS) if daily
                              else health.max_gap_bars, previous))
    if "freshness" in wants and complete and (rows or last_closed or not daily):
        out.append(layer_freshness(layer, last_closed, interval, now_ms, health))
    if "etf_sum" in wants:
        out.append(check_etf_tickers(rows, health.tolerance))
    if "ohlc" in wants and rows:
        out.append(check_ohlc(rows, time_field))
    usd = usd_columns(layer)
    if usd and rows:
        out.append(check_negative_usd({f: [r.get(f) for r in rows] for f in usd}))
    if "all_zero" in wants and health.flag_all_zero:
        out.append(check_all_zero(rows, ls.value_fields))
    return [c for c in out if c is not None]


def check_negative_usd(columns: dict[str, Sequence[Any]]) -> Check | None:
    """USD amounts (OI, liquidations, volumes, flows' prices) are never negative: a finding if one is.

    `columns`: a USD column's name -> its values. Funding (percent) and ETF net flows may be negative.
    """
    if not columns:
        return None
    bad = {name: sum(1 for v in values if v is not None and v < 0) for name, values in columns.items()}
    bad = {k: n for k, n in bad.items() if n}
    if bad:
        return Check("negative_usd", False, "negative USD values: " + ", ".join(f"{n} in {k}" for k, n in bad.items()))
    return Check("negative_usd", True, f"no negative values in {', '.join(columns)}")


def usd_columns(layer: str) -> tuple[str, ...]:
    """The layer's API fields holding USD amounts that cannot be negative (ETF net flows can)."""
    return tuple(c.field for c in spec(layer).columns if c.unit == "USD" and c.name != "flow_usd")


def run_table_checks(
    layer: str,
    rows: Sequence[tuple[Any, ...]],
    *,
    interval: str,
    health: HealthSpec,
    now_ms: int,
    last_closed: int | None,
    previous: int | None = None,
    complete: bool = True,
    gaps: bool = True,
) -> list[Check]:
    """`run_checks` over a time-series layer's typed rows as stored: (time, its values in the
    layer's column order, closed) tuples, ascending. No row becomes a dict. `gaps=False`: the
    caller judges gaps from the store's coverage instead (check_coverage)."""
    ls = spec(layer)
    wants = set(ls.checks) - (set() if gaps else {"gaps"})
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(len(ls.columns) + 2)]
    times = cols[0]
    by_field = {c.field: cols[i + 1] for i, c in enumerate(ls.columns)}
    out: list[Check | None] = [check_min_rows(rows, health.min_rows) if complete else None]
    if "gaps" in wants:
        out.append(check_gaps(list(times), interval, health.max_gap_bars, previous))
    if "freshness" in wants and complete:
        out.append(check_freshness(last_closed, interval, now_ms, health.freshness_intervals))
    if "ohlc" in wants and rows:
        o, h, lo, c = (by_field[k] for k in ("open", "high", "low", "close"))
        bad = [t for t, o_, h_, l_, c_ in zip(times, o, h, lo, c, strict=True)
               if not (l_ <= min(o_, c_) and max(o_, c_) <= h_)]
        out.append(Check("ohlc", False, f"{len(bad)} bars break low <= open,close <= high (first at {bad[0]})")
                   if bad else Check("ohlc", True, "low <= open,close <= high"))
    out.append(check_negative_usd({f: by_field[f] for f in usd_columns(layer)}) if rows else None)
    if "all_zero" in wants and health.flag_all_zero and len(rows) >= ALL_ZERO_MIN_ROWS:
        values = [v for f in ls.value_fields for v in by_field[f] if v is not None]
        if values:
            ok = any(v != 0 for v in values)
            out.append(Check("all_zero", ok, "has non-zero values" if ok else f"all {len(values)} values are zero"))
    return [c for c in out if c is not None]
