"""Run reports: the coin × layer table and the `--json` document (pure: no I/O, no clock).

JSON schema `cgpreset.run/1` (stable; fields are only ever added):

    {
      "schema": "cgpreset.run/1",
      "run_id": 3,                      # row in the store's runs table (null on --dry-run)
      "store": "cgpreset.db",
      "source": "open-api-v4.coinglass.com",  # or "emulator" (the embedded one): where the data came from
      "plan": "standard",               # the key's plan (null if the API refused before)
      "exit_code": 0,
      "budget": null,                   # why the run stopped early, if it did
      "totals": {"series", "ok", "empty", "failed", "skipped", "findings", "rows", "new_rows",
                 "requests", "retries", "rate_limited", "rate_wait_seconds", "rate_wait_thread_seconds",
                 "seconds"},
                                        # rate_wait_seconds: wall-clock seconds during which at least one
                                        # thread waited for the rate budget; ..._thread_seconds: summed
                                        # over threads (can exceed the run's duration)
      "series": [{
        "id": "funding/SOL/Binance:SOLUSDT/1h", "coin": "SOL", "layer": "funding",
        "configs": ["SOL"],             # coins whose configs share this series (ETF: all)
        "endpoint": "/api/futures/funding-rate/history",
        "params": {"exchange": "Binance", "symbol": "SOLUSDT", "interval": "1h"},
        "interval": "1h",
        "outcome": "ok" | "empty" | "failed" | "skipped",
        "reason": null | "why it is not ok",
        "rows": 720, "new_rows": 718, "requests": 1, "planned_requests": 1,
        "last_bar": 1764064800000,      # open time (ms) of the last closed bar in the store
        "last_bar_age_seconds": 4210,   # seconds since that bar opened (as health's; the freshness
                                        # check limits it to health.freshness_intervals bars)
        "latency_ms": 101.3,            # mean over the series' requests
        "checks": [{"name": "gaps", "ok": true, "detail": "..."}],
        "error": null | {"kind": "server_error", "message": "..."},
        "notes": ["..."]
      }]
    }
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from cgpreset.cli.present.text import droppable, format_age
from cgpreset.run.outcome import EMPTY, FAILED, OK, SKIPPED, RunResult, SeriesResult, totals
from cgpreset.run.series import MACRO, RunPlan
from cgpreset.run.source import describe

SCHEMA = "cgpreset.run/1"


def series_dict(r: SeriesResult, now_ms: int) -> dict[str, Any]:
    """One series of the JSON report."""
    s = r.series
    return {
        "id": s.id,
        "coin": s.coin,
        "layer": s.layer,
        "configs": list(s.configs),
        "endpoint": s.endpoint.path,
        "params": s.param_dict,
        "interval": s.interval,
        "outcome": r.outcome,
        "reason": r.reason,
        "rows": r.rows,
        "new_rows": r.new_rows,
        "requests": r.requests,
        "planned_requests": r.planned,
        "last_bar": r.last_closed,
        "last_bar_age_seconds": None if r.last_closed is None else round(r.bar_age_s(now_ms) or 0),
        "latency_ms": r.latency_ms,
        "checks": [c.as_dict() for c in r.checks],
        "error": None if r.error is None else {"kind": r.error.kind.value, "message": str(r.error)},
        "notes": list(r.notes),
    }


def run_json(result: RunResult, *, store: str) -> dict[str, Any]:
    """The `--json` document (schema above)."""
    return {
        "schema": SCHEMA,
        "run_id": result.run_id,
        "store": store,
        "source": result.source,
        "plan": None if result.plan is None else result.plan.value,
        "exit_code": int(result.exit_code),
        "budget": result.budget_reason,
        "totals": totals(result),
        "series": [series_dict(r, result.now_ms) for r in result.results],
        "retired": result.retired,
    }


def _note(r: SeriesResult) -> str:
    parts: list[str] = []
    if r.reason:
        parts.append(r.reason)
    parts += [f"{c.name}: {c.detail}" for c in r.findings]
    if r.series.coin == MACRO and len(r.series.configs) > 1:
        parts.append(f"shared by {len(r.series.configs)} configs")
    parts += r.notes
    return "; ".join(parts)


def _outcome_cell(r: SeriesResult) -> str:
    if r.outcome == OK and r.findings:
        return "ok*"  # data arrived, checks found problems
    return r.outcome


def run_table(result: RunResult) -> Table:
    """coin × layer: outcome, rows, new, last bar age, latency, note."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("outcome", "left"), ("rows", "right"),
                          ("new", "right"), ("last bar", "right"), ("latency", "right"), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    styles = {OK: "green", EMPTY: "yellow", FAILED: "red", SKIPPED: "yellow"}
    for r in result.results:
        age = r.bar_age_s(result.now_ms)
        style = "yellow" if r.findings and r.outcome == OK else styles[r.outcome]
        table.add_row(
            r.series.coin, r.series.layer, f"[{style}]{_outcome_cell(r)}[/]", str(r.rows), str(r.new_rows),
            format_age(age), "-" if r.latency_ms is None else f"{r.latency_ms:.0f} ms", _note(r),
        )
    return droppable(table, "latency", "new", "last bar")


