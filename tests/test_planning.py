"""Planning before a store is touched: the key's plan, the run plan (`--dry-run`'s and the run's are one
function), the refusal of configs the plan cannot serve before a store exists, and a stop signal
recorded as an interruption, never as a deadline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset.api import cancel
from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.errors import DeadlineExceededError, ExitCode, PlanMismatchError, StopRequestedError
from cgpreset.plans import DAY_MS, HOUR_MS, Plan
from cgpreset.run.budget import Budget
from cgpreset.run.engine import run_preset
from cgpreset.run.planning import PLAN_REUSE_MS, KeyPlan, key_plan, plan_preset
from cgpreset.run.series import RunPlan
from cgpreset.store.base import KnownPlan
from cgpreset.store.sqlite import SQLiteStore
from tests.fakes import FakeClient
from tests.test_series import NOW, configs


class CountingClient(FakeClient):
    """A FakeClient whose plan lookups count as requests, as the real client's do."""

    lookups = 0

    def plan(self, **kw: Any) -> Plan:
        self.lookups += 1
        self.stats.add(requests=1)
        return super().plan(**kw)


def test_configs_the_plan_cannot_serve_are_refused_with_no_store_at_all(tmp_path: Path) -> None:
    with pytest.raises(PlanMismatchError) as err:
        plan_preset(configs("SOL"), plan=Plan.HOBBYIST, now_ms=NOW)
    assert err.value.exit_code == ExitCode.USAGE
    assert err.value.problems == ["sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]
    assert list(tmp_path.iterdir()) == []  # a Python caller that plans first is never left with an empty file


def test_the_dry_run_plan_is_the_plan_the_run_runs(tmp_path: Path) -> None:
    """`plan_preset` on a new store and on one a run filled: the same plan run_preset hands to its runner."""
    seen: list[RunPlan] = []
    cfgs = configs("SOL", "BTC", history_days=90)
    with SQLiteStore(tmp_path / "run.db") as store:
        for now in (NOW, NOW + 5 * HOUR_MS):
            dry = plan_preset(cfgs, plan=Plan.STANDARD, now_ms=now, coverage=store.coverage())
            run_preset(cfgs, FakeClient(now), store, now_ms=now, on_plan=seen.append)
            assert seen[-1] == dry
    assert len(seen) == 2 and seen[0].requests > seen[1].requests > 0  # a backfill, then what 5 hours added


def test_a_recent_recorded_plan_is_reused_without_a_call() -> None:
    client = CountingClient(plan=Plan.PROFESSIONAL)
    budget = Budget(max_requests=5)
    key = key_plan(client, known=KnownPlan("standard", NOW - DAY_MS // 2), budget=budget, now_ms=NOW)
    assert key == KeyPlan(Plan.PROFESSIONAL, reused=True)  # the client's own (fixed) plan wins, as assume_plan says
    assert client.lookups == 0 and budget.take() is None


@given(age_ms=st.integers(min_value=-DAY_MS, max_value=3 * DAY_MS), name=st.sampled_from(["standard", "galaxy"]))
@settings(max_examples=60, deadline=None)
def test_the_plan_is_looked_up_once_unless_a_recent_known_one_is_recorded(age_ms: int, name: str) -> None:
    client = CountingClient(plan=Plan.STARTUP)
    budget = Budget(max_requests=1)
    key = key_plan(client, known=KnownPlan(name, NOW - age_ms), budget=budget, now_ms=NOW)
    reuse = 0 <= age_ms <= PLAN_REUSE_MS and name == "standard"
    assert key.reused is reuse and client.lookups == (0 if reuse else 1)
    assert key.plan == (Plan.STARTUP if not reuse else client.assume_plan(Plan.STANDARD))
    assert (budget.take() is None) is reuse  # a lookup is a request like any other: it spent the only one


def test_no_lookup_past_the_request_budget() -> None:
    client = CountingClient()
    budget = Budget(max_requests=0)
    assert key_plan(client, known=None, budget=budget, now_ms=NOW) == KeyPlan(None)
    assert client.lookups == 0 and budget.reason is not None


def test_a_stop_signal_in_a_worker_is_recorded_as_interrupted_never_as_a_deadline(tmp_path: Path) -> None:
    """Ctrl-C reaches only the main thread; a worker sees the stop flag (StopRequestedError). Its series
    is skipped as interrupted, and so is the run's stop reason: the run had no deadline at all."""

    class StoppedMidRun(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            if ep.id == "open-interest-aggregated-history":
                cancel.CANCEL.set()  # the signal handler's flag, as SIGINT sets it
            cancel.check(ep.path)
            return super().request(ep, params, **kw)

    assert not issubclass(StopRequestedError, DeadlineExceededError)
    try:
        with SQLiteStore(tmp_path / "run.db") as store:
            result = run_preset(configs("SOL"), StoppedMidRun(), store, now_ms=NOW, concurrency=1)
            (row,) = store.runs()
    finally:
        cancel.CANCEL.clear()
    skipped = [r for r in result.results if r.outcome == "skipped"]
    assert skipped and all(r.reason.startswith("interrupted; ") for r in skipped), [r.reason for r in skipped]
    assert not any("deadline" in (r.reason or "") for r in result.results)
    assert result.budget_reason == "interrupted"
    assert {v["outcome"] for k, v in row["outcomes"].items() if k.startswith("open_interest/")} == {"skipped"}
