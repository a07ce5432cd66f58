"""`run-preset`'s engine: fetch every series in parallel, store it page by page, check it.

Series run in a thread pool through the one shared client (and its rate limiter). Each page
(one request) is written with its cursor in one transaction, so a killed or budget-stopped run
leaves whole pages only and the next run resumes from the cursor. A failing series never stops
the others. The run stops starting work when its budget is spent: `--max-requests`, `--deadline`
(the budget's Deadline, passed to every client call, so no limiter wait, retry or socket read runs past it), or a
rate-limit answer that survives the retries (rate limits are per key: every series would hit
it, so the whole run stops at once). Whatever did not run is `skipped` and resumes next run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import msgspec

from cgpreset.api.protocol import Client
from cgpreset.api.rows import decode_response
from cgpreset.api.session import Response
from cgpreset.clock import wall_ms
from cgpreset.errors import (
    ApiError,
    CgPresetError,
    DeadlineExceededError,
    ExitCode,
    RateLimitedError,
    StopRequestedError,
    StoreUnavailableError,
    Terminated,
)
from cgpreset.models.config import CoinConfig
from cgpreset.plans import Plan, interval_ms
from cgpreset.run.budget import Budget, starved_first  # noqa: F401 - part of the runner's API
from cgpreset.run.checks import check_coverage, series_checks
from cgpreset.run.outcome import (  # noqa: F401 - part of the runner's API
    EMPTY,
    EMPTY_REASON,
    FAILED,
    INTERRUPTED,
    OK,
    RATE_LIMIT_REASON,
    REFUSED_KINDS,
    SKIPPED,
    RunResult,
    SeriesResult,
    outcomes_summary,
    totals,
)
from cgpreset.run.pages import SeriesRows, build_page
from cgpreset.run.planning import KeyPlan, check_plan, key_plan, plan_preset
from cgpreset.run.series import RunPlan, Series, SeriesPlan, expand
from cgpreset.run.shard import Shard, shard_series
from cgpreset.run.source import check_source
from cgpreset.store.base import Page, Store

INCREMENTAL_EMPTY_REASON = ("API returned no rows (code 0) for a window that holds the stored last closed bar "
                            "and the forming bar: an outage, not 'no new bars'")


#: Why a series stopped when the process was told to (SIGINT/SIGTERM): never "deadline reached".
STOPPED_REASON = "interrupted"


#: Seconds between two heartbeats of a run whose workers are all busy: well within the 15 minutes
#: after which another run takes a `running` row with a stale heartbeat for a killed run's.
BEAT_EVERY_S = 60.0


class Runner:
    """Runs planned series through a client into a store."""

    def __init__(self, client: Client, store: Store, *, concurrency: int = 8, budget: Budget | None = None,
                 now_ms: int | None = None, on_result: Callable[[SeriesResult], None] | None = None,
                 first: Callable[[str], Any] | None = None, keep_raw: bool = False,
                 beat: Callable[[], None] | None = None, beat_every: float | None = None) -> None:
        self.client = client
        self.beat = beat  # says the run is alive (the runs row's heartbeat) while the workers are busy
        self.beat_every = BEAT_EVERY_S if beat_every is None else beat_every
        self.first = first  # a sort key by series id that goes before the longest-first order
        self.keep_raw = keep_raw  # --keep-raw: every answer's page as it came, beside its typed rows
        self.store = store
        self.concurrency = max(1, concurrency)
        self.budget = budget or Budget()
        self.now_ms = wall_ms() if now_ms is None else now_ms
        self.on_result = on_result
        self.done: list[SeriesResult] = []  # finished series, in completion order
        self.running: dict[str, SeriesResult] = {}  # series under way, as far as they got (by series id)
        self._done_lock = threading.Lock()

    def _params(self, series: Series, window: tuple[int, int] | None) -> dict[str, Any]:
        params = series.param_dict
        if window is not None:
            params.update(start_time=window[0], end_time=window[1], limit=1000)
        return params

    def run_series(self, plan: SeriesPlan) -> SeriesResult:
        s = plan.series
        res = SeriesResult(s, planned=plan.requests, notes=list(plan.notes))
        with self._done_lock:
            self.running[s.id] = res  # an interrupted run's row still says what this series stored
        previous = res.last_closed = self.store.cursor(s.id)
        windows: Sequence[tuple[int, int] | None] = plan.windows if s.is_history else (None,)
        got = SeriesRows(s)
        for i, window in enumerate(windows):
            made = f"{i} of {len(windows)} requests made, resumes next run"
            why = self.budget.take()
            if why is not None:
                res.outcome, res.reason = SKIPPED, f"{why}; {made}"
                break
            try:
                resp = self.client.request(s.endpoint, self._params(s, window), deadline=self.budget.deadline)
                res.requests += 1
                res.latencies.append(resp.latency)
                # decoded and checked here, outside the store's lock
                decoded = decode_response(s.endpoint, resp)
                page = build_page(s, decoded, got, now_ms=self.now_ms, window=window,
                                  wanted_from=None if plan.wanted is None else plan.wanted[0])
                page = self._with_raw(page, decoded.unknown, resp, got, res)
                written = self.store.write(page)
            except DeadlineExceededError as exc:  # cut by the deadline, in the request or in the store: page not stored
                why = self.budget.exhaust(self.budget.stop_reason(exc))
                res.outcome, res.reason = SKIPPED, f"{why}; {made}"
                break
            except StopRequestedError:  # Ctrl-C or SIGTERM reached this thread: the page is not stored
                why = self.budget.exhaust(STOPPED_REASON)
                res.outcome, res.reason = SKIPPED, f"{why}; {made}"
                break
            except RateLimitedError as exc:
                res.requests += 1
                why = self.budget.exhaust(RATE_LIMIT_REASON)
                self.budget.cut(self.client.clock)  # threads waiting in the limiter or between retries stop now too
                res.outcome, res.error = SKIPPED, exc
                res.reason = f"{why}; {made}"
                break
            except ApiError as exc:
                res.requests += 1
                res.outcome, res.reason, res.error = FAILED, str(exc), exc
                break
            res.new_rows += written.new_rows
            res.removed += written.removed
            if written.cursor is not None:
                res.last_closed = written.cursor
            res.rows += written.received
        rows = got.rows()
        if res.outcome == OK and not rows:
            # An incremental window always holds the stored last closed bar and the forming bar:
            # nothing there is an outage, never "no new bars".
            res.outcome, res.reason = EMPTY, (INCREMENTAL_EMPTY_REASON if previous is not None and s.is_history
                                              and not plan.backfill else EMPTY_REASON)
        elif res.outcome == OK and res.rows == 0 and s.keep:
            res.outcome, res.reason = EMPTY, f"no rows for {', '.join(s.keep)} in the answer"
        if rows:
            prev = previous if s.is_history and not plan.backfill else None
            res.checks = series_checks(s, rows, now_ms=self.now_ms, last_closed=res.last_closed, previous=prev,
                                       complete=res.outcome == OK, gaps=plan.wanted is None)
        if plan.wanted is not None:  # what the store holds of the wanted range now, whatever this run got
            held = self.store.coverage(s.id).get(s.id)
            res.checks.insert(min(1, len(res.checks)), check_coverage(
                held, (plan.wanted[0], plan.wanted[1] - interval_ms(s.interval)), s.interval, s.health.max_gap_bars))
        if res.removed:
            res.notes.append(f"removed {res.removed} stale row{'' if res.removed == 1 else 's'} (off the bar grid, "
                             "dated ahead, or a forming bar the API no longer sends)")
        res.checks += got.findings()
        return res

    def _with_raw(self, page: Page, unknown: tuple[str, ...], resp: Response, got: SeriesRows,
                  res: SeriesResult) -> Page:
        """Keep the answer's page as it came only where it helps: with --keep-raw, or the first
        time a series' answer carries fields the catalogue does not know (their names noted once)."""
        new = [u for u in unknown if u not in got.unknown]
        if not new and not self.keep_raw:
            return page
        reason = "kept (--keep-raw)"
        if new:
            got.unknown.update(new)
            res.notes.append(f"unknown fields in the answer (raw page kept): {', '.join(new)}")
            reason = f"unknown fields: {', '.join(new)}"
        text = (resp.raw if resp.raw is not None else msgspec.json.encode(resp.data)).decode("utf-8", "replace")
        return replace(page, raw=self.client.redact(text), raw_reason=reason)  # an echoed key is not kept

    def unfinished(self, why: str) -> list[SeriesResult]:
        """The series a stopped run left under way, as far as they got: skipped, with the rows they stored."""
        with self._done_lock:
            running = list(self.running.values())
        return [replace(r, outcome=SKIPPED, reason=f"{why} after {r.requests} of {r.planned} requests ({r.rows} "
                                                   f"rows stored, {r.new_rows} new); resumes next run")
                for r in running]

    def run(self, plan: RunPlan) -> list[SeriesResult]:
        """Run every series of the plan; results in plan order."""
        def one(p: SeriesPlan) -> SeriesResult:
            try:
                result = self.run_series(p)
            except StoreUnavailableError:  # after its reconnects: every series would fail, so the run stops
                self.budget.exhaust("store unavailable")
                self.budget.cut(self.client.clock)
                raise
            except (DeadlineExceededError, StopRequestedError) as exc:  # in the store's wait (a cursor read)
                why = self.budget.exhaust(STOPPED_REASON if isinstance(exc, StopRequestedError)
                                          else self.budget.deadline_reason)
                result = SeriesResult(p.series, outcome=SKIPPED, reason=f"{why}; resumes next run", planned=p.requests)
            except Exception as exc:  # a store or program error in one series must not abort the others
                what = str(exc) if isinstance(exc, CgPresetError) else f"internal error: {type(exc).__name__}: {exc}"
                result = SeriesResult(p.series, outcome=FAILED, reason=what, planned=p.requests)
            with self._done_lock:
                self.done.append(result)
                self.running.pop(p.series.id, None)
            if self.on_result is not None:
                self.on_result(result)
            return result

        # Longest first (most pages; the ETF answer is the whole history), so no long series
        # starts last and leaves the other threads idle; results come back in plan order.
        # Under a standing budget, `first` (budget.starved_first) goes before that.
        first = self.first or (lambda sid: 0)
        order = sorted(range(len(plan.plans)), key=lambda i: (first(plan.plans[i].series.id), -plan.plans[i].requests,
                                                              not plan.plans[i].series.spec.whole_history))
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cgpreset-run")
        try:
            futures = {i: pool.submit(one, plan.plans[i]) for i in order}
            pending = set(futures.values())
            while pending:  # a run silent for long (budget waits, retries) still says it is alive
                done, pending = wait(pending, timeout=self.beat_every, return_when=FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    break
                if pending and self.beat is not None:
                    with contextlib.suppress(CgPresetError):  # the workers meet a failing store themselves
                        self.beat()
            results = [futures[i].result() for i in range(len(plan.plans))]
        except BaseException:  # Ctrl-C: start nothing more; running requests end on their own
            self.budget.exhaust(STOPPED_REASON)
            self.budget.cut(self.client.clock)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results


def run_preset(
    configs: Sequence[tuple[Path, CoinConfig]],
    client: Client,
    store: Store,
    *,
    concurrency: int = 8,
    full_refresh: bool = False,
    backfill_days: int | None = None,
    budget: Budget | None = None,
    plan: Plan | None = None,
    key: KeyPlan | None = None,
    now_ms: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_result: Callable[[SeriesResult], None] | None = None,
    shard: Shard | None = None,
    keep_raw: bool = False,
    source: str | None = None,
    on_plan: Callable[[RunPlan], None] | None = None,
    retire: Literal["all", "covered", "none"] = "all",
    job: str | None = None,
) -> RunResult:
    """Expand, plan and run the configs; record the run in the store's runs table.

    With a `shard`, only that shard's series run (see run.shard). `source` ("emulator" or the API's
    host, see run.source) is recorded with the run; a store holding another source's data is
    refused (ConfigError) before any request.
    `job` (the scheduler's job, CGPRESET_JOB) and the shard are recorded with every series' outcome.
    `retire`: the series these configs produce are the store's current ones; "all" retires every
    other series (out of the analyst views, rows kept), "covered" only those of the (coin, layer)
    pairs the configs cover (a run of some coins or layers), "none" leaves them be.
    The key's plan: `plan` if given, else `key` (run/planning.py's key_plan, when the caller looked
    it up before opening the store), else reused from the store's record or looked up here.
    Raises PlanMismatchError (before any data request, nothing recorded) when a config asks for
    an interval below the key's plan's floor.
    """
    if source is not None:
        check_source(store.sources(), source, store=str(getattr(store, "display", "the store")))
    started = clock()
    before, wall_before = dict(client.stats.as_dict()), _wall_waited(client)
    if plan is None and key is not None and key.counters is not None:
        before, wall_before = key.counters  # the lookup, made before the store opened, is one of the run's requests
    now = wall_ms() if now_ms is None else now_ms
    series = shard_series(expand(configs), shard)
    label = None if shard is None else str(shard)
    budget = budget or Budget()
    budget.arm(client.clock)  # no request, limiter wait or retry runs past --deadline
    if plan is not None:
        key = KeyPlan(plan)
    elif key is None:
        key = key_plan(client, known=store.known_plan(), budget=budget, now_ms=now)
    plan, reused, refused = key.plan, key.reused, key.refused
    if plan is not None:
        check_plan(configs, plan)
    run_id = store.start_run(source=source)
    everything = expand(configs)  # every shard's: the same current set on each
    retired = [] if retire == "none" else store.retire(
        {s.id for s in everything}, None if retire == "all" else {(s.coin, s.layer) for s in everything}, now_ms=now)
    cursors = store.cursors()
    standing = budget.max_requests is not None or budget.time_left() is not None
    runner = Runner(client, store, concurrency=concurrency, budget=budget, now_ms=now, on_result=on_result,
                    first=starved_first(store.runs(), cursors) if standing else None, keep_raw=keep_raw,
                    beat=lambda: store.heartbeat(run_id))
    try:
        if plan is None:
            results = [_refused(s, refused, budget) for s in series]
        else:
            run_plan = plan_preset(configs, plan=plan, now_ms=now, coverage=store.coverage(), shard=shard,
                                   full_refresh=full_refresh, backfill_days=backfill_days)
            if on_plan is not None:  # progress: the requests to expect
                on_plan(run_plan)
            results = runner.run(run_plan)
    except BaseException as exc:  # Ctrl-C, SIGTERM (or a program error): the runs row still gets closed
        exit_code: int | None
        status, exit_code = "interrupted", ExitCode.INTERRUPTED
        if isinstance(exc, Terminated):
            status, exit_code = "terminated", ExitCode.TERMINATED
        elif isinstance(exc, StoreUnavailableError):
            status, exit_code = "store unavailable", ExitCode.TEMPFAIL
        elif not isinstance(exc, KeyboardInterrupt | SystemExit):
            status, exit_code = f"crashed: {type(exc).__name__}", None
        if plan is not None and not isinstance(exc, StoreUnavailableError):  # `runs show` names the plan too
            with contextlib.suppress(Exception):
                _remember_plan(store, run_id, plan, reused=reused, rate_max=client.rate_max, now=now)
        partial = RunResult([*runner.done, *runner.unfinished(status)], plan, _stats(client, before, wall_before),
                            round(clock() - started, 3), now, run_id, budget.reason, shard=label, job=job)
        _finish_quietly(store, partial, exit_code, status)
        raise
    result = RunResult(results, plan, _stats(client, before, wall_before), round(clock() - started, 3), now,
                       run_id, budget.reason, source=source, retired=retired, shard=label, job=job)
    if plan is not None:
        _remember_plan(store, run_id, plan, reused=reused, rate_max=client.rate_max, now=now)
    store.finish_run(run_id, exit_code=result.exit_code, totals=totals(result),
                     outcomes=outcomes_summary(result))
    return result


def _remember_plan(store: Store, run_id: int, plan: Plan, *, reused: bool, rate_max: int | None,
                   now: int) -> None:
    """Record the key's plan for the next runs: the one looked up, or the reused one while the
    answers' API-KEY-MAX-LIMIT still matches it (the header's plan when it no longer does)."""
    if reused and rate_max is None:
        return  # nothing confirmed it: it ages out and the next run past PLAN_REUSE_MS asks again
    if reused and rate_max is not None and Plan.from_rate_limit(rate_max) != plan:
        plan = Plan.from_rate_limit(rate_max)
    store.record_plan(run_id, plan.value, max_limit=rate_max, now_ms=now)


def _refused(s: Series, error: CgPresetError | None, budget: Budget) -> SeriesResult:
    """A series of a run that never got a plan: refused by the API, or out of budget before."""
    if isinstance(error, ApiError):
        return SeriesResult(s, outcome=FAILED, reason=str(error), error=error)
    why = budget.reason or "no plan"
    return SeriesResult(s, outcome=SKIPPED, reason=f"{why} before the key's plan was known; resumes next run")


def _wall_waited(client: Client) -> float:
    return float(client.limiter.wall_waited_seconds)


def _stats(client: Client, before: dict[str, float], wall_before: float) -> dict[str, float]:
    """The client's counters for this run only; `rate_wait_seconds` is wall-clock time during which
    at least one thread waited for the rate budget (`rate_wait_thread_seconds`: summed over threads)."""
    after = dict(client.stats.as_dict())
    stats = {k: round(v - before.get(k, 0), 3) for k, v in after.items()}
    if "rate_wait_seconds" in stats:
        stats["rate_wait_thread_seconds"] = stats["rate_wait_seconds"]
        stats["rate_wait_seconds"] = round(_wall_waited(client) - wall_before, 3)
    return stats


def _finish_quietly(store: Store, partial: RunResult, exit_code: int | None, status: str) -> None:
    """Close the runs row of a run that did not end normally, with what did finish and what the series
    under way stored; never raises."""
    assert partial.run_id is not None
    try:
        store.finish_run(partial.run_id, exit_code=exit_code, totals=totals(partial),
                         outcomes=outcomes_summary(partial), status=status)
    except Exception:  # the store itself may be what failed; the original error is what matters
        pass
