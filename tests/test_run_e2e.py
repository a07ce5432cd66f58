"""run-preset end to end against the emulator: store, rerun, faults, budget, SIGKILL, exit codes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.plans import HOUR_MS, bar_open
from cgpreset.store.schema import table_name
from tests.conftest import REPO
from tests.store_pages import stored_rows
from tests.test_series import make_config

FAST = {"CGPRESET_MAX_ATTEMPTS": "2", "CGPRESET_BACKOFF_MAX": "0"}


def write_configs(folder: Path, coins: tuple[str, ...] = ("SOL", "BTC"), **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    days = kw.pop("history_days", 3)
    for coin in coins:
        cfg = make_config(coin, history_days=days, **kw)
        (folder / f"{coin.lower()}.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    return folder


def invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env={**FAST, **env}, catch_exceptions=False)


def series_integrity(db: Path) -> dict[str, tuple[int, int]]:
    """Every series with a cursor has contiguous bars up to it: {series: (bars, cursor)}."""
    con = sqlite3.connect(db)
    out = {}
    for series, sid, layer, cursor in con.execute(
            "SELECT s.key, s.id, s.layer, c.last_closed FROM cursors c JOIN series s ON s.id = c.series "
            "WHERE c.last_closed IS NOT NULL").fetchall():
        if series.startswith("etf_flows"):
            continue
        table = table_name(layer)
        times = [t for (t,) in con.execute(f"SELECT time FROM {table} WHERE series = ? ORDER BY time", (sid,))]
        step = HOUR_MS
        assert times == list(range(times[0], times[-1] + 1, step)), f"{series} has a hole"
        assert cursor in times and all(t <= cursor + step for t in times), series
        out[series] = (len(times), cursor)
    con.close()
    return out


def test_rows_land_and_rerun_adds_none_twice(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs")
    db = tmp_path / "run.db"
    first = invoke(["run-preset", str(cfgs), "--store", str(db), "--json"], emu_env)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    assert doc["schema"] == "cgpreset.run/1" and doc["exit_code"] == 0 and doc["plan"] == "standard"
    assert doc["totals"]["series"] == 11 and doc["totals"]["ok"] == 11
    assert set(doc["totals"]) == {"series", "ok", "empty", "failed", "skipped", "findings", "rows", "new_rows",
                                  "requests", "retries", "rate_limited", "rate_wait_seconds",
                                  "rate_wait_thread_seconds", "seconds"}
    funding = next(s for s in doc["series"] if s["layer"] == "funding" and s["coin"] == "SOL")
    assert set(funding) >= {"coin", "layer", "endpoint", "params", "outcome", "rows", "new_rows", "checks",
                            "error", "latency_ms", "last_bar_age_seconds"}
    assert funding["endpoint"] == "/api/futures/funding-rate/history"
    assert funding["params"] == {"exchange": "Binance", "symbol": "SOLUSDT", "interval": "1h"}
    assert funding["rows"] == funding["new_rows"] == 3 * 24 + 1
    con = sqlite3.connect(db)
    total = stored_rows(con)
    con.close()
    emulator.reset_records()
    second = invoke(["run-preset", str(cfgs), "--store", str(db), "--json"], emu_env)
    assert second.exit_code == 0
    doc2 = json.loads(second.stdout)
    data_calls = [r for r in emulator.recorded() if r.path != "/api/user/account/subscription"]
    assert len(data_calls) == 11  # one request per series
    new = sum(s["new_rows"] for s in doc2["series"])
    con = sqlite3.connect(db)
    assert stored_rows(con) == total + new
    assert con.execute("SELECT count(*) FROM runs WHERE ended_at IS NOT NULL").fetchone()[0] == 2
    blob = db.read_bytes() + Path(str(db) + "-wal").read_bytes() if Path(str(db) + "-wal").exists() else b""
    con.close()
    assert emulator.api_key.encode() not in blob + db.read_bytes()
    assert emulator.api_key not in first.output + second.output
    series_integrity(db)


def test_text_report_and_dry_run(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    dry = invoke(["run-preset", str(cfgs), "--dry-run"], emu_env)
    assert dry.exit_code == 0
    # the key's plan is looked up (no data request); with CGPRESET_PLAN not even that
    assert [r.path for r in emulator.recorded()] == ["/api/user/account/subscription"]
    assert "6 series, 6 requests; at the standard plan's 300/min" in dry.stdout
    run = invoke(["run-preset", str(cfgs)], emu_env)
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["coin", "layer", "outcome", "rows", "new", "last", "bar", "latency", "note"]
    assert "\x1b[" not in run.stdout  # no colours when not a terminal
    assert "6 series: 6 ok, 0 empty, 0 failed, 0 skipped, 0 check findings" in run.stdout
    assert Path("cgpreset.db").exists()  # settings.store default, relative to cwd


def test_faults_on_one_layer_fail_only_that_layer(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs")
    emulator.set_faults([{"path": "/api/futures/liquidation/aggregated-history", "kind": "code_500"}])
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "f.db"), "--json"], emu_env)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    bad = [s for s in doc["series"] if s["outcome"] != "ok"]
    assert {(s["layer"], s["outcome"]) for s in bad} == {("liquidation", "failed")}
    assert bad[0]["error"]["kind"] == "server_error" and "Server Error" in bad[0]["error"]["message"]
    assert doc["totals"]["retries"] == 2  # one retry per failing series (CGPRESET_MAX_ATTEMPTS=2)
    emulator.set_faults([{"path": "/api/futures/open-interest/aggregated-history", "kind": "empty"}])
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "g.db"), "--json"], emu_env)
    doc = json.loads(result.stdout)
    empty = [s for s in doc["series"] if s["outcome"] == "empty"]
    assert len(empty) == 2 and "coin/pair mix-up" in empty[0]["reason"] and empty[0]["error"] is None
    assert result.exit_code == 1


def test_exit_codes_config_and_refused(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    missing = invoke(["run-preset", str(tmp_path / "nope")], emu_env)
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: ") and missing.stdout == ""
    assert "Traceback" not in missing.output
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    refused = invoke(["run-preset", str(cfgs), "--json"], {**emu_env, "COINGLASS_API_KEY": "wrong-key"})
    assert refused.exit_code == 3
    assert refused.stderr.splitlines() == [
        "Error: the API refused every request: auth: GET /api/user/account/subscription: "
        "Invalid API key provided (code 400)"]
    doc = json.loads(refused.stdout)
    assert {s["outcome"] for s in doc["series"]} == {"failed"}
    assert {s["error"]["kind"] for s in doc["series"]} == {"auth"}


def test_budget_skips_then_next_run_resumes(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC", "ETH"))
    db = str(tmp_path / "b.db")
    env = {**emu_env, "CGPRESET_CONCURRENCY": "2"}
    first = invoke(["run-preset", cfgs.as_posix(), "--store", db, "--max-requests", "5", "--json"], env)
    assert first.exit_code == 1
    doc = json.loads(first.stdout)
    skipped = [s for s in doc["series"] if s["outcome"] == "skipped"]
    assert len(skipped) == 16 - 4 and doc["budget"] == "budget exhausted (--max-requests 5)"  # 1 plan lookup
    assert all("resumes next run" in s["reason"] for s in skipped)
    second = invoke(["run-preset", cfgs.as_posix(), "--store", db, "--json"], env)
    assert second.exit_code == 0
    assert {s["outcome"] for s in json.loads(second.stdout)["series"]} == {"ok"}


def test_health_four_shots(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    result = invoke(["health", str(cfgs), "--json"], emu_env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["plan"] == "standard" and doc["rate_per_minute"] == 300 and doc["stream"] is None
    assert [(s["coin"], s["layer"]) for s in doc["shots"]][:4] == [
        ("BTC", "funding"), ("BTC", "open_interest"), ("BTC", "liquidation"), ("BTC", "taker_volume")]
    assert len(doc["shots"]) == 9 and doc["shots"][-1]["layer"] == "etf_flows"
    assert all(s["params"].get("limit") == 2 for s in doc["shots"][:8])
    assert not Path("cgpreset.db").exists()  # nothing stored
    text = invoke(["health", str(cfgs)], emu_env)
    assert "plan: standard | rate budget: 300/min" in text.stdout and "9/9 shots ok — signed off" in text.stdout
    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "empty"}])
    bad = invoke(["health", str(cfgs)], emu_env)
    assert bad.exit_code == 1 and "coin/pair mix-up" in bad.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_mid_run_leaves_whole_series_and_next_run_completes(
    tmp_path: Path, emulator: Any, emu_env: dict[str, str]
) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"), history_days=120)  # 3 pages a series
    db = tmp_path / "k.db"
    emulator.set_faults([{"path": "/api/futures/*", "kind": "latency", "ms": 300}])
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_CONCURRENCY": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", str(db)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until some pages (not all) are in
        time.sleep(0.1)
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=5)
                n = con.execute("SELECT count(*) FROM cursors WHERE last_closed IS NOT NULL").fetchone()[0]
                pages = stored_rows(con) // 1000
                con.close()
            except sqlite3.OperationalError:
                continue
            if n >= 2 and pages >= 3:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    partial = series_integrity(db)
    assert partial and sum(n for n, _ in partial.values()) < 8 * (120 * 24 + 1)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*) FROM runs WHERE ended_at IS NULL").fetchone()[0] == 1
    con.close()
    emulator.set_faults([])
    again = invoke(["run-preset", str(cfgs), "--store", str(db), "--json"], emu_env)
    assert again.exit_code == 0, again.stdout[-2000:]
    done = series_integrity(db)
    now = int(time.time() * 1000)
    for series, (bars, cursor) in done.items():
        assert cursor == bar_open(now, "1h") - HOUR_MS or cursor == bar_open(now, "1h") - 2 * HOUR_MS, series
        assert bars >= 120 * 24, series


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_closes_the_run_like_ctrl_c(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    """A CI timeout or `kill`: exit 143, the runs row closed as interrupted, the next run completes."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=120)
    db = tmp_path / "t.db"
    emulator.set_faults([{"path": "/api/futures/*", "kind": "latency", "ms": 300}])
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_CONCURRENCY": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", str(db)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(r.path.startswith("/api/futures/") for r in emulator.recorded()):
        time.sleep(0.05)  # waiting for the child's first data request, not for time to pass
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "Terminated." and "Traceback" not in err
    con = sqlite3.connect(db)
    assert con.execute("SELECT status, exit_code FROM runs").fetchall() == [("terminated", 143)]
    con.close()
    emulator.set_faults([])
    assert invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env).exit_code == 0


