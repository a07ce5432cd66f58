"""The SQLite store: upsert on (series, time), cursors with their rows, concurrent writers, runs."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.store.base import Cursor, Page
from cgpreset.store.schema import SCHEMA_VERSION
from cgpreset.store.sqlite import SQLiteStore
from tests.store_pages import H, page, write


def test_schema_versioned_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    for readonly in (False, True):  # refused in every mode, and left as it was
        with pytest.raises(ConfigError) as err:
            SQLiteStore(path, readonly=readonly)
        assert str(err.value) == f"{path}: written by a newer cgpreset (schema v99; this one reads up to v3)"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 99
    db.close()


def test_upsert_never_duplicates_and_updates_forming_bar(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        r1 = write(store, [0, H, 2 * H], closed_upto=H)
        assert (r1.received, r1.new_rows, r1.cursor) == (3, 3, H)
        r2 = write(store, [2 * H, 3 * H], closed_upto=2 * H, close=5.0)  # forming bar 2H closed now
        assert (r2.new_rows, r2.cursor) == (1, 2 * H)
        rows = store.rows("oi/SOL/all/1h")
        assert [(r["time"], r["closed"]) for r in rows] == [(0, 1), (H, 1), (2 * H, 1), (3 * H, 0)]
        assert rows[2]["close"] == 5.0  # the bar that was forming took its final value
        assert write(store, [0, H], closed_upto=H).new_rows == 0  # cursor never moves back
        assert store.cursor("oi/SOL/all/1h") == 2 * H
        assert store.count() == 4
        assert store.positions()["oi/SOL/all/1h"] == Cursor(2 * H, 0, 3 * H)  # oldest and newest bar too


def test_failed_write_leaves_neither_rows_nor_cursor(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        good = page([0, H], closed_upto=H, series="x")
        broken = Page(good.series, [*good.rows, (2 * H, 1.0, 2.0, 0.5, object(), 1)], H)  # not a number
        with pytest.raises(ConfigError, match="store write failed"):
            store.write(broken)
        assert store.count() == 0 and store.cursor("x") is None and store.positions() == {}


def test_runs_table(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        run = store.start_run()
        store.finish_run(run, exit_code=1, totals={"requests": 5, "retries": 1, "rate_limited": 0,
                                                   "rate_wait_seconds": 0.5},
                         outcomes={"a": {"outcome": "ok"}})
        (row,) = store.runs()
        assert row["requests"] == 5 and row["exit_code"] == 1 and row["outcomes"] == {"a": {"outcome": "ok"}}
        assert row["ended_at"] >= row["started_at"]


def test_threads_with_separate_connections(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with SQLiteStore(path) as store:
                for n_page in range(20):
                    times = [(n_page * 10 + i) * H for i in range(10)]
                    write(store, times, closed_upto=times[-1], series=f"s{n % 3}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with SQLiteStore(path) as store:
        # three series, each written by two threads: 200 distinct bars each
        assert store.count() == 3 * 200
        assert store.cursor("s0") == 199 * H


def _proc_writer(path: str, n: int) -> None:
    with SQLiteStore(path) as store:
        for n_page in range(15):
            times = [(n_page * 10 + i) * H for i in range(10)]
            store.write(page(times, times[-1], series=f"p{n}", layer="funding", coin=f"C{n}"))


def test_processes_write_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_proc_writer, args=(path, n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    with SQLiteStore(path) as store:
        assert store.count() == 4 * 150
        assert all(store.cursor(f"p{n}") == 149 * H for n in range(4))


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else 0


@pytest.mark.parametrize("readonly", [False, True])
def test_not_a_database_is_one_line_and_leaks_nothing(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "c.db"
    path.write_text("garbage\n")
    fds = _open_fds()
    with pytest.raises(ConfigError) as err:
        SQLiteStore(path, readonly=readonly)
    assert str(err.value) == f"{path}: not a cgpreset store (file is not a database)"
    assert _open_fds() == fds  # the connection was closed
    assert path.read_text() == "garbage\n" and sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]


def test_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"afile/x\.db: cannot create the store's folder: "):
        SQLiteStore(tmp_path / "afile" / "x.db")


def test_readonly_never_creates_or_changes_anything(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    with SQLiteStore(empty, readonly=True) as store:
        assert store.cursors() == {}
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        write(store, [0, H], closed_upto=0)
    before = (path.read_bytes(), sorted(p.name for p in tmp_path.iterdir()))
    with SQLiteStore(path, readonly=True) as store:
        assert store.cursors() == {"oi/SOL/all/1h": 0}
        with pytest.raises(ConfigError):  # writes are refused, not silently done
            write(store, [2 * H], closed_upto=H)
    assert (path.read_bytes(), sorted(p.name for p in tmp_path.iterdir())) == before


#: The schema cgpreset wrote as v1 (before runs.status), as it shipped.
V1_SCHEMA = """
    CREATE TABLE bars (layer TEXT NOT NULL, coin TEXT NOT NULL, instrument TEXT NOT NULL, interval TEXT NOT NULL,
        time INTEGER NOT NULL, series TEXT NOT NULL, open REAL, high REAL, low REAL, close REAL, long_usd REAL,
        short_usd REAL, buy_usd REAL, sell_usd REAL, total_usd REAL, price_usd REAL, payload TEXT NOT NULL,
        fetched_at INTEGER NOT NULL, PRIMARY KEY (layer, coin, instrument, interval, time)) WITHOUT ROWID;
    CREATE INDEX bars_series_time ON bars (series, time);
    CREATE TABLE cursors (series TEXT PRIMARY KEY, last_closed INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at INTEGER NOT NULL, ended_at INTEGER,
        exit_code INTEGER, requests INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
        rate_limited INTEGER NOT NULL DEFAULT 0, rate_wait_seconds REAL NOT NULL DEFAULT 0, outcomes TEXT);
"""


def test_v1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA + """
        INSERT INTO runs (started_at) VALUES (1);
        PRAGMA user_version = 1;
    """)
    db.close()
    with SQLiteStore(path) as store:
        run = store.start_run()
        store.finish_run(run, exit_code=130, totals={}, outcomes={}, status="interrupted")
        old, new = store.runs()
        assert old["status"] is None and (new["status"], new["exit_code"]) == ("interrupted", 130)
