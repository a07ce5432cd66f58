"""Report rendering: deterministic text, stable JSON schema, exit codes."""

from __future__ import annotations

import json

from cgpreset.errors import AuthError, ExitCode, ServerError
from cgpreset.plans import HOUR_MS, Plan
from cgpreset.run.checks import Check
from cgpreset.run.engine import RunResult, SeriesResult
from cgpreset.run.report import format_age, plan_summary, render_text, run_json, run_summary, run_table, totals
from cgpreset.run.series import expand, plan_run
from tests.test_series import NOW, configs


def result(**by_layer: dict) -> RunResult:
    series = expand(configs("SOL"))
    results = []
    for s in series:
        kw = {"rows": 10, "new_rows": 10, "requests": 1, "planned": 1, "latencies": [0.1],
              "last_closed": NOW - NOW % HOUR_MS - HOUR_MS}
        kw.update(by_layer.get(s.layer, {}))
        results.append(SeriesResult(s, **kw))
    return RunResult(results, Plan.STANDARD, {"requests": 7, "retries": 1, "rate_limited": 0,
                                              "rate_wait_seconds": 0.0}, 1.5, NOW, run_id=4)


def test_format_age() -> None:
    assert [format_age(s) for s in (None, 5, 125, 3 * 3600 + 300, 2 * 86400 + 7200)] == [
        "-", "5s", "2m", "3h 05m", "2d 02h"]


def test_text_table_is_deterministic() -> None:
    r = result(funding={"outcome": "failed", "reason": "server_error: GET /x: Server Error (code 500)",
                        "error": ServerError("Server Error", path="/x", code="500"), "rows": 0, "new_rows": 0},
               open_interest={"checks": [Check("gaps", False, "2 bars missing before 3600000")]})
    text = render_text(run_table(r))
    assert text == render_text(run_table(r))
    lines = text.splitlines()
    assert lines[0].split() == ["coin", "layer", "outcome", "rows", "new", "last", "bar", "latency", "note"]
    assert lines[2].split()[:5] == ["SOL", "funding", "failed", "0", "0"]
    assert "server_error: GET /x: Server Error (code 500)" in lines[2]
    assert lines[3].split()[:3] == ["SOL", "open_interest", "ok*"]
    assert "gaps: 2 bars missing before 3600000" in lines[3]
    assert lines[3].split()[5:8] == ["25m", "100", "ms"]  # last closed bar closed 25 minutes ago
    assert lines[-1].split()[:2] == ["*", "etf_flows"]
    assert run_summary(r) == (
        "6 series: 5 ok, 0 empty, 1 failed, 0 skipped, 1 check findings | 50 rows (50 new) | 7 requests, "
        "1 retries, 0 rate-limited, 0.0s waiting for the rate budget | 1.5s")
    assert r.exit_code == ExitCode.FINDINGS


def test_json_schema() -> None:
    r = result(funding={"outcome": "skipped", "reason": "budget exhausted (--max-requests 3); 0 of 1 requests "
                        "made, resumes next run", "rows": 0, "new_rows": 0, "latencies": []})
    doc = json.loads(json.dumps(run_json(r, store="x.db")))
    assert list(doc) == ["schema", "run_id", "store", "plan", "exit_code", "budget", "totals", "series"]
    assert doc["schema"] == "cgpreset.run/1" and doc["exit_code"] == 1 and doc["run_id"] == 4
    s = doc["series"][0]
    assert list(s) == ["id", "coin", "layer", "configs", "endpoint", "params", "interval", "outcome", "reason",
                       "rows", "new_rows", "requests", "planned_requests", "last_bar", "last_bar_age_seconds",
                       "latency_ms", "checks", "error", "notes"]
    assert s["outcome"] == "skipped" and s["latency_ms"] is None and s["last_bar_age_seconds"] == 25 * 60
    assert totals(r)["skipped"] == 1


def test_exit_codes() -> None:
    assert result().exit_code == ExitCode.OK
    refused = {layer: {"outcome": "failed", "error": AuthError("API key missing.", code="401")}
               for layer in ("funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges",
                             "etf_flows")}
    assert result(**refused).exit_code == ExitCode.API
    refused["funding"] = {"outcome": "failed", "error": ServerError("x")}
    assert result(**refused).exit_code == ExitCode.FINDINGS
    assert result(open_interest={"outcome": "empty", "reason": "no rows"}).exit_code == ExitCode.FINDINGS


def test_plan_summary() -> None:
    rp = plan_run(expand(configs("SOL", "BTC")), cursors={}, now_ms=NOW, plan=Plan.HOBBYIST)
    assert plan_summary(rp) == ("11 series, 11 requests; at the hobbyist plan's 30/min that is 0.4 min of "
                                "budget (at least 0 min wall time beyond the first burst)")


def test_plain_text_has_no_trailing_blanks() -> None:
    text = render_text(run_table(result()))
    assert text.endswith("\n") and all(line == line.rstrip() for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) < 120  # not padded to the 200-column canvas


def test_rate_wait_wall_clock_and_summed_over_threads() -> None:
    r = result()
    r.stats.update(rate_wait_seconds=12.5, rate_wait_thread_seconds=40.0)
    t = totals(r)
    assert (t["rate_wait_seconds"], t["rate_wait_thread_seconds"]) == (12.5, 40.0)
    assert "12.5s waiting for the rate budget" in run_summary(r)