@pytest.mark.parametrize("command", [["run-preset"], ["run-preset", "--dry-run"], ["health"]])
def test_store_that_is_not_a_database(tmp_path: Path, emu_env: dict[str, str], command: list[str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    bad = tmp_path / "c.db"
    bad.write_text("garbage\n")
    result = invoke([command[0], str(cfgs), "--store", str(bad), *command[1:]], emu_env)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"Error: {bad}: not a cgpreset store (file is not a database)\n"
    assert bad.read_text() == "garbage\n"


def test_store_folder_that_is_a_file(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "afile").write_text("x")
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "afile" / "x.db")], emu_env)
    assert result.exit_code == 2
    assert result.stderr == f"Error: --store {tmp_path}/afile/x.db: folder {tmp_path}/afile is not a folder\n"


def test_a_typod_store_folder_is_refused_not_created(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    """`--store x/y.db` made the folders and backfilled 90 days into a new store, silently."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    for args, env in ((["--store", str(tmp_path / "dta" / "run.db")], emu_env),
                      ([], {**emu_env, "CGPRESET_STORE": str(tmp_path / "dta" / "run.db")})):
        result = invoke(["run-preset", str(cfgs), *args], env)
        named = "--store" if args else "CGPRESET_STORE="
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr == (f"Error: {named}{' ' if args else ''}{tmp_path}/dta/run.db: folder {tmp_path}/dta "
                                 "does not exist (create it first)\n")
    assert not (tmp_path / "dta").exists() and emulator.recorded() == []
    stream = invoke(["stream", "--store", str(tmp_path / "dta" / "s.db"), "--duration", "1"], emu_env)
    assert stream.exit_code == 2 and "folder" in stream.stderr and not (tmp_path / "dta").exists()


def test_a_new_store_is_announced_with_its_backfill(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=5)
    db = tmp_path / "new.db"
    first = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert first.exit_code == 0, first.output
    assert f"note: {db} does not exist: creating a new store (5 days of history to backfill)\n" in first.stderr
    capped = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "capped.db"), "--backfill-days", "1"],
                    emu_env)
    assert "creating a new store (1 day of history to backfill)" in capped.stderr
    again = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert again.exit_code == 0 and "creating a new store" not in again.stderr


def test_dry_run_never_writes_the_store(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    folder = tmp_path / "stores"
    folder.mkdir()
    empty = folder / "empty.db"
    empty.touch()
    env = {**emu_env, "CGPRESET_PLAN": "standard"}
    dry = invoke(["run-preset", str(cfgs), "--store", str(empty), "--dry-run"], env)
    assert dry.exit_code == 0 and "backfill" in dry.stdout
    assert empty.stat().st_size == 0 and [p.name for p in folder.iterdir()] == ["empty.db"]
    db = folder / "run.db"
    assert invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env).exit_code == 0
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    emulator.reset_records()
    dry = invoke(["run-preset", str(cfgs), "--store", str(db), "--dry-run", "--json"], env)
    assert dry.exit_code == 0 and {s["mode"] for s in json.loads(dry.stdout)["series"]} >= {"incremental"}
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    assert emulator.recorded() == []  # CGPRESET_PLAN set: not even the plan lookup


def test_dry_run_calls_nothing_when_a_run_recorded_the_plan(tmp_path: Path, emulator: Any,
                                                           emu_env: dict[str, str]) -> None:
    """--dry-run's help said "call nothing" while it always looked the plan up: it now takes the plan the
    store's last run recorded (within a day, as the run does), and asks only when none is known."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    db = tmp_path / "run.db"
    assert invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env).exit_code == 0
    emulator.reset_records()
    dry = invoke(["run-preset", str(cfgs), "--store", str(db), "--dry-run", "--json"], emu_env)
    assert dry.exit_code == 0 and json.loads(dry.stdout)["plan"] == "standard"
    assert emulator.recorded() == []  # no lookup: the store knew the plan
    fresh = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "new.db"), "--dry-run"], emu_env)
    assert fresh.exit_code == 0
    assert [r.path for r in emulator.recorded()] == ["/api/user/account/subscription"]  # one lookup, no data
    assert not (tmp_path / "new.db").exists()


