"""`health`: the "4 shots" sign-off — one minimal call per core layer, plus ETF once.

Per config: funding, open interest, liquidation and taker volume with `limit=2` at an interval
the key's plan allows; then the macro ETF layer once. A shot is OK only if the body code is
"0", rows came back, run-preset's decoder takes them and run-preset's checks pass on them (but
the row count): the last closed bar is fresh, within the config's `health.freshness_intervals`
of now (an API serving week-old bars is not signed off; the ETF flows by trading days), OHLC
holds. A config that asks for an interval below the key's plan's floor is a finding
(run-preset would refuse it), even though its shots are still fired at the floor. Given the
store's freshness (run/freshness.py, `health --store`), stale or never fetched data is not signed
off either: the API may be fine while the runs stopped. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgpreset.api.protocol import Client
from cgpreset.api.rows import decode_response
from cgpreset.clock import wall_ms
from cgpreset.errors import ApiError, DeadlineExceededError, ExitCode, outcome_exit_code
from cgpreset.layers import spec
from cgpreset.models.config import CoinConfig
from cgpreset.plans import INTERVAL_MS, Plan, bar_open
from cgpreset.run.checks import series_checks
from cgpreset.run.freshness import FreshnessReport
from cgpreset.run.outcome import EMPTY, EMPTY_REASON, FAILED, OK, Outcome
from cgpreset.run.series import Series, expand, floor_problems
from cgpreset.store import stream_liveness as _stored_liveness
from cgpreset.store.dsn import StoreLocation, display

SCHEMA = "cgpreset.health/1"


@dataclass
class Shot:
    """One sign-off call."""

    coin: str
    layer: str
    endpoint: str
    params: dict[str, Any]
    plan_note: str
    outcome: Outcome = OK
    reason: str | None = None
    rows: int = 0
    latency_ms: float | None = None
    last_bar: int | None = None
    error: ApiError | None = None

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        return {
            "coin": self.coin, "layer": self.layer, "endpoint": self.endpoint, "params": self.params,
            "plan": self.plan_note, "outcome": self.outcome, "reason": self.reason, "rows": self.rows,
            "latency_ms": self.latency_ms, "last_bar": self.last_bar,
            "last_bar_age_seconds": None if self.last_bar is None else round((now_ms - self.last_bar) / 1000),
            "error": None if self.error is None else {"kind": self.error.kind.value, "message": str(self.error)},
        }


@dataclass
class HealthReport:
    """The sign-off: every shot, the key's plan and budget, and stream liveness if a stream ran."""

    shots: list[Shot]
    plan: Plan | None
    rate_max: int | None
    rate_used: int | None
    now_ms: int
    liveness: dict[str, Any] | None = None
    error: ApiError | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # `file: field: problem` against the key's plan
    source: str | None = None  # "emulator" or the API's host (run.source)
    freshness: FreshnessReport | None = None  # the store's data, when a store was named (`--store`)
    store: str | None = None  # the store the stream's liveness was read from, as messages name it

    @property
    def stale(self) -> bool:
        """The store's data is stale or was never fetched."""
        return self.freshness is not None and self.freshness.exit_code != ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:  # the plan call failed after retries: no shot was fired
            return ExitCode.API
        shots_ok = all(s.outcome == OK for s in self.shots)
        return outcome_exit_code([s.error if s.outcome == FAILED else None for s in self.shots],
                                 all_ok=shots_ok and not self.problems and not self.stale)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "plan": None if self.plan is None else self.plan.value,
            "rate_per_minute": self.rate_max or (self.plan.rate_per_minute if self.plan else None),
            "rate_used": self.rate_used,
            "exit_code": int(self.exit_code),
            "error": None if self.error is None else {"kind": self.error.kind.value, "message": str(self.error)},
            "problems": list(self.problems),
            "shots": [s.as_dict(self.now_ms) for s in self.shots],
            "stream": self.liveness,
            "source": self.source,
            "freshness": None if self.freshness is None else self.freshness.as_dict(),
        }


