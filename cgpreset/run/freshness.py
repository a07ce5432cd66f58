"""`cgpreset freshness`: is the stored data fresh? Judged from the store alone, with no request to the API.

`health` asks the API; this asks the store, which is what a stopped CronJob or a stream that
died leaves behind. For every series the configs produce: the open time of its last closed bar
stored (of its last snapshot, for a snapshot layer), its age in bars at `now_ms`, the limit (the
config's `health.freshness_intervals`; the daily ETF flows at least ETF_FRESH_DAYS, as run-preset
checks them), and what the store lacks of the series' wanted range: closed bars a run can still
fetch (`missing`) and known holes (the API answered without them on 3 runs). A series is stale
when its last bar is older than the limit, and "never fetched" when the store holds nothing of
it; missing bars and known holes are shown, not judged (run-preset's `gaps` check judges them).
`health --store` includes this verdict. Everything here is pure (no I/O, no clock) but
`read_freshness`, which reads the store (read-only).

JSON schema `cgpreset.freshness/1` (stable; fields are only ever added):

    {"schema", "store", "now" (ms), "plan" (the plan the wanted ranges are taken at), "exit_code",
     "fresh": n, "stale": n, "never_fetched": n,
     "series": [{"id", "coin", "layer", "interval", "status": "fresh" | "stale" | "never fetched",
                 "last_bar" (ms, the open of the last closed bar, or null), "last_bar_ts" (ISO UTC),
                 "age_bars", "age_seconds" (since that bar opened), "limit_bars",
                 "missing_bars", "known_hole_bars" (null for snapshots and whole-history layers),
                 "holes": [{"start", "end", "bars", "attempts", "known", "reason"}]}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cgpreset.clock import wall_ms
from cgpreset.errors import ExitCode
from cgpreset.models.config import CoinConfig
from cgpreset.plans import Plan, interval_ms
from cgpreset.run.checks import freshness_limit
from cgpreset.run.series import Series, expand, wanted_range
from cgpreset.store import open_store
from cgpreset.store.base import Coverage, Cursor, Hole, KnownPlan, spans_in
from cgpreset.store.dsn import StoreLocation, display
from cgpreset.timeframes import bar_count, intersect

SCHEMA = "cgpreset.freshness/1"
FRESH, STALE, NEVER = "fresh", "stale", "never fetched"
#: Series named in one summary line, at most (the rest are counted).
NAMED = 3


@dataclass(frozen=True)
class SeriesFreshness:
    """How fresh one series is in the store at `now`."""

    series: Series
    last_bar: int | None  # open time (ms) of the last closed bar stored; of the last snapshot for a snapshot
    age_bars: float | None
    limit_bars: float
    missing_bars: int | None = None  # None: no wanted range (a snapshot, a whole-history layer)
    known_hole_bars: int | None = None
    holes: tuple[Hole, ...] = ()

    @property
    def status(self) -> str:
        if self.last_bar is None or self.age_bars is None:
            return NEVER
        return STALE if self.age_bars > self.limit_bars else FRESH

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        s, step = self.series, interval_ms(self.series.interval)
        return {
            "id": s.id, "coin": s.coin, "layer": s.layer, "interval": s.interval, "status": self.status,
            "last_bar": self.last_bar, "last_bar_ts": iso(self.last_bar),
            "age_bars": None if self.age_bars is None else round(self.age_bars, 2),
            "age_seconds": None if self.last_bar is None else round((now_ms - self.last_bar) / 1000),
            "limit_bars": self.limit_bars, "missing_bars": self.missing_bars,
            "known_hole_bars": self.known_hole_bars,
            "holes": [{"start": h.start, "end": h.end, "bars": (h.end - h.start) // step, "attempts": h.attempts,
                       "known": h.known, "reason": h.reason} for h in self.holes],
        }


@dataclass(frozen=True)
class FreshnessReport:
    """Every series' freshness; exit 0 when all are fresh, 1 when one is stale or was never fetched."""

    series: list[SeriesFreshness]
    now_ms: int
    plan: Plan
    store: str
    missing_store: bool = False  # the SQLite file does not exist: nothing was ever fetched into it

    def having(self, status: str) -> list[SeriesFreshness]:
        return [f for f in self.series if f.status == status]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if all(f.status == FRESH for f in self.series) else ExitCode.FINDINGS

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "store": self.store, "now": self.now_ms, "plan": self.plan.value,
            "exit_code": int(self.exit_code),
            **{key: len(self.having(status)) for key, status in (("fresh", FRESH), ("stale", STALE),
                                                                  ("never_fetched", NEVER))},
            "series": [f.as_dict(self.now_ms) for f in self.series],
        }

    def problems(self) -> str:
        """`1 stale (funding/SOL/… 3.2 bars > 2), 1 never fetched (…)`; empty when all are fresh."""
        parts = []
        for status in (STALE, NEVER):
            these = self.having(status)
            if these:
                named = ", ".join(f"{f.series.id}{_over(f)}" for f in these[:NAMED])
                more = f", and {len(these) - NAMED} more" if len(these) > NAMED else ""
                parts.append(f"{len(these)} {status} ({named}{more})")
        return ", ".join(parts)

    def summary(self) -> str:
        """The line under the table (the whole output under -q), and health's `data:` line."""
        fresh, missing = len(self.having(FRESH)), sum(f.missing_bars or 0 for f in self.series)
        known = sum(f.known_hole_bars or 0 for f in self.series)
        verdict = "" if self.exit_code == ExitCode.OK else f" — not fresh: {self.problems()}"
        return (f"{fresh}/{len(self.series)} series fresh in {self.store} at {iso(self.now_ms)}{verdict} | "
                f"{missing} bar{'' if missing == 1 else 's'} missing (a run fetches them), {known} in known holes")