def run_summary(result: RunResult) -> str:
    """One line of totals under the table."""
    t = totals(result)
    return (
        f"{t['series']} series: {t['ok']} ok, {t['empty']} empty, {t['failed']} failed, {t['skipped']} skipped, "
        f"{t['findings']} check findings | {t['rows']} rows ({t['new_rows']} new) | {t['requests']} requests, "
        f"{t['retries']} retries, {t['rate_limited']} rate-limited, {t['rate_wait_seconds']:.1f}s waiting for "
        f"the rate budget | "
        f"{t['seconds']:.1f}s" + (f" | stopped early: {result.budget_reason}" if result.budget_reason else "")
        + (f" | source: {describe(result.source)}" if result.source else "")
        + (f" | retired {len(result.retired)} series no config produces (out of the views; "
           "`cgpreset cursors prune` deletes them)" if result.retired else "")
    )


def plan_table(plan: RunPlan) -> Table:
    """`--dry-run`: what each series would request."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("endpoint", "left"), ("interval", "left"),
                          ("mode", "left"), ("requests", "right"), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for p in plan.plans:
        s = p.series
        mode = ("backfill" if p.backfill else "incremental") if s.is_history else "snapshot"
        note = "; ".join([*p.notes, *([f"shared by {len(s.configs)} configs"] if len(s.configs) > 1 else [])])
        table.add_row(s.coin, s.layer, s.endpoint.path, s.interval, mode, str(p.requests), note)
    return droppable(table, "endpoint", "interval")


def plan_summary(plan: RunPlan) -> str:
    rate = plan.plan.rate_per_minute
    shard = "" if plan.shard is None else f"shard {plan.shard}: "
    return (f"{shard}{len(plan.plans)} series, {plan.requests} requests; at the {plan.plan.value} plan's {rate}/min "
            f"that is {plan.minutes:.1f} min of budget (at least {plan.wall_minutes:.0f} min wall time "
            f"beyond the first burst)")


def plan_json(plan: RunPlan) -> dict[str, Any]:
    return {
        "schema": "cgpreset.plan/1",
        "plan": plan.plan.value,
        "rate_per_minute": plan.plan.rate_per_minute,
        "requests": plan.requests,
        "shard": plan.shard,
        "estimated_minutes": round(plan.minutes, 2),
        "series": [
            {"id": p.series.id, "coin": p.series.coin, "layer": p.series.layer,
             "endpoint": p.series.endpoint.path, "params": p.series.param_dict, "interval": p.series.interval,
             "mode": ("backfill" if p.backfill else "incremental") if p.series.is_history else "snapshot",
             "requests": p.requests, "configs": list(p.series.configs), "notes": list(p.notes)}
            for p in plan.plans
        ],
    }

