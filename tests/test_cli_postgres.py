"""The CLI on a PostgreSQL store (a real server, see tests/pg_server.py): every command that takes
--store, a refused login, incremental reruns, and concurrent runners on one database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from cgpreset.plans import HOUR_MS
from cgpreset.store.schema import table_name
from tests.conftest import REPO
from tests.test_run_e2e import FAST, invoke, write_configs

SUBSCRIPTION = "/api/user/account/subscription"


def password_of(dsn: str) -> str:
    password = urlsplit(dsn).password
    assert password, "the test server's DSN carries a password"
    return password


def pg_integrity(dsn: str) -> dict[str, tuple[int, int]]:
    """Every series with a cursor has contiguous bars up to it: {series: (bars, cursor)}."""
    import psycopg

    out = {}
    with psycopg.connect(dsn) as db:
        found = db.execute("SELECT s.key, s.id, s.layer, c.last_closed FROM cursors c JOIN series s ON s.id = c.series "
                           "WHERE c.last_closed IS NOT NULL").fetchall()
        for series, sid, layer, cursor in found:
            if series.startswith("etf_flows"):
                continue
            times = [t for (t,) in db.execute(f"SELECT time FROM {table_name(layer)} WHERE series = %s "
                                              "ORDER BY time", (sid,))]
            assert times == list(range(times[0], times[-1] + 1, HOUR_MS)), f"{series} has a hole"
            assert cursor in times, series
            out[series] = (len(times), cursor)
    return out


def test_every_store_command_works_on_postgresql_and_never_shows_the_password(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str) -> None:
    cfgs = write_configs(tmp_path / "configs")
    secret = password_of(pg_dsn)
    first = invoke(["run-preset", str(cfgs), "--store", pg_dsn, "--json"], emu_env)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["store"].startswith("postgresql://") and "<redacted>" in doc["store"]
    assert doc["totals"]["ok"] == 11 and doc["totals"]["new_rows"] > 0
    assert not any(tmp_path.glob("postgresql*"))  # the URL never became a file name
    env = {**emu_env, "CGPRESET_STORE": pg_dsn}
    dry = invoke(["run-preset", str(cfgs), "--dry-run"], env)
    assert dry.exit_code == 0 and "11 series, 11 requests" in dry.stdout
    quiet = invoke(["health", str(cfgs)], env)
    assert quiet.exit_code == 0 and "stream: no stream has run against postgresql://" in quiet.stdout
    streamed = invoke(["stream", "--config", str(cfgs), "--max-events", "3", "--store"], env)
    assert streamed.exit_code == 0, streamed.output
    live = invoke(["health", str(cfgs)], env)
    assert live.exit_code == 0 and "stream: run #1 stopped" in live.stdout
    exported = invoke(["export", "funding", "--coin", "SOL"], env)
    assert exported.exit_code == 0 and exported.stdout.count("\n") == 1 + 3 * 24 + 1
    report = invoke(["report", str(cfgs), "--html", str(tmp_path / "r.html")], env)
    assert report.exit_code == 0, report.output
    verbose = invoke(["-vv", "run-preset", str(cfgs), "--json"], env)
    assert verbose.exit_code == 0
    for out in (first, dry, quiet, streamed, live, exported, report, verbose):
        assert secret not in out.output
    assert secret not in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("command", [
    ["run-preset", "CFGS"], ["run-preset", "CFGS", "--dry-run"], ["health", "CFGS"],
    ["stream", "--max-events", "1", "--store"], ["export", "funding"], ["report", "CFGS", "--html", "r.html"],
])
def test_a_refused_login_is_one_line_and_exit_2(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                               pg_dsn: str, command: list[str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    secret = password_of(pg_dsn)
    wrong = pg_dsn.replace(f":{secret}@", ":not-the-password@")
    args = [str(cfgs) if a == "CFGS" else str(tmp_path / a) if a == "r.html" else a for a in command]
    result = invoke(args, {**emu_env, "CGPRESET_STORE": wrong})
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "login refused" in errors[0] and "<redacted>" in errors[0], result.stderr
    assert "Traceback" not in result.output
    assert secret not in result.output and "not-the-password" not in result.output
    assert not [r for r in emulator.recorded() if r.path != SUBSCRIPTION]  # refused before any data request


def test_an_incremental_rerun_sends_at_most_one_request_per_series(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"), history_days=60)  # 2 pages a series
    first = invoke(["run-preset", str(cfgs), "--store", pg_dsn, "--json"], emu_env)
    assert first.exit_code == 0, first.output
    backfill = [r for r in emulator.recorded() if r.path != SUBSCRIPTION]
    emulator.reset_records()
    second = invoke(["run-preset", str(cfgs), "--store", pg_dsn, "--json"], emu_env)
    assert second.exit_code == 0, second.output
    series = json.loads(second.stdout)["totals"]["series"]
    data_calls = [r for r in emulator.recorded() if r.path != SUBSCRIPTION]
    assert len(backfill) > series and len(data_calls) <= series
    assert all(new == 0 or new <= 2 for new in (s["new_rows"] for s in json.loads(second.stdout)["series"]))
    pg_integrity(pg_dsn)


def test_four_concurrent_runs_on_one_database_all_exit_0_and_lose_nothing(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC", "ETH"), history_days=40)
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_STORE": pg_dsn, "PYTHONPATH": str(REPO)}
    env.pop("CGPRESET_TEST_PG_DSN", None)
    procs = [subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in outs]
    docs = [json.loads(out) for out, _ in outs]
    assert all(d["totals"]["failed"] == 0 and d["totals"]["ok"] == d["totals"]["series"] for d in docs)
    found = pg_integrity(pg_dsn)
    assert len(found) == 3 * 4  # 3 coins x 4 bar layers (ETF flows and snapshots aside)
    for series, (bars, _) in found.items():
        assert bars >= 40 * 24, series
    import psycopg

    with psycopg.connect(pg_dsn) as db:
        runs = db.execute("SELECT status, exit_code FROM runs ORDER BY id").fetchall()
    assert runs == [("finished", 0)] * 4
