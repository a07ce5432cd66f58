"""The runner with a FakeClient: isolation of failures, budget → skipped, resume, exit codes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cgpreset.catalogue import Endpoint
from cgpreset.client import ClientStats, Response
from cgpreset.errors import ApiError, AuthError, ExitCode, RateLimitedError, ServerError
from cgpreset.plans import DAY_MS, HOUR_MS, Plan, bar_open, interval_ms
from cgpreset.runner import Budget, run_preset
from cgpreset.store import Store
from tests.test_series import NOW, configs


def fake_rows(ep: Endpoint, params: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    """Consistent data shaped like the API's (numbers as strings where the API sends strings)."""
    if ep.id == "liquidation-exchange-list":
        parts = [("Binance", 30.0, 10.0), ("OKX", 20.0, 5.0), ("Bybit", 10.0, 1.0), ("HTX", 4.0, 0.0)]
        long_all, short_all = sum(p[1] for p in parts), sum(p[2] for p in parts)
        return [{"exchange": n, "liquidation_usd": lo + sh, "longLiquidation_usd": lo, "shortLiquidation_usd": sh}
                for n, lo, sh in [("All", long_all, short_all), *parts]]
    if ep.id == "etf-bitcoin-flow-history":
        days = range(bar_open(now_ms, "1d") - 40 * DAY_MS, bar_open(now_ms, "1d"), DAY_MS)
        return [{"timestamp": d, "flow_usd": 3.0e6 + d % 7, "price_usd": 90000,
                 "etf_flows": [{"etf_ticker": "IBIT", "flow_usd": 2.0e6},
                               {"etf_ticker": "FBTC", "flow_usd": 1.0e6 + d % 7}]}
                for d in days]
    step = interval_ms(params["interval"])
    first = params["start_time"]
    last = min(params["end_time"] - 1, now_ms)
    times = range(bar_open(first, params["interval"]), bar_open(last, params["interval"]) + 1, step)
    times = list(times)[: params.get("limit", 1000)]
    if ep.id in ("funding-rate-history", "open-interest-aggregated-history"):
        return [{"time": t, "open": "1.0", "high": "2.0", "low": "0.5", "close": str(1 + (t // step) % 5 / 10)}
                for t in times]
    if ep.id == "liquidation-aggregated-history":
        return [{"time": t, "aggregated_long_liquidation_usd": 5.0 + t % 3,
                 "aggregated_short_liquidation_usd": 1.0} for t in times]
    return [{"time": t, "aggregated_buy_volume_usd": 7.0, "aggregated_sell_volume_usd": 6.0 + t % 2}
            for t in times]


class FakeClient:
    """Answers like CoinGlass from generated data; `fail` maps endpoint id -> exception to raise."""

    def __init__(self, now_ms: int = NOW, *, fail: dict[str, ApiError] | None = None,
                 empty: set[str] | None = None, plan: Plan | ApiError = Plan.STANDARD) -> None:
        self.now_ms = now_ms
        self.fail = fail or {}
        self.empty = empty or set()
        self._plan = plan
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stats = ClientStats()
        self._lock = threading.Lock()

    def plan(self) -> Plan:
        if isinstance(self._plan, ApiError):
            raise self._plan
        return self._plan

    def request(self, ep: Endpoint, params: dict[str, Any] | None = None) -> Response:
        params = dict(params or {})
        with self._lock:
            self.calls.append((ep.id, params))
        self.stats.add(requests=1)
        if ep.id in self.fail:
            raise self.fail[ep.id]
        data = [] if ep.id in self.empty else fake_rows(ep, params, self.now_ms)
        self.stats.add(calls=1)
        return Response(ep.path, params, data, 0.05, 1)


def run(tmp_path: Path, client: FakeClient, coins: tuple[str, ...] = ("SOL", "BTC"), **kw: Any) -> Any:
    with Store(tmp_path / "run.db") as store:
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
    assert funding.rows == 2 and funding.new_rows == 1  # previously forming bar + the new forming bar
    with Store(tmp_path / "run.db") as store:
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
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None) -> Response:
            resp = super().request(ep, params)
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
    with Store(tmp_path / "run.db") as store:
        first = run_preset(cfgs, client, store, now_ms=NOW, concurrency=1, budget=Budget(max_requests=2))
        funding = first.results[0]
        assert funding.series.layer == "funding" and funding.outcome == "skipped"
        assert funding.requests == 2 and "2 of 3 requests made" in funding.reason
        rows = store.rows(funding.series.id)
        assert len(rows) == 2000 and store.cursor(funding.series.id) == rows[-1]["time"]  # whole pages only
        client2 = FakeClient()
        second = run_preset(cfgs, client2, store, now_ms=NOW, concurrency=4)
        assert second.exit_code == ExitCode.OK
        funding_calls = [p for ep, p in client2.calls if ep == "funding-rate-history"]
        assert len(funding_calls) == 1 and funding_calls[0]["start_time"] == rows[-1]["time"] + HOUR_MS
        times = [r["time"] for r in store.rows(funding.series.id)]
        assert times == list(range(times[0], bar_open(NOW, "1h") + 1, HOUR_MS))
