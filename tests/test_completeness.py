"""The store is complete or says it is not, against the emulator through the command line.

An interrupted deeper backfill leaves no permanent hole; bars an answer lacked (a hole inside it,
a late start) are fetched by the next run; rows off the bar grid or dated ahead are refused, a
finding naming the series. Each run exits 1 while the store lacks bars it wants, 0 once healed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from cgpreset.emulator import serve
from cgpreset.plans import DAY_MS, HOUR_MS
from tests.test_run_e2e import invoke, write_configs


def emu_env(emu: Any) -> dict[str, str]:
    return {"CGPRESET_BASE_URL": emu.base_url, "CGPRESET_WS_URL": emu.ws_url, "COINGLASS_API_KEY": emu.api_key}


def run_json(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = invoke(["run-preset", *args, "--json"], env)
    return result.exit_code, json.loads(result.stdout)


def series(report: dict[str, Any], layer: str) -> dict[str, Any]:
    return next(s for s in report["series"] if s["layer"] == layer)


def stored_hours(db: Path, layer: str) -> list[int]:
    con = sqlite3.connect(db)
    try:
        return [t for (t,) in con.execute(
            f"SELECT time FROM data_{layer} d JOIN series s ON s.id = d.series WHERE d.closed = 1 ORDER BY time")]
    finally:
        con.close()


def contiguous(times: list[int]) -> bool:
    return times == list(range(times[0], times[-1] + HOUR_MS, HOUR_MS))


def test_an_interrupted_deeper_backfill_is_completed_by_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with serve(plan="standard", latency_ms=0) as emu:
        env = emu_env(emu)
        configs = write_configs(tmp_path / "cfg", ("SOL",), history_days=30)
        args = [str(configs), "--store", str(db), "--layers", "open_interest"]
        assert run_json(args, env)[0] == 0
        write_configs(tmp_path / "cfg", ("SOL",), history_days=150)
        # the plan lookup, the newest window, one older window: then the budget stops the run
        code, report = run_json([*args, "--max-requests", "3"], env)
        assert code == 1 and series(report, "open_interest")["outcome"] == "skipped"
        partial = stored_hours(db, "open_interest")
        assert contiguous(partial) and len(partial) < 150 * 24
        code, report = run_json(args, env)  # the rest of the 150 days, then nothing more
        assert code == 0, report
        full = stored_hours(db, "open_interest")
        assert contiguous(full) and len(full) >= 150 * 24
        code, report = run_json(args, env)
        assert code == 0 and report["totals"]["requests"] == 1


def test_a_hole_and_a_late_start_in_answers_are_fetched_again(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    faults = {"rules": [
        {"path": "/api/futures/open-interest/aggregated-history", "kind": "hole", "at": 100, "bars": 5, "nth": 1},
        {"path": "/api/futures/open-interest/aggregated-history", "kind": "late_start", "bars": 24, "nth": 2},
    ]}
    with serve(plan="standard", latency_ms=0, faults=faults) as emu:
        env = emu_env(emu)
        configs = write_configs(tmp_path / "cfg", ("SOL",), history_days=60)  # 1441 bars: two windows
        args = [str(configs), "--store", str(db), "--layers", "open_interest"]
        code, report = run_json(args, env)
        oi = series(report, "open_interest")
        assert code == 1 and oi["outcome"] == "ok"  # data arrived, but a check failed: ok* in the table
        gaps = next(c for c in oi["checks"] if c["name"] == "gaps")
        assert not gaps["ok"] and gaps["detail"].startswith("29 bars missing in 2 spans")
        code, report = run_json(args, env)  # the faults are spent: the next run asks for both spans
        assert code == 0, report
        times = stored_hours(db, "open_interest")
        assert contiguous(times) and times[0] <= times[-1] - 60 * DAY_MS + HOUR_MS


def test_rows_off_the_bar_grid_or_dated_ahead_are_refused_naming_the_series(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    faults = {"rules": [
        {"path": "/api/futures/open-interest/aggregated-history", "kind": "misaligned"},  # every bar at :30
        {"path": "/api/etf/bitcoin/flow-history", "kind": "misaligned", "shift_ms": 12 * HOUR_MS, "nth": 1},
        {"path": "/api/etf/bitcoin/flow-history", "kind": "misaligned", "shift_ms": 3 * DAY_MS, "nth": 2},
    ]}
    with serve(plan="standard", latency_ms=0, faults=faults) as emu:
        env = emu_env(emu)
        configs = write_configs(tmp_path / "cfg", ("SOL",), history_days=3)
        args = [str(configs), "--store", str(db), "--layers", "open_interest,etf_flows"]
        code, report = run_json(args, env)
        assert code == 1
        oi = series(report, "open_interest")
        off = next(c for c in oi["checks"] if c["name"] == "off_grid")
        assert not off["ok"] and "open_interest/SOL/all/1h" in off["detail"] and "off the 1h bar grid" in off["detail"]
        assert stored_hours(db, "open_interest") == []  # not one bar at :30 stored
        etf = series(report, "etf_flows")
        assert any(c["name"] == "off_grid" and not c["ok"] for c in etf["checks"])  # shifted by 12 hours
        code, report = run_json(args, env)  # ETF rows three days ahead: on the grid, but in the future
        etf = series(report, "etf_flows")
        ahead = next(c for c in etf["checks"] if c["name"] == "future")
        assert not ahead["ok"] and "etf_flows/*/bitcoin/1d" in ahead["detail"]
        con = sqlite3.connect(db)
        days = [t for (t,) in con.execute("SELECT time FROM data_etf_flows")]
        con.close()
        assert days and all(t % DAY_MS == 0 for t in days)  # no day twice, none at noon
        assert max(days) <= time.time() * 1000  # none dated ahead
