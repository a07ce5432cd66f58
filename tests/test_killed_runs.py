"""After kill -9: a run row or a stream row left `running` is marked `abandoned` by the next run (its
process is gone), and `health` shows a killed stream as abandoned, on SQLite and PostgreSQL.
The rerun loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_cli_postgres import pg_integrity
from tests.test_run_e2e import FAST, invoke, series_integrity, write_configs


def _query(store: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the store (an SQLite path or a PostgreSQL URL); [] while it does not exist yet."""
    if store.startswith("postgresql://"):
        import psycopg

        try:
            with psycopg.connect(store) as db:
                return db.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    if not Path(store).exists():
        return []
    con = sqlite3.connect(store, timeout=5)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet, or busy
        return []
    finally:
        con.close()


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.1)  # polling another process, not waiting for time to pass in this one
    assert proc.poll() is None, "the process ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "k.db")
    return str(request.getfixturevalue("pg_dsn"))


def _env(emu_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **FAST, **emu_env, "PYTHONPATH": str(REPO)}
    env.pop("CGPRESET_TEST_PG_DSN", None)
    return env


def test_a_killed_run_is_marked_abandoned_by_the_next_which_completes_it(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], store: str) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"), history_days=120)  # 3 pages a series
    emulator.set_faults([{"path": "/api/futures/*", "kind": "latency", "ms": 300}])
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", store],
                            env={**_env(emu_env), "CGPRESET_CONCURRENCY": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: bool(_query(store, "SELECT 1 FROM cursors WHERE last_closed IS NOT NULL")))
    assert _query(store, "SELECT status FROM runs") == [("running",)]
    emulator.set_faults([])
    again = invoke(["run-preset", str(cfgs), "--store", store], emu_env)
    assert again.exit_code == 0, again.output
    assert _query(store, "SELECT status FROM runs ORDER BY id") == [("abandoned",), ("finished",)]
    done = pg_integrity(store) if store.startswith("postgresql://") else series_integrity(Path(store))
    assert len(done) == 8 and all(bars >= 120 * 24 for bars, _ in done.values())


def test_a_killed_stream_shows_as_abandoned_in_health_and_the_next_stream_marks_it(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], store: str) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "stream", "--config", str(cfgs), "--duration", "60",
                             "--store", store], env=_env(emu_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: bool(_query(store, "SELECT 1 FROM stream_events LIMIT 1")))
    assert _query(store, "SELECT status FROM stream_runs") == [("running",)]
    health = invoke(["health", str(cfgs), "--store", store, "--json"], emu_env)
    import json

    doc = json.loads(health.stdout)
    assert doc["stream"]["status"] == "abandoned"
    assert health.exit_code == 1 and doc["freshness"]["never_fetched"] == 11  # no run-preset yet: not signed off
    text = invoke(["health", str(cfgs), "--store", store], emu_env)
    assert "stream: run #1 abandoned" in text.stdout
    again = invoke(["stream", "--config", str(cfgs), "--max-events", "2", "--store", store], emu_env)
    assert again.exit_code == 0, again.output
    assert _query(store, "SELECT status FROM stream_runs ORDER BY id") == [("abandoned",), ("stopped",)]