def _over(f: SeriesFreshness) -> str:
    return "" if f.age_bars is None else f" {f.age_bars:.1f} bars > {f.limit_bars:g}"


def iso(ms: int | None) -> str | None:
    """An instant as ISO-8601 UTC to the minute (`2026-12-07T22:00Z`), or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def series_freshness(s: Series, cursor: Cursor | None, coverage: Coverage | None, *, now_ms: int,
                     plan: Plan) -> SeriesFreshness:
    """One series: its last bar and age, the limit, and what the store lacks of its wanted range."""
    step = interval_ms(s.interval)
    last = None if cursor is None else cursor.latest if s.spec.snapshot else cursor.last_closed
    age = None if last is None else max(0.0, (now_ms - last) / step)
    limit = freshness_limit(s.layer, s.health)
    holes = tuple(coverage.holes) if coverage else ()
    if not s.is_history:  # a snapshot or the whole history per answer: no range of bars to hold
        return SeriesFreshness(s, last, age, limit, holes=holes)
    lo, end = wanted_range(s, now_ms=now_ms, plan=plan)
    closed = (lo, end - step)
    _held, known, pending = spans_in(coverage, closed)
    known_bars = bar_count(intersect([(h.start, h.end) for h in known], closed), step)
    return SeriesFreshness(s, last, age, limit, bar_count(pending, step), known_bars, holes)


def judge_plan(known: KnownPlan | None, configs: Sequence[tuple[Any, CoinConfig]]) -> Plan:
    """The plan the wanted ranges are taken at: the one the store's last run recorded, else the
    lowest the configs were written for (no request to the API)."""
    if known is not None:
        try:
            return Plan(known.plan)
        except ValueError:  # a plan name this version does not know
            pass
    return min((cfg.plan for _, cfg in configs), key=lambda p: p.rank, default=Plan.STANDARD)


def freshness(series: Sequence[Series], positions: Mapping[str, Cursor], coverage: Mapping[str, Coverage], *,
              now_ms: int, plan: Plan, store: str) -> FreshnessReport:
    """Every series' freshness, from what the store holds (its positions and coverage)."""
    return FreshnessReport([series_freshness(s, positions.get(s.id), coverage.get(s.id), now_ms=now_ms, plan=plan)
                            for s in series], now_ms, plan, store)


def read_freshness(configs: Sequence[tuple[Path, CoinConfig]], location: StoreLocation, *,
                   now_ms: int | None = None) -> FreshnessReport:
    """The configs' series judged from the store at `location`, opened read-only (never created or
    changed). A missing SQLite file holds nothing: every series is "never fetched" (`missing_store`)."""
    now = wall_ms() if now_ms is None else now_ms
    name, series = display(location), expand(configs)
    if isinstance(location, Path) and not location.exists():
        return FreshnessReport([series_freshness(s, None, None, now_ms=now, plan=judge_plan(None, configs))
                                for s in series], now, judge_plan(None, configs), name, missing_store=True)
    with open_store(location, readonly=True) as st:
        positions, coverage, known = st.positions(), st.coverage(), st.known_plan()
    return freshness(series, positions, coverage, now_ms=now, plan=judge_plan(known, configs), store=name)
