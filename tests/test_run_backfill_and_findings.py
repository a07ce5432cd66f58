"""What a run does with the history it is given: a deeper `history_days` backfills the older part
(a part the API does not have becomes a known hole after the runs allowed), an empty incremental
answer is an outage, duplicate times with other values and negative USD values are findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.errors import ExitCode
from cgpreset.plans import DAY_MS, HOUR_MS, bar_open
from cgpreset.run.engine import run_preset
from cgpreset.store.sqlite import SQLiteStore
from cgpreset.timeframes import KNOWN_HOLE_RUNS
from tests.fakes import FakeClient
from tests.test_series import NOW, configs


def _run(db: Path, client: FakeClient, days: int = 30, **kw: Any) -> Any:
    with SQLiteStore(db) as store:
        return run_preset(configs("SOL", history_days=days), client, store, now_ms=client.now_ms, **kw)


def _layer(result: Any, layer: str) -> Any:
    return next(r for r in result.results if r.series.layer == layer)


def test_an_empty_answer_on_an_incremental_window_is_empty_with_the_reason_exit_1(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    _run(db, FakeClient())
    later = _run(db, FakeClient(NOW + HOUR_MS, empty={"funding-rate-history"}))
    funding = _layer(later, "funding")
    assert funding.outcome == "empty"
    assert "holds the stored last closed bar and the forming bar: an outage" in funding.reason
    assert later.exit_code == ExitCode.FINDINGS


class Doubled(FakeClient):
    """Open interest sends one bar twice in the same answer, with different values; liquidations
    send a negative amount."""

    def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
        resp = super().request(ep, params, **kw)
        if ep.id == "open-interest-aggregated-history":
            rows = resp.data
            resp.data = [*rows[:5], {**rows[4], "close": "9.9"}, *rows[5:]]
        if ep.id == "liquidation-aggregated-history":
            resp.data = [{**r, "aggregated_short_liquidation_usd": -1.0} if i == 3 else r
                         for i, r in enumerate(resp.data)]
        return resp


def test_duplicate_times_with_other_values_and_negative_usd_are_findings(tmp_path: Path) -> None:
    result = _run(tmp_path / "run.db", Doubled())
    oi = _layer(result, "open_interest")
    dup = [c for c in oi.findings if c.name == "duplicates"]
    assert dup and "1 time sent twice with different values in one answer" in dup[0].detail
    liq = _layer(result, "liquidation")
    neg = [c for c in liq.findings if c.name == "negative_usd"]
    assert neg and "1 in aggregated_short_liquidation_usd" in neg[0].detail
    assert [c.name for c in _layer(result, "funding").findings] == []  # funding (percent) may be negative
    assert result.exit_code == ExitCode.FINDINGS


def test_the_same_bar_twice_with_the_same_values_is_no_finding(tmp_path: Path) -> None:
    class Same(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "open-interest-aggregated-history":
                resp.data = [*resp.data[:5], resp.data[4], *resp.data[5:]]
            return resp

    oi = _layer(_run(tmp_path / "run.db", Same()), "open_interest")
    assert oi.findings == []


def test_a_deeper_history_days_backfills_the_older_part(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    _run(db, FakeClient(), days=30)
    client = FakeClient(NOW + HOUR_MS)
    deeper = _run(db, client, days=90)
    funding = _layer(deeper, "funding")
    assert funding.outcome == "ok", funding.reason
    with SQLiteStore(db) as store:
        times = [r["time"] for r in store.rows(funding.series.id)]
    start = bar_open(NOW + HOUR_MS - 90 * DAY_MS, "1h")
    assert times[0] == start and len(times) == len(set(times)) == (bar_open(NOW + HOUR_MS, "1h") - start) // HOUR_MS + 1
    calls = [p for ep, p in client.calls if ep == "funding-rate-history"]
    assert len(calls) == 3  # the older 60 days (two windows) and the incremental window
    again = FakeClient(NOW + 2 * HOUR_MS)
    _run(db, again, days=90)
    assert len([1 for ep, _ in again.calls if ep == "funding-rate-history"]) == 1  # nothing older left to fetch


def test_a_deeper_history_the_api_does_not_have_is_asked_on_three_runs_then_a_known_hole(tmp_path: Path) -> None:
    listed = bar_open(NOW - 40 * DAY_MS, "1h")  # the coin's first bar: nothing older exists

    class Young(FakeClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "funding-rate-history":
                resp.data = [r for r in resp.data if r["time"] >= listed]
            return resp

    db = tmp_path / "run.db"
    _run(db, Young(), days=30)
    for run in range(1, KNOWN_HOLE_RUNS + 1):  # asked for on KNOWN_HOLE_RUNS runs in a row
        deeper = Young(NOW + run * HOUR_MS)
        result = _run(db, deeper, days=90)
        calls = [p for ep, p in deeper.calls if ep == "funding-rate-history"]
        assert len(calls) == 3  # the newest bars, then the 50 days the API lacks (1200 bars: 2 windows)
        findings = _layer(result, "funding").findings
        if run < KNOWN_HOLE_RUNS:  # not ok while the hole may still be filled
            assert [(c.name, "missing" in c.detail) for c in findings] == [("gaps", True)]
        else:  # the last of them records it as a known hole
            assert findings == []
    known = Young(NOW + 5 * HOUR_MS)
    result = _run(db, known, days=90)
    assert len([1 for ep, _ in known.calls if ep == "funding-rate-history"]) == 1
    funding = _layer(result, "funding")
    assert funding.outcome == "ok" and not funding.findings
    assert any("known hole" in c.detail and f"on {KNOWN_HOLE_RUNS} runs" in c.detail for c in funding.checks)
    with SQLiteStore(db) as st:
        (hole,) = st.coverage(funding.series.id)[funding.series.id].holes  # one, and none older than wanted
    assert hole.known and hole.end == listed and hole.attempts == KNOWN_HOLE_RUNS


def test_the_dry_run_counts_the_older_windows_a_deeper_history_needs(tmp_path: Path) -> None:
    import json

    import yaml
    from click.testing import CliRunner

    from cgpreset.cli import cli
    from cgpreset.clock import wall_ms

    db = tmp_path / "run.db"
    _run(db, FakeClient(wall_ms()), days=30)  # the dry run plans at the wall clock
    cfg = configs("SOL", history_days=90)[0][1]
    folder = tmp_path / "deploy"
    folder.mkdir()
    (folder / "sol.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    out = CliRunner().invoke(cli, ["run-preset", str(folder), "--store", str(db), "--dry-run", "--json",
                                   "--layers", "funding"], env={"CGPRESET_PLAN": "standard"})
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    funding = next(p for p in doc["series"] if p["layer"] == "funding")
    assert funding["requests"] == 3  # two windows of the 60 older days, and the incremental one
    assert any("60 older days" in n for n in funding["notes"])
