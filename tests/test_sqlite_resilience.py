"""An SQLite store that is locked, full or damaged.

Locked by another process past the wait allowed, or on a full disk: exit 75 (retry later), whole
pages only. Locked under `--deadline`: the deadline still ends the run; SIGTERM within 2 s. Damaged
in the middle of a data table: refused when a run opens it for writing, exit 2, the file untouched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ExitCode, StoreUnavailableError
from cgpreset.store import sqlite_schema
from cgpreset.store.sqlite import SQLiteStore
from tests.conftest import REPO
from tests.fakes import FakeClient
from tests.test_run_e2e import FAST, invoke, series_integrity, write_configs
from tests.test_series import configs
from tests.test_signals import LIMIT_S, _wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals, /proc")
BUSY_S = 0.2


@pytest.fixture
def written(tmp_path: Path, emu_env: dict[str, str]) -> tuple[Path, Path]:
    """(configs, store) after a first run: a store as runs leave it."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=30)
    db = tmp_path / "s.db"
    first = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert first.exit_code == 0, first.output
    return cfgs, db


@pytest.fixture
def held(written: tuple[Path, Path]) -> Iterator[sqlite3.Connection]:
    """Another process's write lock on the store (BEGIN EXCLUSIVE), held for the test."""
    con = sqlite3.connect(written[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    yield con
    con.execute("ROLLBACK")
    con.close()


def test_a_store_locked_past_the_busy_timeout_is_exit_75_in_one_line(
        written: tuple[Path, Path], held: sqlite3.Connection, emu_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_schema, "BUSY_TIMEOUT_MS", BUSY_S * 1000)  # 30 s in production
    cfgs, db = written
    result = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert result.exit_code == ExitCode.TEMPFAIL == 75, result.output
    assert result.stderr.splitlines()[-1] == (f"Error: {db}: store not writable: waiting for another process's write "
                                              f"lock for {BUSY_S:g} s: the store is blocked (retry later)")
    assert result.stdout == ""


def test_a_lock_taken_during_the_run_stops_it_with_exit_75_and_whole_pages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's page meets the lock: the run stops (every series would), the pages before it stay whole."""
    from cgpreset.run.engine import run_preset

    monkeypatch.setattr(sqlite_schema, "BUSY_TIMEOUT_MS", BUSY_S * 1000)
    db = tmp_path / "s.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

    class LockedAfterFirst(FakeClient):
        def request(self, *args: Any, **kw: Any) -> Any:
            if self.calls and not other.in_transaction:  # the second answer: another process takes the lock
                other.execute("BEGIN EXCLUSIVE")
            return super().request(*args, **kw)

    client = LockedAfterFirst()
    with SQLiteStore(db) as store, pytest.raises(StoreUnavailableError) as err:
        run_preset(configs("SOL", history_days=3), client, store, concurrency=1, now_ms=client.now_ms)
    assert err.value.exit_code == 75 and "waiting for another process's write lock" in str(err.value)
    assert len(client.calls) < 6  # the run stopped: the other series were not fetched in vain
    other.execute("ROLLBACK")
    with SQLiteStore(db, readonly=True) as store:
        assert len(store.cursors()) == 1  # the first page, whole, with its cursor
        assert [r["status"] for r in store.runs()] == ["running"]  # its row could not be closed: the next run marks it


def test_a_page_the_deadline_leaves_no_time_to_store_skips_its_series_as_the_deadline_does(tmp_path: Path) -> None:
    from cgpreset.run.engine import run_preset

    client = FakeClient()
    with SQLiteStore(tmp_path / "s.db", time_left=lambda: -0.1) as store:  # past it: the runs row still closes
        result = run_preset(configs("SOL", history_days=3), client, store, now_ms=client.now_ms)
        assert {r.outcome for r in result.results} == {"skipped"}
        assert all(r.reason is not None and r.reason.startswith("deadline reached") for r in result.results)
        assert result.exit_code == ExitCode.FINDINGS
        assert store.cursors() == {} and [r["status"] for r in store.runs()] == ["finished"]


def test_a_full_disk_is_exit_75_and_leaves_whole_pages(written: tuple[Path, Path], emu_env: dict[str, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfgs, db = written
    write_configs(cfgs, coins=("SOL", "BTC"), history_days=30)  # BTC's rows need new pages
    real = SQLiteStore._connect

    def no_room(self: SQLiteStore) -> sqlite3.Connection:  # the file may not grow by a single page
        con = real(self)
        con.execute(f"PRAGMA max_page_count = {con.execute('PRAGMA page_count').fetchone()[0]}")
        return con

    monkeypatch.setattr(SQLiteStore, "_connect", no_room)
    result = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert result.exit_code == ExitCode.TEMPFAIL, result.output
    line = result.stderr.splitlines()[-1]
    assert line.startswith(f"Error: {db}: store write failed: database or disk is full"), line
    assert series_integrity(db)  # every series whole up to its cursor: the page that failed left nothing


def test_a_locked_store_holds_run_preset_no_longer_than_its_deadline(
        written: tuple[Path, Path], held: sqlite3.Connection, emu_env: dict[str, str]) -> None:
    cfgs, db = written
    started = time.monotonic()
    result = invoke(["run-preset", str(cfgs), "--store", str(db), "--deadline", "1"], emu_env)
    took = time.monotonic() - started
    print(f"\n--deadline 1 with the SQLite file locked: exit {result.exit_code} after {took:.2f} s")
    assert result.exit_code == ExitCode.FINDINGS, result.output
    assert result.stderr.splitlines()[-1] == f"Error: {db}: store not writable: deadline reached waiting for the store"
    assert took < 1 + 1 + 2  # the deadline, the opening's grace, a busy machine (before: the 30 s busy timeout)


def _holds_open(pid: int, path: Path) -> bool:
    """The process has the store file open (Linux: /proc/PID/fd): it is in or past the open."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_sigterm_while_the_store_is_locked_ends_within_2s(written: tuple[Path, Path], held: sqlite3.Connection,
                                                          emu_env: dict[str, str]) -> None:
    cfgs, db = written
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_PLAN": "standard", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", str(db)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _holds_open(proc.pid, db), "the store open")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    print(f"\nSIGTERM -> exit, SQLite file locked: {took:.2f} s")
    assert took < LIMIT_S and proc.returncode == ExitCode.TERMINATED and "Traceback" not in err, err


# -- damaged ----------------------------------------------------------------------------------------

def _damage_a_data_page(db: Path) -> bytes:
    """Overwrite the middle of a leaf page of data_funding (not its root, not the schema): the page a
    run's next rows may land in, which no schema check reads."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    leaves = [n for (n,) in con.execute("SELECT pageno FROM dbstat WHERE name = 'data_funding' AND pagetype = 'leaf' "
                                        "ORDER BY pageno")]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    assert len(leaves) >= 3
    data = bytearray(db.read_bytes())
    middle = (leaves[len(leaves) // 2] - 1) * size + size // 4
    data[middle:middle + 256] = b"\xff" * 256
    db.write_bytes(bytes(data))
    return bytes(data)


def test_a_store_damaged_in_a_data_table_is_refused_before_a_run_writes_into_it(
        written: tuple[Path, Path], emu_env: dict[str, str]) -> None:
    cfgs, db = written
    damaged = _damage_a_data_page(db)
    result = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)
    assert result.exit_code == ExitCode.USAGE == 2, result.output
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]]  # one line
    assert result.stderr.startswith(f"Error: {db}: store is damaged (quick_check: ") and result.stdout == ""
    assert db.read_bytes() == damaged  # refused before anything was written
    dry = invoke(["run-preset", str(cfgs), "--store", str(db), "--dry-run"], emu_env)
    assert dry.exit_code == 0, dry.output  # a read-only open pays for no scan (the damage is not on its path)


def test_the_integrity_check_stops_at_its_budget_and_passes_what_it_read(written: tuple[Path, Path]) -> None:
    """A file too large to read within the budget is checked in part, not refused."""
    con = sqlite3.connect(written[1])
    sqlite_schema.check_intact(con, written[1], 0.0)  # interrupted at once: no error
    con.close()
