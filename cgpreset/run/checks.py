"""Health checks on the rows of one series: pure functions, thresholds from `config.health`.

One implementation, driven by the layer's definition (its `checks`, its columns' units, `signed`
and `all_zero`), for every caller: run-preset, `health`'s shots (`series_checks`) and the report
(`run_checks` over stored rows). Rows come as dicts or as the layer table's tuples; both become
one column `Frame` first, so the verdicts cannot depend on the shape.

Each check returns a `Check` (name, ok, detail). A check that cannot be evaluated (too few
rows, a field the API did not send) is left out rather than passed or failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cgpreset.api.rows import number_or_none
from cgpreset.layers import LayerSpec, spec
from cgpreset.models.config import HealthSpec
from cgpreset.plans import DAY_MS, interval_ms
from cgpreset.store.base import Coverage, spans_in
from cgpreset.timeframes import bar_count

if TYPE_CHECKING:
    from cgpreset.run.series import Series

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


@dataclass(frozen=True)
class Frame:
    """A series' rows as columns: API field -> values, row-aligned (None where a row has none).

    Every check reads a Frame, whichever shape the rows came in (`frame`), so one implementation
    of each check gives the same verdicts for the engine's tuples, an answer's dicts and the
    report's stored rows.
    """

    times: Sequence[Any]
    values: Mapping[str, Sequence[Any]]

    def __len__(self) -> int:
        return len(self.times)

    def col(self, name: str) -> Sequence[Any]:
        return self.values.get(name) or (None,) * len(self.times)

    def since(self, t: int) -> Frame:
        """The rows dated `t` or later."""
        keep = [i for i, x in enumerate(self.times) if x is not None and x >= t]
        return Frame([self.times[i] for i in keep], {k: [v[i] for i in keep] for k, v in self.values.items()})


def frame(ls: LayerSpec, rows: Sequence[Any], time_field: str = "time") -> Frame:
    """`rows` as a Frame: dicts keyed by API field name, or the layer table's tuples as a Page
    carries them: (time, [row key], the layer's column values in order, [closed])."""
    if not rows:
        return Frame((), {})
    if isinstance(rows[0], tuple):
        cols = list(zip(*rows, strict=True))
        at = 2 if ls.row_key else 1
        values: dict[str, Sequence[Any]] = {c.field: cols[at + i] for i, c in enumerate(ls.columns)}
        if ls.row_key:
            values[ls.row_key] = cols[1]
        return Frame(cols[0], values)
    names = {f.name for f in ls.fields} | ({ls.row_key} if ls.row_key else set())
    return Frame([r.get(time_field) for r in rows], {n: [r.get(n) for r in rows] for n in names})


def check_ohlc(f: Frame) -> Check:
    """low <= open, close <= high on every bar (a bar missing one of them is not judged)."""
    bad = [t for t, o, h, lo, c in zip(f.times, *(f.col(k) for k in ("open", "high", "low", "close")), strict=True)
           if None not in (o, h, lo, c) and not (lo <= min(o, c) and max(o, c) <= h)]
    if bad:
        return Check("ohlc", False, f"{len(bad)} bars break low <= open,close <= high (first at {bad[0]})")
    return Check("ohlc", True, "low <= open,close <= high")


def check_exchange_sum(f: Frame, tolerance: float) -> Check | None:
    """The "All" row equals the sum of the exchange rows (liquidation exchange-list)."""
    pairs = [(e, v) for e, v in zip(f.col("exchange"), f.col("liquidation_usd"), strict=True) if v is not None]
    total = [v for e, v in pairs if e == "All"]
    parts = [v for e, v in pairs if e != "All"]
    if not total or not parts:
        return None
    want, got = float(total[0]), sum(float(v) for v in parts)
    ok = _close(want, got, tolerance)
    return Check("all_equals_sum", ok, f"All {_fmt(want)} vs sum of {len(parts)} exchanges {_fmt(got)}")


def check_long_short_total(f: Frame, tolerance: float) -> Check | None:
    """long + short = total on every row that has all three (liquidation exchange-list)."""
    rows = [r for r in zip(f.col("exchange"), f.col("long_liquidation_usd"), f.col("short_liquidation_usd"),
                           f.col("liquidation_usd"), strict=True) if None not in r[1:]]
    if not rows:
        return None
    bad = [ex or "?" for ex, long, short, total in rows if not _close(float(long) + float(short), float(total),
                                                                      tolerance)]
    if bad:
        return Check("long_short_total", False, f"long + short != total for {', '.join(map(str, bad[:5]))}")
    return Check("long_short_total", True, f"long + short = total on {len(rows)} rows")


def check_etf_tickers(f: Frame, tolerance: float, field: str = "etf_flows") -> Check | None:
    """A day's flow_usd equals the sum of its tickers' flow_usd (null tickers skipped); `field`:
    the row's list of tickers (the layer's `detail`)."""
    bad: list[int] = []
    seen = 0
    for t, flow, tickers in zip(f.times, f.col("flow_usd"), f.col(field), strict=True):
        if not isinstance(tickers, list) or not tickers or flow is None:
            continue
        seen += 1
        got = sum(v for x in tickers if isinstance(x, dict) and (v := number_or_none(x.get("flow_usd"))) is not None)
        if not _close(float(flow), got, tolerance):
            bad.append(int(t))
    if not seen:
        return None
    if bad:
        return Check("etf_sum", False, f"{len(bad)} days where flow_usd != sum of tickers (first at {bad[0]})")
    return Check("etf_sum", True, f"flow_usd = sum of tickers on {seen} days")


def check_all_zero(f: Frame, fields: Iterable[str]) -> Check | None:
    """Flag a series whose every value is zero (CoinGlass has sent such series)."""
    if len(f) < ALL_ZERO_MIN_ROWS:
        return None
    values = [float(v) for name in fields for v in f.col(name) if v is not None]
    if not values:
        return None
    ok = any(v != 0 for v in values)
    return Check("all_zero", ok, "has non-zero values" if ok else f"all {len(values)} values are zero")


def run_checks(
    layer: str,
    rows: Sequence[Any],
    *,
    interval: str,
    health: HealthSpec,
    now_ms: int,
    last_closed: int | None,
    time_field: str = "time",
    previous: int | None = None,
    complete: bool = True,
    gaps: bool = True,
    since: int | None = None,
) -> list[Check]:
    """Every check the layer's definition lists, over the rows this run received (ascending),
    as dicts or as the layer table's tuples (see `frame`): the same verdicts either way.

    `previous`: the series' cursor before this run (gaps at the run boundary count).
    `complete=False` (a skipped or failed series): only checks of the rows that did arrive;
    no row count or freshness verdict on data the run never asked for. `gaps=False`: the caller
    judges gaps from the store's coverage instead (check_coverage). `since`: only rows dated then
    or later are checked (none: no verdict at all).
    """
    ls = spec(layer)
    f = frame(ls, rows, time_field)
    if since is not None:
        f = f.since(since)
        if not f:
            return []
    wants = set(ls.checks) - (set() if gaps else {"gaps"})
    out: list[Check | None] = [check_min_rows(f.times, health.min_rows) if complete else None]
    if "exchange_sum" in wants:
        out.append(check_exchange_sum(f, health.tolerance))
    if "long_short_total" in wants:
        out.append(check_long_short_total(f, health.tolerance))
    # A daily whole history (the ETF flows) exists on trading days only: weekends and holidays
    # are neither gaps nor staleness.
    daily = ls.interval_from == "1d"
    if "gaps" in wants:
        out.append(check_gaps([int(t) for t in f.times], "1d" if daily else interval,
                              max(health.max_gap_bars, ETF_MAX_GAP_DAYS) if daily else health.max_gap_bars, previous))
    if "freshness" in wants and complete and (f or last_closed or not daily):
        out.append(layer_freshness(layer, last_closed, interval, now_ms, health))
    if "etf_sum" in wants and ls.detail is not None:
        out.append(check_etf_tickers(f, health.tolerance, ls.detail.field))
    if "ohlc" in wants and f:
        out.append(check_ohlc(f))
    usd = usd_columns(layer)
    if usd and f:
        out.append(check_negative_usd({name: f.col(name) for name in usd}))
    if "all_zero" in wants and health.flag_all_zero:
        out.append(check_all_zero(f, ls.value_fields))
    return [c for c in out if c is not None]


def series_checks(s: Series, rows: Sequence[Any], *, now_ms: int, last_closed: int | None,
                  interval: str | None = None, previous: int | None = None, complete: bool = True,
                  gaps: bool = True) -> list[Check]:
    """`run_checks` as run-preset and a `health` shot apply them to one series' answer: with the
    series' health thresholds and time field, a whole history checked over its configs'
    history_days (`check_days`) only; `interval`: the one asked (a shot may ask the plan's floor)."""
    since = now_ms - s.check_days * DAY_MS if s.check_days and s.spec.whole_history else None
    return run_checks(s.layer, rows, interval=interval or s.interval, health=s.health, now_ms=now_ms,
                      last_closed=last_closed, time_field=s.endpoint.time_field or "time", previous=previous,
                      complete=complete, gaps=gaps, since=since)


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
    """The layer's API fields holding USD amounts that cannot be negative (a `signed` one, like the
    ETF net flows, can)."""
    return tuple(c.field for c in spec(layer).columns if c.unit == "USD" and not c.signed)
