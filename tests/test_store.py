"""The SQLite store: upsert on (series, time), cursors with their rows, concurrent writers, runs."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.store.base import Cursor, Page
from cgpreset.store.sqlite import SQLiteStore
from tests.store_pages import H, page, write


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