def test_plan_below_the_configs_interval_exits_2_before_any_data_request(tmp_path: Path) -> None:
    from cgpreset.emulator import serve

    cfgs = write_configs(tmp_path / "d1", coins=("SOL", "BTC"))  # standard, 1h
    with serve(plan="hobbyist", seed=7) as emu:
        env = {"CGPRESET_BASE_URL": emu.base_url, "COINGLASS_API_KEY": emu.api_key}
        for extra in ([], ["--dry-run"]):
            emu.reset_records()
            result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "h.db"), *extra], env)
            assert result.exit_code == 2 and result.stdout == ""
            assert result.stderr.splitlines() == [
                f"Error: {cfgs.as_posix()}/btc.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
                f"Error: {cfgs.as_posix()}/sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]
            assert [r.path for r in emu.recorded()] == ["/api/user/account/subscription"]
        health = invoke(["health", str(cfgs)], env)
        assert health.exit_code == 1
        assert f"{cfgs.as_posix()}/sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)" in health.stdout
        assert "9/9 shots ok — not signed off: 2 config problems against the hobbyist plan" in health.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d1"]  # no empty store left behind


def test_max_requests_is_every_request(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "m.db"), "--max-requests", "3", "--json"],
                    {**emu_env, "CGPRESET_CONCURRENCY": "1"})
    assert result.exit_code == 1
    assert len(emulator.recorded()) == 3  # the plan lookup and two data requests
    assert json.loads(result.stdout)["totals"]["ok"] == 2
