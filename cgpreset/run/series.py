"""Config → series expansion and request planning (pure: no I/O, no clock).

A *series* is one request stream: one layer of one coin (one exchange pair for funding). Series
that would send identical requests (the ETF flows, the same for every coin) are merged, so the
run makes them once. A *plan* is the list of time windows a series needs this run: from its
cursor (the last closed bar in the store) to the forming bar, or a backfill of the config's
history_days, capped by what the plan keeps, in windows of at most 1000 bars.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cgpreset.api.catalogue import MAX_LIMIT, Endpoint, layer_endpoint
from cgpreset.layers import LayerId, LayerSpec, layer_names, spec
from cgpreset.models.config import CoinConfig, HealthSpec
from cgpreset.plans import DAY_MS, Plan, bar_open, history_days, interval_ms
from cgpreset.store.base import Coverage, SeriesRef, spans_in
from cgpreset.timeframes import KNOWN_HOLE_RUNS, bar_count, windows_newest_first

#: The coin label of series that do not belong to one coin (macro layers).
MACRO = "*"


@dataclass(frozen=True)
class Series:
    """One request stream of a run; `configs` are the coins whose configs asked for it."""

    layer: LayerId
    coin: str
    instrument: str
    interval: str
    endpoint_id: str
    params: tuple[tuple[str, Any], ...]
    history_days: int | None
    health: HealthSpec
    configs: tuple[str, ...] = ()
    keep: tuple[str, ...] | None = None  # liquidation_exchanges: exchange rows to store
    check_days: int | None = None  # checks look at rows of the last N days (the configs' history_days)

    @property
    def id(self) -> str:
        return f"{self.layer}/{self.coin}/{self.instrument}/{self.interval}"

    @property
    def spec(self) -> LayerSpec:
        """The layer's registry entry."""
        return spec(self.layer)

    @property
    def ref(self) -> SeriesRef:
        """The series as the store's `series` table holds it."""
        params = self.param_dict
        venue = "exchange" in params  # a venue pair (funding): its exchange and symbol
        return SeriesRef(self.id, self.layer, self.coin,
                         params.get("exchange") or params.get("exchange_list"),
                         params.get("symbol") if venue else (self.instrument if self.spec.macro else None),
                         self.interval, json.dumps(params, sort_keys=True))

    @property
    def endpoint(self) -> Endpoint:
        """The layer's own endpoint (two layers may share a path, e.g. a copy of a shipped one)."""
        return layer_endpoint(self.spec)

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def is_history(self) -> bool:
        """Paged by time windows (start_time/end_time) with a cursor."""
        return self.endpoint.is_history

    @property
    def request_key(self) -> tuple[str, tuple[tuple[str, Any], ...]]:
        return (self.endpoint_id, self.params)


def _series_for(cfg: CoinConfig, layer: LayerId, source: str) -> Series:
    """The series one config's layer asks for, built from the layer's registry entry."""
    ls = spec(layer)
    conf = getattr(cfg.layers, layer)
    fields = {name: _param(getattr(conf, name)) for name in type(conf).model_fields}
    params = {name: fields[name] for name in ls.params}
    if ls.interval_from == "config":
        interval = cfg.interval_for(layer)
        params["interval"] = interval
    elif ls.interval_from == "range":
        interval = ls.range_buckets[conf.range]
    else:
        interval = ls.bar or ls.interval_from
    params.update(ls.fixed_params)
    history = {"config": cfg.history_days, "layer": fields.get("history_days"), "none": None}[ls.history_from]
    keep = tuple(getattr(conf, ls.keep_field)) if ls.keep_field else None
    return Series(layer, MACRO if ls.macro else cfg.coin, ls.key.format(**fields), interval, ls.endpoint_id,
                  params=tuple(params.items()), history_days=history, health=cfg.health, configs=(source,),
                  keep=keep, check_days=cfg.history_days)


def _param(value: Any) -> Any:
    """A config field as a request parameter: lists are sent comma-separated."""
    return ",".join(value) if isinstance(value, list) else value


def strictest(a: HealthSpec, b: HealthSpec) -> HealthSpec:
    """The thresholds of two configs that share a series: each one at its strictest."""
    return HealthSpec(
        freshness_intervals=min(a.freshness_intervals, b.freshness_intervals),
        min_rows=max(a.min_rows, b.min_rows),
        max_gap_bars=min(a.max_gap_bars, b.max_gap_bars),
        flag_all_zero=a.flag_all_zero or b.flag_all_zero,
        tolerance=min(a.tolerance, b.tolerance),
    )


