"""A PostgreSQL store that blocks or goes away (a real server).

Blocked: another session holds a lock on a table the run needs, or the server stops answering
(a frozen relay, tests/pg_proxy.py): `--deadline` still ends the run on time, and SIGTERM within
2 s. Gone: the store's sessions are ended (pg_terminate_backend, as in a restart or failover): the
run reconnects and finishes; a server that stays away is exit 75. The processes are real
(subprocesses, as in tests/test_signals.py); run with `-s` to see the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ExitCode
from cgpreset.store.dsn import parse_dsn
from cgpreset.store.postgres import PostgresStore
from tests.conftest import REPO
from tests.pg_proxy import pg_proxy
from tests.store_pages import page, write
from tests.test_cli_postgres import pg_integrity
from tests.test_run_e2e import FAST, write_configs
from tests.test_signals import LIMIT_S, _wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
H = 3_600_000
DEADLINE_S = 2


def _admin(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def _start(tmp_path: Path, emu_env: dict[str, str], store: str, *args: str) -> subprocess.Popen[str]:
    cfgs = tmp_path / "configs"
    if not cfgs.exists():
        write_configs(cfgs, coins=("SOL",), history_days=3)
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_CONCURRENCY": "2", "CGPRESET_PLAN": "standard",
           "PYTHONPATH": str(REPO)}
    env.pop("CGPRESET_TEST_PG_DSN", None)
    return subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", store, *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str], started: float, bound: float = 60) -> tuple[float, str, str]:
    try:
        out, err = proc.communicate(timeout=bound)
    finally:
        proc.kill()
    return time.monotonic() - started, out, err


@pytest.fixture
def written(tmp_path: Path, emu_env: dict[str, str], pg_dsn: str) -> str:
    """A store a first run has written (its tables exist to be locked)."""
    first = _start(tmp_path, emu_env, pg_dsn)
    _, _, err = _finish(first, time.monotonic())
    assert first.returncode == 0, err
    return pg_dsn


@pytest.fixture
def locked(written: str) -> Iterator[Any]:
    """A session holding ACCESS EXCLUSIVE on the funding table: every write of a funding page waits."""
    db = _admin(written)
    db.execute("BEGIN")
    db.execute("LOCK TABLE data_funding IN ACCESS EXCLUSIVE MODE")
    yield db
    db.close()


# -- blocked: the deadline and the stop signal still end the run ------------------------------------

@pytest.mark.usefixtures("locked")
def test_a_locked_table_holds_run_preset_no_longer_than_its_deadline(tmp_path: Path, emu_env: dict[str, str],
                                                                      written: str) -> None:
    started = time.monotonic()
    proc = _start(tmp_path, emu_env, written, "--deadline", str(DEADLINE_S), "--json", "--full-refresh")
    took, out, err = _finish(proc, started)  # before: still waiting when the 60 s bound ran out
    print(f"\n--deadline {DEADLINE_S} with data_funding locked: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == ExitCode.FINDINGS, err
    doc = json.loads(out)
    assert doc["totals"]["seconds"] < DEADLINE_S + 1, doc["totals"]  # the run itself: its deadline, + the grace
    assert took < DEADLINE_S + 6, err  # + the interpreter's start-up and exit, on a busy machine
    funding = [s for s in doc["series"] if s["layer"] == "funding"]
    assert funding and all(s["outcome"] == "skipped" and s["reason"].startswith(f"deadline reached (--deadline "
                                                                                 f"{DEADLINE_S}s)")
                           for s in funding)


@pytest.mark.parametrize("table", ["data_funding", "cursors"], ids=["a worker waits", "the main thread waits"])
def test_sigterm_while_the_store_is_blocked_ends_within_2s(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                                           written: str, table: str) -> None:
    lock = _admin(written)
    lock.execute("BEGIN")
    lock.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    blocked = _admin(written)
    proc = _start(tmp_path, emu_env, written, "--full-refresh")
    _wait_for(lambda: blocked.execute(  # the run's session waits for the lock: the state to stop it in
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", (table,)).fetchone()[0] > 0,
        f"to wait for the lock on {table}")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    took, _, err = _finish(proc, sent, bound=30)
    print(f"\nSIGTERM -> exit, {table} locked: {took:.2f} s")
    lock.close()
    assert took < LIMIT_S and proc.returncode == ExitCode.TERMINATED and "Traceback" not in err, err
    status = blocked.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    blocked.close()
    assert status == ("terminated" if table == "data_funding" else "running")  # cursors: read before the run's try


def test_a_server_that_stops_answering_holds_run_preset_no_longer_than_its_deadline(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], written: str) -> None:
    """No error comes from a frozen server: the watchdog cuts the connection, the deadline holds."""
    with pg_proxy(written) as proxy:
        emulator.set_faults([{"path": "/api/futures/*", "kind": "hang", "seconds": 0.5}])
        started = time.monotonic()
        proc = _start(tmp_path, emu_env, proxy.url, "--deadline", str(DEADLINE_S), "--full-refresh")
        _wait_for(lambda: any(r.path.startswith("/api/futures/") for r in emulator.recorded()), "a request")
        proxy.freeze()  # past the open: the run's writes and its runs row meet a silent server
        took, _, err = _finish(proc, started)
        emulator.set_faults(None)
    print(f"\n--deadline {DEADLINE_S} with the server frozen: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == ExitCode.FINDINGS and "deadline reached" in err, err
    assert took < DEADLINE_S + 6, err  # + start-up, the cut's margin, the runs row's grace and its margin
    assert err.count("Error:") == 1 and "Traceback" not in err


def test_sigterm_while_the_main_thread_waits_on_a_server_that_stopped_answering_ends_within_2s(
        tmp_path: Path, emu_env: dict[str, str], written: str) -> None:
    """psycopg answers the signal by cancelling the statement, which a frozen server never confirms
    (psycopg waits 5 s for it): the process ends on time all the same."""
    database = written.rsplit("/", 1)[1]
    with pg_proxy(written) as proxy, _admin(written) as admin:
        proc = _start(tmp_path, emu_env, proxy.url)
        _wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                        "application_name = 'cgpreset'", (database,)).fetchone()[0] > 0,
                  "a session")
        proxy.freeze()  # the main thread is connecting, opening the store or reading it: no answer comes
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        took, _, err = _finish(proc, sent, bound=30)
    print(f"\nSIGTERM -> exit, the server frozen under the main thread: {took:.2f} s")
    assert took < LIMIT_S and proc.returncode == ExitCode.TERMINATED and "Traceback" not in err, err


# -- gone: reconnect, or exit 75 -------------------------------------------------------------------

def _terminate_store_sessions(admin: Any, dsn: str) -> int:
    database = dsn.rsplit("/", 1)[1].split("?")[0]
    rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND application_name = 'cgpreset' AND pid <> pg_backend_pid()", (database,)).fetchall()
    return len(rows)


def test_sessions_ended_between_pages_are_replaced_at_once(pg_dsn: str) -> None:
    """A failover or restart between two pages: the next page takes a fresh connection, no pause."""
    pauses: list[float] = []
    with PostgresStore(parse_dsn(pg_dsn), sleep=pauses.append) as store, _admin(pg_dsn) as admin:
        store.start_run()
        write(store, [0, H], closed_upto=0)
        assert _terminate_store_sessions(admin, pg_dsn) >= 2  # the main session and the page's
        assert write(store, [2 * H, 3 * H], closed_upto=2 * H).new_rows == 2
        assert store.cursor("oi/SOL/all/1h") == 2 * H and store.count() == 4
        assert pauses == []
        assert store.runs()[-1]["status"] == "running"


def test_a_session_ended_inside_a_page_is_retried_whole_after_a_pause(pg_dsn: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    with PostgresStore(parse_dsn(pg_dsn), sleep=pauses.append) as store, _admin(pg_dsn) as admin:
        write(store, [0, H], closed_upto=0)
        real = PostgresStore._upsert
        ended: list[int] = []

        def upsert_once_ended(self: PostgresStore, db: Any, t: Any, rows: Any) -> int:
            if not ended:  # mid-transaction: the rows are in, the commit never comes
                ended.append(admin.execute("SELECT pg_terminate_backend(%s)", (db.info.backend_pid,)).fetchone()[0])
            return real(self, db, t, rows)

        monkeypatch.setattr(PostgresStore, "_upsert", upsert_once_ended)
        result = store.write(page([H, 2 * H, 3 * H], closed_upto=2 * H))
        assert ended == [True] and pauses == [0.5]
        assert (result.new_rows, result.cursor) == (2, 2 * H)
        assert store.count() == 4


READS = {
    "cursor": lambda store: store.cursor("oi/SOL/all/1h"),
    "cursors": lambda store: store.cursors(),
    "coverage": lambda store: {k: (c.spans, c.earliest) for k, c in store.coverage().items()},
    "rows": lambda store: store.rows("oi/SOL/all/1h"),
    "count": lambda store: store.count(),
    "runs": lambda store: [r["id"] for r in store.runs()],
    "known_plan": lambda store: store.known_plan(),
    "sources": lambda store: store.sources(),
}


@pytest.mark.parametrize("read", READS)
def test_a_session_ended_inside_a_read_is_read_again_after_a_pause(pg_dsn: str, monkeypatch: pytest.MonkeyPatch,
                                                                   read: str) -> None:
    """Its connection checked, then the session ended before the statement (a failover at that
    instant): the read is tried again on a fresh connection, not a run failed with exit 75."""
    pauses: list[float] = []
    with PostgresStore(parse_dsn(pg_dsn), sleep=pauses.append) as store, _admin(pg_dsn) as admin:
        store.start_run()
        write(store, [0, H, 2 * H], closed_upto=H)
        expected = READS[read](store)
        real = PostgresStore._on_main
        ended: list[bool] = []

        @contextlib.contextmanager
        def main_once_ended(self: PostgresStore, doing: str, *, grace: bool = False) -> Iterator[Any]:
            with real(self, doing, grace=grace) as db:
                if not ended:
                    ended.append(admin.execute("SELECT pg_terminate_backend(%s)",
                                               (db.info.backend_pid,)).fetchone()[0])
                yield db

        monkeypatch.setattr(PostgresStore, "_on_main", main_once_ended)
        assert READS[read](store) == expected
        assert ended == [True] and pauses == [0.5]


def test_the_run_reconnects_after_its_sessions_are_ended_and_finishes_ok(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str) -> None:
    emulator.set_faults([{"path": "/api/futures/*", "kind": "hang", "seconds": 0.3}])
    proc = _start(tmp_path, emu_env, pg_dsn)
    admin = _admin(pg_dsn)
    _wait_for(lambda: any(r.path.startswith("/api/futures/") for r in emulator.recorded()), "a request")
    ended = _terminate_store_sessions(admin, pg_dsn)
    _, _, err = _finish(proc, time.monotonic())
    emulator.set_faults(None)
    admin.close()
    assert ended >= 1 and proc.returncode == 0, err
    assert pg_integrity(pg_dsn)  # every series whole up to its cursor


def test_a_server_that_stays_away_is_exit_75_in_one_line(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                                          written: str) -> None:
    with pg_proxy(written) as proxy:
        emulator.set_faults([{"path": "/api/futures/*", "kind": "hang", "seconds": 0.5}])
        started = time.monotonic()
        proc = _start(tmp_path, emu_env, proxy.url, "--full-refresh")
        _wait_for(lambda: any(r.path.startswith("/api/futures/") for r in emulator.recorded()), "a request")
        proxy.down()  # every session cut, no new one accepted: a restart that does not come back
        took, out, err = _finish(proc, started)
        emulator.set_faults(None)
    print(f"\nthe server gone for good: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == ExitCode.TEMPFAIL == 75, err
    lines = err.splitlines()
    assert [ln for ln in lines if ln.startswith("Error:")] == [lines[-1]] and "Traceback" not in err
    assert lines[-1].startswith("Error: postgresql://cgpreset:<redacted>@127.0.0.1:")
    assert "unreachable" in lines[-1] or "connection lost" in lines[-1]
    assert out == ""