def _shot_for(s: Series, plan: Plan) -> Shot:
    params = s.param_dict
    notes = []
    if s.endpoint.min_plan.rank > plan.rank:
        notes.append(f"needs {s.endpoint.min_plan.value}")
    if "interval" in params:
        ls, interval = spec(s.layer), params["interval"]
        floor = ls.floor_for(plan)  # the layer's own floor on this plan, where its definition names one
        if ls.floor and INTERVAL_MS[interval] < INTERVAL_MS[floor]:
            notes.append(f"{interval} below the {plan.value} floor; asked {floor}")
            params["interval"] = floor
        else:
            notes.append(f"{plan.value}: {params['interval']} ok")
        params["limit"] = 2
    return Shot(s.coin, s.layer, s.endpoint.path, params, "; ".join(notes) or f"{plan.value}: ok")


def plan_shots(configs: Sequence[tuple[Path, CoinConfig]], plan: Plan) -> list[tuple[Series, Shot]]:
    """Core layers of every config, then the ETF layer once (if any config has it)."""
    out = []
    for s in expand(configs):
        if spec(s.layer).core or spec(s.layer).macro:
            out.append((s, _shot_for(s, plan)))
    return out


def fire(client: Client, s: Series, shot: Shot, now_ms: int) -> Shot:
    """Make the call; classify ok / empty / failed. The answer goes through run-preset's decoder
    and checks (a stale last closed bar, broken OHLC, ... fail the shot; a two-bar shot has no
    row-count verdict)."""
    try:
        resp = client.request(s.endpoint, shot.params)
        rows = decode_response(s.endpoint, resp).dicts()
    except ApiError as exc:
        shot.outcome, shot.reason, shot.error = FAILED, str(exc), exc
        return shot
    except DeadlineExceededError as exc:  # --deadline: the shot counts as failed, with why
        shot.outcome, shot.reason = FAILED, f"{exc} (--deadline)"
        return shot
    shot.latency_ms = round(resp.latency * 1000, 1)
    shot.rows = len(rows)
    if not rows:
        shot.outcome, shot.reason = EMPTY, EMPTY_REASON
        return shot
    tf = s.endpoint.time_field or "time"
    interval = shot.params.get("interval", s.interval)
    forming = bar_open(now_ms, interval)  # limit=2: the last row is the forming bar, the one before it closed
    closed = [int(r[tf]) for r in rows if tf in r and int(r[tf]) < forming]
    shot.last_bar = max(closed) if closed else None  # the open of the last closed bar, as run-preset's "last bar"
    failed = [c for c in series_checks(s, rows, interval=interval, now_ms=now_ms, last_closed=shot.last_bar)
              if not c.ok and c.name != "min_rows"]
    if failed:
        shot.outcome, shot.reason = FAILED, "; ".join(c.detail for c in failed)
    return shot


def run_health(configs: Sequence[tuple[Path, CoinConfig]], client: Client, *,
               store_path: StoreLocation | None = None, concurrency: int = 8,
               now_ms: int | None = None, source: str | None = None,
               on_plan: Callable[[int, Plan], None] | None = None,
               freshness: FreshnessReport | None = None) -> HealthReport:
    """Fire every shot (in parallel, through the shared limiter) and collect the sign-off;
    `freshness` (the store's, read before) joins the verdict."""
    now = wall_ms() if now_ms is None else now_ms
    liveness = stream_liveness(store_path) if store_path is not None else None
    store = None if store_path is None else display(store_path)
    try:
        plan = client.plan()
    except ApiError as exc:
        return HealthReport([], None, None, None, now, liveness, error=exc, source=source, freshness=freshness,
                            store=store)
    planned = plan_shots(configs, plan)
    if on_plan is not None:  # progress: the requests to expect
        on_plan(len(planned), plan)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="cgpreset-health") as pool:
        shots = list(pool.map(lambda p: fire(client, p[0], p[1], now), planned))
    return HealthReport(shots, plan, client.rate_max, client.rate_used, now,
                        liveness, problems=floor_problems(configs, plan), source=source, freshness=freshness,
                        store=store)


def stream_liveness(store: StoreLocation) -> dict[str, Any] | None:
    """The last stream run's liveness; a damaged or foreign store is a one-line ConfigError
    (the store converts every SQLite or PostgreSQL error)."""
    return _stored_liveness(store)