def _merge(old: Series, new: Series) -> Series:
    """One series asked for by several configs: every config's wishes, none silently dropped.

    History reaches as deep as the deepest config, `keep` is the union of the exchange rows the
    configs keep (first config's order first), and the checks use the strictest thresholds.
    """
    days = None if old.history_days is None or new.history_days is None else max(
        old.history_days, new.history_days)
    keep = old.keep
    if old.keep is not None and new.keep is not None:
        keep = (*old.keep, *(x for x in new.keep if x not in old.keep))
    return replace(old, configs=(*old.configs, *new.configs), history_days=days, keep=keep,
                   health=strictest(old.health, new.health),
                   check_days=max(old.check_days or 0, new.check_days or 0) or None)


def expand(configs: Iterable[tuple[Path | str, CoinConfig]]) -> list[Series]:
    """Every series the configs ask for, identical requests merged (see `_merge`), in report order."""
    merged: dict[tuple[str, str], Series] = {}
    for _source, cfg in configs:
        for layer in cfg.layers.enabled():
            s = _series_for(cfg, layer, cfg.coin)
            key = (s.id, repr(s.request_key))
            merged[key] = _merge(merged[key], s) if key in merged else s
    order = {name: i for i, name in enumerate(layer_names())}
    return sorted(merged.values(), key=lambda s: (s.coin == MACRO, s.coin, order[s.layer], s.id))


@dataclass(frozen=True)
class SeriesPlan:
    """The requests one series needs this run: its windows, newest first."""

    series: Series
    windows: tuple[tuple[int, int], ...] = ()  # [start, end) per request, newest first; empty for snapshots
    start_ms: int | None = None
    backfill: bool = False  # the store holds nothing of the wanted range yet (a first run)
    notes: tuple[str, ...] = field(default=())
    #: The range of bars the series should hold after this run, [start, forming bar's end).
    wanted: tuple[int, int] | None = None

    @property
    def requests(self) -> int:
        return len(self.windows) if self.series.is_history else 1


def backfill_days(series: Series, plan: Plan) -> int | None:
    """How far back a series reaches: the config's history_days within what the plan keeps."""
    keep = history_days(plan, series.interval)
    if series.history_days is None:
        return keep
    if keep is None or keep == 0:
        return series.history_days
    return min(series.history_days, keep)


def wanted_range(series: Series, *, now_ms: int, plan: Plan, backfill_cap: int | None = None,
                 notes: list[str] | None = None) -> tuple[int, int]:
    """[first bar wanted, end of the forming bar): history_days back, within what the plan keeps
    (its first whole bar, where the plan's depth is what cuts it) and `--backfill-days`."""
    step = interval_ms(series.interval)
    keep = history_days(plan, series.interval)
    days = backfill_days(series, plan)
    by_plan = days is not None and keep is not None and keep > 0 and days == keep
    if series.history_days and days is not None and days < series.history_days and notes is not None:
        notes.append(f"history capped at {days} days by the {plan.value} plan")
    if backfill_cap is not None and (days is None or backfill_cap < days):
        days, by_plan = backfill_cap, False
        if notes is not None:
            notes.append(f"reaching back {days} day{'' if days == 1 else 's'} this run (--backfill-days)")
    lo = now_ms - (days or 1) * DAY_MS
    first = bar_open(lo, series.interval)
    if by_plan and first < lo:  # the plan keeps no bar that opened before its depth
        first += step
    return first, bar_open(now_ms, series.interval) + step


