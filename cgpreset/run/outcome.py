"""Outcomes of a run: per series ok / empty / failed / skipped with a reason, and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cgpreset.errors import REFUSED_KINDS, ApiError, ExitCode, outcome_exit_code
from cgpreset.plans import Plan, interval_ms
from cgpreset.run.checks import Check
from cgpreset.run.series import Series


class Outcome(str, Enum):
    """How one series (or one health shot) ended. A str: it compares, hashes, formats and
    serialises (JSON, the store's runs row, metrics labels) as its value, "ok" and so on."""

    OK = "ok"
    EMPTY = "empty"
    FAILED = "failed"
    SKIPPED = "skipped"

    __hash__ = str.__hash__  # Enum hashes the member's name: keep dicts keyed by "ok" working

    def __str__(self) -> str:
        return self.value


OK, EMPTY, FAILED, SKIPPED = Outcome.OK, Outcome.EMPTY, Outcome.FAILED, Outcome.SKIPPED
EMPTY_REASON = "API returned no rows (code 0) — coin/pair mix-up?"
RATE_LIMIT_REASON = ("rate limited after retries (the rate budget is per key, so the whole run stops; "
                     "lower CGPRESET_CONCURRENCY or share the key less)")
#: Exit code of a run stopped by Ctrl-C (as the CLI exits), kept in the store's runs row.
INTERRUPTED = ExitCode.INTERRUPTED
__all__ = ["EMPTY", "EMPTY_REASON", "FAILED", "INTERRUPTED", "OK", "RATE_LIMIT_REASON", "REFUSED_KINDS", "SKIPPED",
           "Outcome", "RunResult", "SeriesResult", "outcomes_summary", "totals"]


@dataclass
class SeriesResult:
    """The outcome of one series: ok / empty / failed / skipped, always with a reason if not ok."""

    series: Series
    outcome: Outcome = OK
    reason: str | None = None
    rows: int = 0
    new_rows: int = 0
    removed: int = 0  # stale rows the store removed from the windows asked (off-grid, ahead, stale forming)
    requests: int = 0
    planned: int = 0
    checks: list[Check] = field(default_factory=list)
    error: ApiError | None = None
    latencies: list[float] = field(default_factory=list)
    last_closed: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def bar_age_s(self, now_ms: int) -> float | None:
        """Seconds since the last closed bar OPENED: the age "last bar" shows in every table and report
        (health's too), the one `health.freshness_intervals` limits (in bars)."""
        if self.last_closed is None:
            return None
        return max(0.0, (now_ms - self.last_closed) / 1000)

    def last_bar_age_s(self, now_ms: int) -> float | None:
        """Seconds since the last closed bar closed: the metric cgpreset_series_last_bar_age_seconds only."""
        if self.last_closed is None:
            return None
        return max(0.0, (now_ms - self.last_closed - interval_ms(self.series.interval)) / 1000)

    @property
    def latency_ms(self) -> float | None:
        return round(1000 * sum(self.latencies) / len(self.latencies), 1) if self.latencies else None


@dataclass
class RunResult:
    """Everything one run did; `exit_code` follows the README table."""

    results: list[SeriesResult]
    plan: Plan | None
    stats: dict[str, float]
    seconds: float
    now_ms: int
    run_id: int | None = None
    budget_reason: str | None = None
    source: str | None = None  # "emulator" or the API's host (run.source)
    retired: list[str] = field(default_factory=list)  # series keys this run found no config produces any more
    shard: str | None = None  # `I/N` when the run is one shard of N
    job: str | None = None  # the scheduler's job the run belongs to (CGPRESET_JOB), if told

    @property
    def exit_code(self) -> ExitCode:
        return outcome_exit_code([r.error if r.outcome == FAILED else None for r in self.results],
                                 all_ok=all(r.outcome == OK and not r.findings for r in self.results))


def totals(result: RunResult) -> dict[str, Any]:
    """Run totals: outcomes, rows and the client's counters."""
    counts = {k.value: sum(1 for r in result.results if r.outcome == k) for k in (OK, EMPTY, FAILED, SKIPPED)}
    return {
        "series": len(result.results),
        **counts,
        "findings": sum(len(r.findings) for r in result.results),
        "rows": sum(r.rows for r in result.results),
        "new_rows": sum(r.new_rows for r in result.results),
        "requests": int(result.stats.get("requests", sum(r.requests for r in result.results))),
        "retries": int(result.stats.get("retries", 0)),
        "rate_limited": int(result.stats.get("rate_limited", 0)),
        "rate_wait_seconds": float(result.stats.get("rate_wait_seconds", 0.0)),
        "rate_wait_thread_seconds": float(result.stats.get("rate_wait_thread_seconds",
                                                           result.stats.get("rate_wait_seconds", 0.0))),
        "seconds": result.seconds,
    }


def outcomes_summary(result: RunResult) -> dict[str, Any]:
    """Per-series outcome for the store's runs table, each with the run's shard and job when it has
    them (the runs row has no column for them: its JSON carries them, and `cgpreset runs` shows them)."""
    labels = {k: v for k, v in (("shard", result.shard), ("job", result.job)) if v is not None}
    return {
        r.series.id: {"outcome": r.outcome, "reason": r.reason, "rows": r.rows, "new_rows": r.new_rows,
                      "findings": [c.name for c in r.findings],
                      "error_kind": None if r.error is None else r.error.kind.value, **labels}
        for r in result.results
    }
