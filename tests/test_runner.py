"""The runner with a FakeClient: isolation of failures, budget → skipped, resume, exit codes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.errors import AuthError, ExitCode, PlanMismatchError, RateLimitedError, ServerError
from cgpreset.plans import DAY_MS, HOUR_MS, Plan, bar_open
from cgpreset.run.engine import Budget, run_preset
from cgpreset.store.sqlite import SQLiteStore
from tests.fakes import FakeClient
from tests.test_series import NOW, configs


def run(tmp_path: Path, client: FakeClient, coins: tuple[str, ...] = ("SOL", "BTC"), **kw: Any) -> Any:
    with SQLiteStore(tmp_path / "run.db") as store:
        return run_preset(configs(*coins), client, store, now_ms=client.now_ms, **kw)


def by_layer(result: Any, coin: str = "SOL") -> dict[str, Any]:
    return {r.series.layer: r for r in result.results if r.series.coin in (coin, "*")}


def test_first_run_stores_everything_and_rerun_adds_nothing_twice(tmp_path: Path) -> None:
    first = run(tmp_path, FakeClient())
    assert first.exit_code == ExitCode.OK, [(r.series.id, r.reason, r.findings) for r in first.results]
    assert len(first.results) == 11
    sol = by_layer(first)
    assert sol["funding"].rows == 30 * 24 + 1 and sol["funding"].new_rows == 30 * 24 + 1
    assert sol["liquidation_exchanges"].rows == 4  # HTX not kept
    assert sol["etf_flows"].series.configs == ("SOL", "BTC")
    assert sol["etf_flows"].rows == 40  # the layer sets no history_days: all days kept
    client = FakeClient()
    again = run(tmp_path, client)
    assert again.exit_code == ExitCode.OK
    assert len(client.calls) == 11  # one request per series
    assert sum(r.new_rows for r in again.results if r.series.is_history) == 0
    later = FakeClient(NOW + HOUR_MS)
    third = run(tmp_path, later)
    assert third.exit_code == ExitCode.OK
    funding = by_layer(third)["funding"]
    # the last closed bar (again), the previously forming bar, and the new forming bar
    assert funding.rows == 3 and funding.new_rows == 1
    with SQLiteStore(tmp_path / "run.db") as store:
        times = [r["time"] for r in store.rows(funding.series.id)]
        assert len(times) == len(set(times)) == 30 * 24 + 2
        assert store.cursor(funding.series.id) == bar_open(NOW, "1h")
        assert len(store.runs()) == 3


def test_failing_series_is_isolated(tmp_path: Path) -> None:
    client = FakeClient(fail={"funding-rate-history": ServerError("Server Error", path="/x", code="500")})
    result = run(tmp_path, client)
    assert result.exit_code == ExitCode.FINDINGS
    for coin in ("SOL", "BTC"):
        layers = by_layer(result, coin)
        assert layers["funding"].outcome == "failed"
        assert layers["funding"].error.kind.value == "server_error"
        assert all(r.outcome == "ok" for name, r in layers.items() if name != "funding")


def test_empty_is_not_failed(tmp_path: Path) -> None:
    result = run(tmp_path, FakeClient(empty={"open-interest-aggregated-history"}))
    oi = by_layer(result)["open_interest"]
    assert oi.outcome == "empty" and "coin/pair mix-up" in (oi.reason or "") and oi.error is None
    assert result.exit_code == ExitCode.FINDINGS


def test_check_findings_keep_outcome_ok_but_exit_1(tmp_path: Path) -> None:
    class BrokenOhlc(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "funding-rate-history":
                resp.data[0]["high"] = "0.1"
            return resp

    result = run(tmp_path, BrokenOhlc(), coins=("SOL",))
    funding = by_layer(result)["funding"]
    assert funding.outcome == "ok" and [c.name for c in funding.findings] == ["ohlc"]
    assert result.exit_code == ExitCode.FINDINGS


def test_api_refused_everything_exits_3(tmp_path: Path) -> None:
    result = run(tmp_path, FakeClient(plan=AuthError("API key missing.", code="401")))
    assert result.exit_code == ExitCode.API
    assert {r.outcome for r in result.results} == {"failed"}
    assert result.results[0].error.kind.value == "auth"


def test_budget_exhausted_skips_the_rest_and_next_run_resumes(tmp_path: Path) -> None:
    client = FakeClient()
    result = run(tmp_path, client, coins=("SOL",), concurrency=1, budget=Budget(max_requests=3),
                 full_refresh=False)
    assert len(client.calls) == 3
    outcomes = {r.series.layer: r.outcome for r in result.results}
    # the ETF series goes first (its answer is the longest), then plan order
    assert outcomes == {"etf_flows": "ok", "funding": "ok", "open_interest": "ok", "liquidation": "skipped",
                        "taker_volume": "skipped", "liquidation_exchanges": "skipped"}
    skipped = by_layer(result)["taker_volume"]
    assert skipped.reason == "budget exhausted (--max-requests 3); 0 of 1 requests made, resumes next run"
    assert result.budget_reason and result.exit_code == ExitCode.FINDINGS
    client2 = FakeClient()
    resumed = run(tmp_path, client2, coins=("SOL",))
    assert resumed.exit_code == ExitCode.OK
    # the three done series ask for their forming bar only; the three skipped ones run now
    assert len(client2.calls) == 6
    assert {r.series.layer: r.new_rows > 1 for r in resumed.results} == {
        "funding": False, "open_interest": False, "liquidation": True, "taker_volume": True,
        "liquidation_exchanges": True, "etf_flows": False}


def test_deadline(tmp_path: Path, clock: Any) -> None:
    budget = Budget(deadline_s=10, clock=clock)
    clock.sleep(11)
    result = run(tmp_path, FakeClient(), coins=("SOL",), budget=budget)
    assert {r.outcome for r in result.results} == {"skipped"}
    assert "deadline reached (--deadline 10s)" in result.results[0].reason


def test_the_stop_reason_says_when_the_next_wait_would_pass_the_deadline(clock: Any) -> None:
    from cgpreset.errors import DeadlineExceededError

    budget = Budget(deadline_s=25, clock=clock)
    clock.sleep(1.4)
    early = DeadlineExceededError("the next wait for the rate budget (58 s) would pass the deadline", early=True)
    assert budget.stop_reason(early) == ("stopped after 1.4s of --deadline 25s: the next wait for the rate budget "
                                         "(58 s) would pass the deadline")
    assert budget.stop_reason(DeadlineExceededError("deadline reached")) == "deadline reached (--deadline 25s)"
    clock.sleep(30)  # past the deadline: it was reached
    assert budget.stop_reason(early) == "deadline reached (--deadline 25s)"


def test_rate_limit_after_retries_stops_the_run(tmp_path: Path) -> None:
    client = FakeClient(fail={"open-interest-aggregated-history": RateLimitedError("Too Many Requests")})
    result = run(tmp_path, client, coins=("SOL",), concurrency=1)
    layers = by_layer(result)
    assert layers["funding"].outcome == "ok"
    assert layers["open_interest"].outcome == "skipped" and "rate limited" in layers["open_interest"].reason
    assert layers["etf_flows"].outcome == "ok"  # ran first
    assert all(layers[name].outcome == "skipped" for name in ("liquidation", "taker_volume",
                                                               "liquidation_exchanges"))
    assert result.exit_code == ExitCode.FINDINGS


def test_paging_and_resume_mid_series(tmp_path: Path) -> None:
    cfgs = configs("SOL", history_days=90)
    client = FakeClient()
    with SQLiteStore(tmp_path / "run.db") as store:
        first = run_preset(cfgs, client, store, now_ms=NOW, concurrency=1, budget=Budget(max_requests=2))
        funding = first.results[0]
        assert funding.series.layer == "funding" and funding.outcome == "skipped"
        assert funding.requests == 2 and "2 of 3 requests made" in funding.reason
        rows = store.rows(funding.series.id)
        # whole pages only, newest first: the forming bar and the 1999 closed bars before it
        assert len(rows) == 2000 and rows[-1]["time"] == bar_open(NOW, "1h") and rows[-1]["closed"] == 0
        assert store.cursor(funding.series.id) == rows[-2]["time"]
        client2 = FakeClient()
        second = run_preset(cfgs, client2, store, now_ms=NOW, concurrency=4)
        assert second.exit_code == ExitCode.OK
        funding_calls = [(p["start_time"], p["end_time"]) for ep, p in client2.calls if ep == "funding-rate-history"]
        # the last closed bar to the forming one, then the oldest part the first run did not reach
        assert funding_calls == [(rows[-2]["time"], rows[-1]["time"] + HOUR_MS),
                                 (bar_open(NOW - 90 * DAY_MS, "1h"), rows[0]["time"])]
        times = [r["time"] for r in store.rows(funding.series.id)]
        assert times == list(range(bar_open(NOW - 90 * DAY_MS, "1h"), bar_open(NOW, "1h") + 1, HOUR_MS))


def test_the_budgets_deadline_is_passed_to_every_call(tmp_path: Path, clock: Any) -> None:
    """--deadline is the budget's, on the client's clock, given to each call; the client is never changed."""
    client = FakeClient(clock=clock)
    budget = Budget(deadline_s=30, clock=clock)
    run(tmp_path, client, coins=("SOL",), budget=budget)
    assert set(client.deadlines_seen) == {clock() + 30} == {budget.deadline.at}
    assert not hasattr(client, "deadline")


def test_a_call_past_the_deadline_is_skipped_not_sent(tmp_path: Path, clock: Any) -> None:
    client = FakeClient(clock=clock)
    budget = Budget(deadline_s=30, clock=clock)
    budget.deadline.cut(clock() - 1)  # as if cut before the run (the earlier time stays)
    result = run(tmp_path, client, coins=("SOL",), budget=budget)
    assert client.calls == [] and {r.outcome for r in result.results} == {"skipped"}
    assert result.budget_reason == "deadline reached (--deadline 30s)"


def test_hung_endpoint_is_cut_at_the_deadline(tmp_path: Path, clock: Any) -> None:
    """A real CoinGlassClient whose endpoint never answers (every attempt a 30 s read timeout)."""
    import requests

    from cgpreset.api.client import CoinGlassClient
    from cgpreset.settings import Settings

    class HungSession(requests.Session):
        def get(self, url: str, **kw: Any) -> Any:  # type: ignore[override]
            clock.sleep(kw["timeout"][1])  # the read timeout passes (on the fake clock)
            raise requests.ReadTimeout("read timed out")

    client = CoinGlassClient(Settings(api_key="k", base_url="http://x"), session=HungSession(), clock=clock,
                             sleep=clock.sleep, plan=Plan.STANDARD)
    started = clock()
    with SQLiteStore(tmp_path / "run.db") as store:
        result = run_preset(configs("SOL"), client, store, now_ms=NOW, concurrency=1,
                            budget=Budget(deadline_s=45, clock=clock), clock=clock)
    assert clock() - started <= 45.001  # not 6 series x 5 attempts x 30 s
    assert {r.outcome for r in result.results} == {"skipped"}
    assert all(r.reason.startswith("deadline reached (--deadline 45s); 0 of 1 requests made, resumes next run")
               for r in result.results)
    assert result.budget_reason == "deadline reached (--deadline 45s)" and client.deadline is None
    assert result.exit_code == ExitCode.FINDINGS


def test_rate_limit_stops_waiting_threads_and_says_why(tmp_path: Path, clock: Any) -> None:
    limited = threading.Event()
    waiting = threading.Event()  # funding has taken its budget and sent its request

    class Waiting(FakeClient):
        """Funding waits (as in the limiter) while open interest is rate limited after its retries."""

        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            if ep.id == "open-interest-aggregated-history":
                assert waiting.wait(5)  # else funding may see the spent budget before it asks at all
                limited.set()
                raise RateLimitedError("Too Many Requests")
            if ep.id == "funding-rate-history":
                waiting.set()
                assert limited.wait(5)
                deadline = kw["deadline"]
                for _ in range(500):  # until the runner has cut the run's deadline
                    if deadline.at is not None:
                        break
                    threading.Event().wait(0.01)
                self.cut_at = deadline.at
            return super().request(ep, params, **kw)

    client = Waiting(clock=clock)
    with SQLiteStore(tmp_path / "run.db") as store:
        result = run_preset(configs("SOL"), client, store, now_ms=NOW, concurrency=6)
    assert client.cut_at == clock()  # the run's deadline, cut during the run (on the client's clock)
    layers = by_layer(result)
    assert layers["open_interest"].outcome == layers["funding"].outcome == "skipped"
    for name in ("open_interest", "funding"):
        assert layers[name].reason.startswith(
            "rate limited after retries (the rate budget is per key, so the whole run stops; "), name
    assert result.budget_reason.startswith("rate limited after retries (the rate budget is per key")


def test_max_requests_counts_the_plan_call(tmp_path: Path) -> None:
    class Detecting(FakeClient):
        def plan(self, **kw: Any) -> Plan:
            self.calls.append(("account-subscription", {}))
            self.stats.add(requests=1, calls=1)
            return super().plan(**kw)

    client = Detecting()
    result = run(tmp_path, client, coins=("SOL",), concurrency=1, budget=Budget(max_requests=3))
    assert len(client.calls) == 3 and client.calls[0][0] == "account-subscription"
    assert sum(1 for r in result.results if r.outcome == "ok") == 2
    zero = Detecting()  # a store with no recorded plan (the first run's would be reused: no lookup)
    nothing = run(tmp_path / "fresh", zero, coins=("SOL",), budget=Budget(max_requests=0))
    assert zero.calls == [] and {r.outcome for r in nothing.results} == {"skipped"}
    assert nothing.results[0].reason == ("budget exhausted (--max-requests 0) before the key's plan was known; "
                                         "resumes next run")
    fixed = FakeClient()  # plan known without a request: nothing booked for it
    with SQLiteStore(tmp_path / "fixed.db") as store:
        run_preset(configs("SOL"), fixed, store, now_ms=NOW, concurrency=1, budget=Budget(max_requests=3))
    assert len(fixed.calls) == 3


def test_interval_below_the_keys_floor_stops_before_any_data_request(tmp_path: Path) -> None:
    client = FakeClient(plan=Plan.HOBBYIST)
    with SQLiteStore(tmp_path / "run.db") as store, pytest.raises(PlanMismatchError) as err:
        run_preset(configs("SOL", "BTC"), client, store, now_ms=NOW)
    assert err.value.problems == ["sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
                                  "btc.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]
    assert err.value.exit_code == ExitCode.USAGE and client.calls == []
    with SQLiteStore(tmp_path / "run.db") as store:
        assert store.runs() == []


def test_interrupted_run_closes_its_runs_row(tmp_path: Path) -> None:
    class CtrlC(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            if ep.id == "liquidation-aggregated-history":
                raise KeyboardInterrupt
            return super().request(ep, params, **kw)

    with SQLiteStore(tmp_path / "run.db") as store, pytest.raises(KeyboardInterrupt):
        run_preset(configs("SOL"), CtrlC(), store, now_ms=NOW, concurrency=1)
    with SQLiteStore(tmp_path / "run.db") as store:
        (row,) = store.runs()
    assert row["status"] == "interrupted" and row["exit_code"] == 130 and row["ended_at"] is not None
    under_way = {k: v for k, v in row["outcomes"].items() if k.startswith("liquidation/")}
    assert [v["outcome"] for v in under_way.values()] == ["skipped"]  # the series the Ctrl-C came in
    assert next(iter(under_way.values()))["reason"] == ("interrupted after 0 of 1 requests (0 rows stored, 0 new); "
                                                        "resumes next run")
    others = {k: (v["outcome"], v["reason"]) for k, v in row["outcomes"].items() if k not in under_way}
    assert all(o == "ok" or why.startswith("interrupted") for o, why in others.values()), others  # or begun as it came


def test_skipped_series_report_no_freshness_findings(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "run.db") as store:
        result = run_preset(configs("SOL", history_days=90), FakeClient(), store, now_ms=NOW, concurrency=1,
                            budget=Budget(max_requests=2))
    funding = by_layer(result)["funding"]
    assert funding.outcome == "skipped" and funding.rows == 2000  # the two newest pages arrived
    assert {c.name for c in funding.checks} == {"gaps", "ohlc", "all_zero"}  # no freshness verdict
    (gaps,) = funding.findings  # the oldest part it did not reach yet: named, asked for next run
    assert gaps.name == "gaps" and gaps.detail.startswith("161 bars missing in 1 span")


def test_gap_at_the_run_boundary_is_found(tmp_path: Path) -> None:
    run(tmp_path, FakeClient(), coins=("SOL",))

    class Lossy(FakeClient):  # the API lost the bars right after our cursor
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "funding-rate-history":
                resp.data = [r for r in resp.data if r["time"] >= bar_open(self.now_ms, "1h") - HOUR_MS]
            return resp

    later = run(tmp_path, Lossy(NOW + 5 * HOUR_MS), coins=("SOL",))
    funding = by_layer(later)["funding"]
    assert [(c.name, c.detail) for c in funding.findings] == [
        ("gaps", "4 bars missing in 1 span (first 2025-11-24T16:00Z to 2025-11-24T20:00Z); "
                 "the next run asks for them again")]


def test_times_outside_the_window_fail_the_series_and_store_nothing(tmp_path: Path) -> None:
    class Seconds(FakeClient):  # an API change: times in seconds
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "funding-rate-history":
                resp.data = [{**r, "time": r["time"] // 1000} for r in resp.data]
            return resp

    result = run(tmp_path, Seconds(), coins=("SOL",))
    funding = by_layer(result)["funding"]
    assert funding.outcome == "failed" and funding.error.kind.value == "malformed_response"
    assert "rows have a time outside the requested window" in funding.reason
    assert "(seconds, not milliseconds?); nothing stored" in funding.reason
    assert all(r.outcome == "ok" for r in result.results if r.series.layer != "funding")
    with SQLiteStore(tmp_path / "run.db") as store:
        assert store.count(funding.series.id) == 0 and store.cursor(funding.series.id) is None


def test_rate_wait_is_wall_clock_not_summed_over_threads(clock: Any) -> None:
    from cgpreset.api.ratelimit import RateLimiter

    both_waiting = threading.Barrier(2)

    def sleep(seconds: float) -> None:  # two threads wait at once; the clock moves once
        if both_waiting.wait() == 0:
            clock.sleep(seconds)
        both_waiting.wait()

    limiter = RateLimiter(1, window=9, margin=1, clock=clock, sleep=sleep)
    limiter.acquire()
    limiter.set_limit(2)
    limiter._own.append(clock())  # the window is full: the next two must wait 10 s
    threads = [threading.Thread(target=limiter.acquire) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert limiter.waited_seconds == 20 and limiter.wall_waited_seconds == 10


def test_a_standing_budget_starves_no_series(tmp_path: Path) -> None:
    """The same --max-requests every run: series skipped last time (or with the oldest cursor) go
    first, so every series gets its turn instead of the same ones being skipped every run."""
    cfgs = configs("SOL", "BTC")
    skipped_each_run: list[set[str]] = []
    with SQLiteStore(tmp_path / "run.db") as store:
        for _ in range(3):
            result = run_preset(cfgs, FakeClient(), store, now_ms=NOW, concurrency=1, budget=Budget(max_requests=6))
            skipped_each_run.append({r.series.id for r in result.results if r.outcome == "skipped"})
        total = len(result.results)
    first, second, _ = skipped_each_run
    assert first and second and not first & second  # what the first run skipped, the second ran
    assert len(first) + len(second) <= total



def test_a_deadline_stop_before_the_deadline_says_the_next_budget_wait_would_pass_it(tmp_path: Path) -> None:
    """--deadline 25 stopped after a second with "deadline reached": it stopped because the next wait
    for the rate budget (about a minute, the key held to 4 a minute) would have ended past it."""
    import json
    import re
    import time as wall

    from click.testing import CliRunner

    from cgpreset.cli import cli
    from cgpreset.emulator import serve
    from tests.test_run_e2e import write_configs

    cfgs = write_configs(tmp_path / "c", ("SOL",))
    with serve(plan="standard", key_budget=4) as emu:
        env = {"CGPRESET_BASE_URL": emu.base_url, "COINGLASS_API_KEY": emu.api_key}
        started = wall.monotonic()
        result = CliRunner().invoke(cli, ["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"),
                                          "--deadline", "25", "--concurrency", "1", "--json"], env=env)
        took = wall.monotonic() - started
    assert result.exit_code == ExitCode.FINDINGS, result.output
    assert took < 20  # it did not wait for the deadline
    doc = json.loads(result.stdout)
    assert re.fullmatch(r"stopped after \d+\.\ds of --deadline 25s: the next wait for the rate budget "
                        r"\(\d+ s\) would pass the deadline", doc["budget"]), doc["budget"]
    skipped = [s for s in doc["series"] if s["outcome"] == "skipped"]
    assert skipped and all(s["reason"].startswith(doc["budget"] + "; ") for s in skipped)


def test_a_run_whose_workers_are_all_busy_keeps_its_heartbeat(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes refresh the runs row's heartbeat; a run that writes nothing for long (budget waits,
    retries) beats from its main thread, so no other run takes it for a killed one."""
    import cgpreset.run.engine as engine

    monkeypatch.setattr(engine, "BEAT_EVERY_S", 0.01)
    ticks = iter(range(NOW, NOW + 10**9, 60_000))  # the store's clock: a minute per reading
    beats: list[int] = []
    released = threading.Event()

    class Busy(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            assert released.wait(30), "no heartbeat while the workers were busy"
            return super().request(ep, params, **kw)

    with SQLiteStore(tmp_path / "run.db", clock=lambda: next(ticks)) as store:
        beat = store.heartbeat

        def counted(run_id: int, **kw: Any) -> None:
            beat(run_id, **kw)
            beats.append(store.runs()[-1]["heartbeat_at"])
            if len(beats) == 3:
                released.set()

        monkeypatch.setattr(store, "heartbeat", counted)
        result = run_preset(configs("SOL"), Busy(), store, now_ms=NOW)
    assert result.exit_code == ExitCode.OK
    assert len(beats) >= 3 and beats == sorted(beats) and len(set(beats)) == len(beats)  # each a later time