def plan_series(series: Series, *, coverage: Coverage | None, now_ms: int, plan: Plan,
                full_refresh: bool = False, backfill_cap: int | None = None) -> SeriesPlan:
    """What the series lacks inside its wanted range, as request windows, newest first.

    Always asked: the last closed bar held (our clock may have run ahead of the API's, so it may
    have been stored while still forming) up to the forming bar. Then every closed bar the
    store lacks in the wanted range (holes between windows or inside them, older history a deeper
    history_days wants, an interrupted backfill's rest), except known holes; nearby gaps share a
    window. `full_refresh` asks for the whole range again, known holes included.
    """
    if not series.is_history:
        return SeriesPlan(series)
    step = interval_ms(series.interval)
    notes: list[str] = []
    lo, end = wanted_range(series, now_ms=now_ms, plan=plan, backfill_cap=backfill_cap, notes=notes)
    forming = end - step
    cov = None if full_refresh else coverage
    held, known, missing = spans_in(cov, (lo, forming))
    # the last closed bar held (the bar our clock once called closed may be the API's forming one)
    head = min(max(s[1] for s in cov.spans) - step, forming) if held and cov else forming
    windows = windows_newest_first([*missing, (head, end)], step, MAX_LIMIT)
    if held:
        older = [m for m in missing if m[1] <= held[0][0]]
        inner = [m for m in missing if m[0] >= held[0][0] and m[1] < held[-1][1]]
        if older:
            days = bar_count(older, step) * step // DAY_MS
            notes.append(f"backfilling {days} older day{'' if days == 1 else 's'} the store lacks")
        if inner:
            notes.append(f"filling {bar_count(inner, step)} missing bar{'' if bar_count(inner, step) == 1 else 's'} "
                         f"in {len(inner)} gap{'' if len(inner) == 1 else 's'}")
    if known:
        bars = bar_count([(h.start, h.end) for h in known], step)
        notes.append(f"{len(known)} known hole{'' if len(known) == 1 else 's'} ({bars} bar{'' if bars == 1 else 's'}) "
                     f"not asked again: the API answered without them on {KNOWN_HOLE_RUNS} runs")
    return SeriesPlan(series, tuple(windows), min(w[0] for w in windows), not held, tuple(notes), (lo, end))


@dataclass(frozen=True)
class RunPlan:
    """Every series' plan plus the budget it costs."""

    plans: tuple[SeriesPlan, ...]
    plan: Plan
    shard: str | None = None  # `I/N` when the run is one shard of N

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.plans)

    @property
    def minutes(self) -> float:
        """Minutes of the key's per-minute budget these requests use."""
        return self.requests / self.plan.rate_per_minute

    @property
    def wall_minutes(self) -> float:
        """Lower bound of the wall time: whole budget windows beyond the first burst."""
        return float(max(0, math.ceil(self.requests / self.plan.rate_per_minute) - 1))


def plan_run(series: Iterable[Series], *, coverage: Mapping[str, Coverage], now_ms: int, plan: Plan,
             full_refresh: bool = False, backfill_cap: int | None = None) -> RunPlan:
    """Plan every series of a run from what the store holds (`coverage`, by series key)."""
    return RunPlan(
        tuple(plan_series(s, coverage=coverage.get(s.id), now_ms=now_ms, plan=plan, full_refresh=full_refresh,
                          backfill_cap=backfill_cap)
              for s in series),
        plan,
    )


def floor_problems(configs: Iterable[tuple[Path | str, CoinConfig]], plan: Plan) -> list[str]:
    """`file: field: problem` for every layer the key's plan cannot serve: above the plan, or an
    interval below its floor.

    The configs were validated for the plan they name; this checks them against the key's
    actual plan. History deeper than the plan keeps is not a problem: backfills are capped.
    """
    problems: list[str] = []
    for source, cfg in configs:
        for layer, block in cfg.layers.items():
            ls = spec(layer)
            file = Path(source).as_posix()
            if not plan.at_least(ls.min_plan):
                line = (f"{file}: layers.{layer}: needs the {ls.min_plan.value} plan or higher "
                        f"(the key's is {plan.value})")
            elif ls.floor and not ls.allows(plan, interval := cfg.interval_for(layer)):
                where = f"layers.{layer}.interval" if getattr(block, "interval", None) else "interval"
                line = f"{file}: {where}: {interval} is below the {plan.value} plan's floor ({ls.floor_for(plan)})"
            else:
                continue
            if line not in problems:
                problems.append(line)
    return problems


#: A fixed "now" for estimates that must not change from run to run (generated manifests).
ESTIMATE_NOW_MS = 1_767_225_600_000 + 30 * 60_000  # 2026-01-01 00:30 UTC


def first_run_requests(configs: Iterable[CoinConfig], plan: Plan) -> int:
    """Requests of a first run (every series backfilled) of `configs` at `plan`: the --dry-run estimate
    with an empty store, at a fixed time, so the same configs always give the same number."""
    series = expand((cfg.coin, cfg) for cfg in configs)
    return plan_run(series, coverage={}, now_ms=ESTIMATE_NOW_MS, plan=plan).requests
