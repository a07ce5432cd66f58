"""`health`'s table and the lines under it: the shots, the plan and rate budget, the stream's and the
store's liveness, and the verdict (pure: no I/O)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from cgpreset.cli.present.text import droppable, format_age
from cgpreset.errors import ExitCode
from cgpreset.run.freshness import FRESH
from cgpreset.run.health import HealthReport
from cgpreset.run.outcome import EMPTY, FAILED, OK
from cgpreset.run.source import describe


def health_table(report: HealthReport) -> Table:
    """coin, layer, endpoint, outcome, plan, latency, last bar age, note."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("endpoint", "left"), ("outcome", "left"),
                          ("plan", "left"), ("latency", "right"), ("last bar", "right"), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=name in ("endpoint", "plan"))
    styles = {OK: "green", EMPTY: "yellow", FAILED: "red"}
    for s in report.shots:
        age = None if s.last_bar is None else (report.now_ms - s.last_bar) / 1000
        table.add_row(s.coin, s.layer, s.endpoint, f"[{styles[s.outcome]}]{s.outcome}[/]", s.plan_note,
                      "-" if s.latency_ms is None else f"{s.latency_ms:.0f} ms", format_age(age), s.reason or "")
    return droppable(table, "endpoint", "plan", "latency", "last bar")  # coin, layer, outcome, note stay


def health_summary(report: HealthReport) -> list[str]:
    """The lines under the table: plan and rate budget, stream liveness, the verdict."""
    d = report.as_dict()
    lines = []
    if report.error is not None:
        lines.append(f"key: refused before any shot: {report.error}")
    else:
        used = "unknown" if report.rate_used is None else str(report.rate_used)
        lines.append(f"plan: {d['plan']} | rate budget: {d['rate_per_minute']}/min, used this minute: {used}")
    live = report.liveness
    if live is None:
        lines.append(f"stream: no stream has run against {report.store or 'this store'}")
    else:
        age = live.get("last_event_age_s")
        lines.append(
            f"stream: run #{live.get('run_id')} {live.get('status')}, "
            f"{float(live.get('events_per_minute') or 0):.1f} events/min, {live.get('reconnects', 0)} reconnects, "
            f"last event {'never' if age is None else format_age(age) + ' ago'}"
        )
    if report.freshness is not None:
        lines.append(f"data: {report.freshness.summary()}")
    lines += report.problems
    lines.append(verdict_line(report))
    return lines


def verdict_line(report: HealthReport) -> str:
    """`41/41 shots ok — signed off (source: ...)`, or why not: config problems, stale data."""
    ok = sum(1 for s in report.shots if s.outcome == OK)
    why = []
    if report.problems:
        n = len(report.problems)
        why.append(f"{n} config problem{'s' if n > 1 else ''} against the {report.as_dict()['plan']} plan")
    if report.freshness is not None and report.stale:
        bad = len(report.freshness.series) - len(report.freshness.having(FRESH))
        why.append(f"the store's data is not fresh ({bad} series stale or never fetched)")
    verdict = " — signed off" if report.exit_code == ExitCode.OK else " — not signed off"
    if why:
        verdict += ": " + "; ".join(why)
    source = f" (source: {describe(report.source)})" if report.source else ""
    return f"{ok}/{len(report.shots)} shots ok{verdict}{source}"
