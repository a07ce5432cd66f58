"""Before a run touches a store: the key's plan, and what the run would request at it.

`run_preset` calls both; so does `run-preset --dry-run` (which prints the plan and stops), and so
does the CLI before it opens (or creates) the store, so configs the key's plan cannot serve are
refused before a store file exists. A Python caller does the same::

    key = key_plan(client)                      # one lookup call (none when `known`, a recorded plan, is recent)
    planned = plan_preset(configs, plan=key.plan)   # PlanMismatchError here: no store created yet
    with open_store("cgpreset.db") as store:
        run_preset(configs, client, store, key=key)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from cgpreset.api.protocol import Client
from cgpreset.clock import wall_ms
from cgpreset.errors import ApiError, CgPresetError, DeadlineExceededError, PlanMismatchError
from cgpreset.models.config import CoinConfig
from cgpreset.plans import DAY_MS, Plan
from cgpreset.run.budget import Budget
from cgpreset.run.series import RunPlan, expand, floor_problems, plan_run
from cgpreset.run.shard import Shard, shard_series
from cgpreset.store.base import Coverage, KnownPlan

#: How long the plan a run recorded is reused without asking the API (each answer's
#: API-KEY-MAX-LIMIT header confirms it, and so keeps it fresh).
PLAN_REUSE_MS = DAY_MS


@dataclass(frozen=True)
class KeyPlan:
    """The key's plan as a run starts: reused from the store's record (no call), looked up, or not
    known (`refused`: the API's refusal, or the budget ran out before the lookup).

    `counters`: the client's counters and rate-wait seconds as the lookup began, so the run that
    follows counts the lookup among its requests (None: count from the run's start)."""

    plan: Plan | None
    reused: bool = False
    refused: CgPresetError | None = None
    counters: tuple[dict[str, float], float] | None = field(default=None, compare=False)


def recent_plan(known: KnownPlan | None, now_ms: int) -> Plan | None:
    """The plan a run recorded within PLAN_REUSE_MS of `now_ms`, if this version knows its name."""
    if known is None or not 0 <= now_ms - known.at_ms <= PLAN_REUSE_MS:
        return None
    try:
        return Plan(known.plan)
    except ValueError:  # a plan name this version does not know: ask again
        return None


def key_plan(client: Client, *, known: KnownPlan | None = None, budget: Budget | None = None,
             now_ms: int | None = None) -> KeyPlan:
    """The plan the store's last run recorded (if recent), taken by the client without a call;
    else one lookup, which counts against the budget's `--max-requests`."""
    budget = budget or Budget()
    counters = (dict(client.stats.as_dict()), float(client.limiter.wall_waited_seconds))
    recent = recent_plan(known, wall_ms() if now_ms is None else now_ms)
    if recent is not None:
        taken: Plan = client.assume_plan(recent)
        return KeyPlan(taken, reused=True, counters=counters)
    why = budget.take()  # the subscription call is a request like any other
    if why is not None:
        return KeyPlan(None, counters=counters)
    requests_before = _logical_requests(client)
    try:
        return KeyPlan(client.plan(deadline=budget.deadline), counters=counters)
    except DeadlineExceededError as exc:
        budget.exhaust(budget.stop_reason(exc))
        return KeyPlan(None, refused=exc, counters=counters)
    except ApiError as exc:
        return KeyPlan(None, refused=exc, counters=counters)
    finally:
        # extra calls beyond the one taken: 0 when the plan was known already, 2 on the header fallback
        requests_after = _logical_requests(client)
        budget.book(requests_after - requests_before - 1)


def _logical_requests(client: Client) -> int:
    d = client.stats.as_dict()
    return int(d.get("requests", 0) - d.get("retries", 0))


def check_plan(configs: Sequence[tuple[Path, CoinConfig]], plan: Plan) -> None:
    """PlanMismatchError when a config asks for a layer above the key's plan or an interval below its floor."""
    problems = floor_problems(configs, plan)
    if problems:
        raise PlanMismatchError(problems)


def plan_preset(configs: Sequence[tuple[Path, CoinConfig]], *, plan: Plan, now_ms: int | None = None,
                coverage: Mapping[str, Coverage] | None = None, shard: Shard | None = None,
                full_refresh: bool = False, backfill_days: int | None = None) -> RunPlan:
    """What a run of `configs` would request at the key's `plan`, given what the store holds
    (`coverage`, by series key; none: a new store). Pure: no I/O. Raises PlanMismatchError first."""
    check_plan(configs, plan)
    now = wall_ms() if now_ms is None else now_ms
    run_plan = plan_run(shard_series(expand(configs), shard), coverage=coverage or {}, now_ms=now, plan=plan,
                        full_refresh=full_refresh, backfill_cap=backfill_days)
    return run_plan if shard is None else replace(run_plan, shard=str(shard))
