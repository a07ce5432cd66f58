"""Integrity at the size a user runs: a first run cut short or answered with holes, then a rerun,
leaves the store exactly as one clean run does.

Run with:  pytest tests/bench/bench_rerun.py -m bench -s -n 0

The work unit is bench_store's: `cgpreset generate` clones presets/sol.yaml to
presets/watchlist.yaml's 10 coins (1h, history_days 90) against the emulator (100 ms a request),
and each `cgpreset run-preset` runs in its own process. Store A gets one clean run. Store B gets
the same configs, but its first run is spoilt, then one clean rerun:

- kill: SIGKILL to the run-preset process once B holds a third of A's rows (no handler runs; its
  runs row is left `running`, its last transaction cut wherever it was);
- deadline: `--deadline` at a third of A's run time (requests in flight cut, the rest skipped);
- holes: the first run completes, but the emulator drops bars from some of its answers (a hole of
  5 bars inside every 3rd answer, the first 24 bars of every 7th: emulator faults `hole` and
  `late_start`); the rerun is answered in full.

After the rerun, every data table of B holds exactly A's rows (compared row for row, the series
by its key: ids are handed out in the order series are first written; run bookkeeping, run ids
and timestamps, left out), B's coverage spans and cursors are A's, neither store records a hole,
and the rerun exits 0. Printed per case: rows in A, rows in B when cut and after the rerun, the
rerun's requests and wall time, and the mismatching rows (must be 0).

Time: the emulator and every run are pinned to one instant (`serve(now_ms=...)` and
tests/bench/pinned_now.py), so A and B want the same closed bars however long the bench takes
and whatever hour turns meanwhile. Only the kill waits for real (for the other process to store
rows: it polls B between waits for that process to exit), and --deadline is wall-clock by nature.

Measured 2026-12-08, main at b8ea93c (load 0.7-0.8; two runs): A 96,188-96,201 rows, 132 requests,
2.7-3.0 s. kill: cut after 53-57 requests with 32,644-34,127 rows stored; rerun 109-112 requests,
1.7-1.9 s. deadline (0.75-0.81 s): cut after 51-52 requests, 29,805-32,483 rows; rerun 112-113
requests, 1.9 s. holes: 56 of 132 answers short, 57-59 holes recorded, 95,538-95,581 rows; rerun
75-82 requests, 1.4-1.5 s. Every case: B equals A, 0 mismatching rows, 0 holes, exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cgpreset.emulator import serve
from cgpreset.plans import HOUR_MS, bar_open
from cgpreset.store.schema import RUN_BASE
from tests.bench.bench_store import LATENCY_MS, _cgpreset, _env, _generate
from tests.conftest import REPO

#: The instant the emulator and every run see: half past an hour five hours ago, fixed for the whole
#: module (hours back, so that a run on the wall clock would want other bars, and the check below tell).
NOW_MS = (int(time.time() * 1000) // HOUR_MS - 5) * HOUR_MS + 30 * 60_000
PINNED = ("tests.bench.pinned_now", str(NOW_MS))
#: The first run of the holes case: answers that lack bars (see the module's docstring).
HOLES = {"rules": [{"path": "/api/*", "kind": "hole", "bars": 5, "every": 3},
                   {"path": "/api/*", "kind": "late_start", "bars": 24, "every": 7}]}
KILL_AT = 1 / 3  # of A's rows stored in B
DEADLINE_AT = 1 / 3  # of A's run time (the JSON report's seconds: no start-up)
POLL_S = 0.02
#: The schema's own tables: a series' bookkeeping, compared apart (coverage, cursors, holes) or not at all.
BOOKKEEPING = {t.name for t in RUN_BASE}


@dataclass(frozen=True)
class Snapshot:
    """What a store holds, ids replaced by series keys: comparable across stores."""

    data: dict[str, frozenset[tuple[Any, ...]]]  # data table -> its rows
    coverage: frozenset[tuple[Any, ...]]
    cursors: frozenset[tuple[Any, ...]]  # without updated_at
    holes: frozenset[tuple[Any, ...]]

    @property
    def rows(self) -> int:
        return sum(len(r) for r in self.data.values())

    @property
    def covered_series(self) -> int:
        return len({span[0] for span in self.coverage})

    def mismatches(self, other: Snapshot) -> dict[str, int]:
        """Rows in one store and not the other, per data table and per bookkeeping table (only those that differ)."""
        diff = {t: len(self.data.get(t, frozenset()) ^ other.data.get(t, frozenset()))
                for t in self.data.keys() | other.data.keys()}
        diff.update(coverage=len(self.coverage ^ other.coverage), cursors=len(self.cursors ^ other.cursors),
                    holes=len(self.holes ^ other.holes))
        return {t: n for t, n in sorted(diff.items()) if n}


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def _data_tables(con: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table keyed by series that is not bookkeeping: the layers' tables and their detail tables."""
    names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    tables = {n: _columns(con, n) for n in names if n not in BOOKKEEPING}
    return {n: cols for n, cols in tables.items() if "series" in cols}


def _read_only(db: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10))


def snapshot(db: Path) -> Snapshot:
    with _read_only(db) as con:
        keys = dict(con.execute("SELECT id, key FROM series"))

        def keyed(sql: str) -> frozenset[tuple[Any, ...]]:
            return frozenset((keys[s], *rest) for s, *rest in con.execute(sql))

        data = {}
        for table, cols in _data_tables(con).items():
            others = ", ".join(f'"{c}"' for c in cols if c != "series")
            data[table] = keyed(f'SELECT series, {others} FROM "{table}"')
        return Snapshot(data, keyed("SELECT series, start_time, end_time FROM coverage"),
                        keyed("SELECT series, last_closed, earliest, latest FROM cursors"),
                        keyed("SELECT series, start_time, end_time, reason FROM holes"))


def stored_rows(db: Path) -> int:
    """Rows in the data tables so far (0 while the store or its tables do not exist yet)."""
    if not db.exists():
        return 0
    try:
        with _read_only(db) as con:
            return sum(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in _data_tables(con))
    except sqlite3.OperationalError:  # created, but its schema not committed yet
        return 0


def run(emu: Any, configs: Path, db: Path, *extra: str) -> dict[str, Any]:
    """One pinned `run-preset --json` to completion (or to its deadline): exit code, report, requests, wall."""
    emu.reset_records()
    proc, wall, _, _ = _cgpreset(emu, "run-preset", str(configs), "--store", str(db), "--json", *extra,
                                 launcher=PINNED)
    assert proc.stdout, proc.stderr[-2000:]
    return {"code": proc.returncode, "doc": json.loads(proc.stdout), "wall": wall,
            "requests": len(emu.recorded()), "recorded": emu.recorded()}


def killed_run(emu: Any, configs: Path, db: Path, at_rows: int) -> dict[str, Any]:
    """A pinned run-preset, SIGKILLed once the store holds `at_rows` rows."""
    emu.reset_records()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *PINNED, "run-preset", str(configs), "--store", str(db), "-q"],
                            env=_env(emu), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while stored_rows(db) < at_rows:
            try:
                code = proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"run-preset ended (exit {code}) before B held {at_rows} rows: nothing to interrupt")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    return {"code": proc.returncode, "wall": time.perf_counter() - started, "requests": len(emu.recorded())}


@dataclass
class Clean:
    emu: Any
    configs: Path
    root: Path
    a: Snapshot
    a_run: dict[str, Any]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clean]:
    """The emulator, pinned, the shipped work unit's configs, and store A after one clean run."""
    root = tmp_path_factory.mktemp("rerun")
    with serve(plan="standard", seed=7, latency_ms=LATENCY_MS, now_ms=lambda: NOW_MS) as emu:
        _generate(emu, "sol.yaml", root / "configs")
        first = run(emu, root / "configs", root / "a.db")
        assert first["code"] == 0, first["doc"]["totals"]
        last = {s["last_bar"] for s in first["doc"]["series"] if s["interval"] == "1h" and s["last_bar"]}
        assert last == {bar_open(NOW_MS, "1h") - HOUR_MS}  # the run's clock is pinned, not the wall's
        yield Clean(emu, root / "configs", root, snapshot(root / "a.db"), first)


def spoil(case: str, c: Clean, db: Path) -> tuple[str, dict[str, Any]]:
    """B's first run, spoilt as `case` says: (how it went, in a few words; its result)."""
    if case == "kill":
        cut = killed_run(c.emu, c.configs, db, int(c.a.rows * KILL_AT))
        return f"SIGKILL after {cut['requests']} requests, {cut['wall']:.2f} s", cut
    if case == "deadline":
        deadline = round(float(c.a_run["doc"]["totals"]["seconds"]) * DEADLINE_AT, 2)
        cut = run(c.emu, c.configs, db, "--deadline", str(deadline))
        assert cut["code"] == 1, cut["doc"]["totals"]  # series skipped: data missing
        return f"--deadline {deadline} s: {cut['requests']} requests, {cut['wall']:.2f} s, exit 1", cut
    c.emu.set_faults(HOLES)
    try:
        holed = run(c.emu, c.configs, db)
    finally:
        c.emu.set_faults(None)
    faulted = sum(1 for r in holed["recorded"] if r.fault in ("hole", "late_start"))
    assert faulted and holed["code"] == 1, holed["doc"]["totals"]  # the gaps check saw them
    return f"{faulted} of {holed['requests']} answers lacked bars, exit {holed['code']}", holed


@pytest.mark.bench
@pytest.mark.parametrize("case", ["kill", "deadline", "holes"])
def test_a_spoilt_first_run_and_a_rerun_equal_one_clean_run(clean: Clean, case: str) -> None:
    db = clean.root / f"b-{case}.db"
    how, _ = spoil(case, clean, db)
    cut = snapshot(db)
    rerun = run(clean.emu, clean.configs, db)
    b = snapshot(db)
    mismatches = clean.a.mismatches(b)
    lines = [
        ("case", case),
        ("A: one clean run", f"{clean.a.rows} rows, {clean.a_run['requests']} requests, {clean.a_run['wall']:.2f} s"),
        ("B: first run", f"{how}; {cut.rows} rows stored, {len(cut.holes)} holes recorded"),
        ("B: rerun", f"{rerun['requests']} requests, {rerun['wall']:.2f} s, exit {rerun['code']}"),
        ("B after the rerun", f"{b.rows} rows, {len(b.coverage)} coverage spans for {b.covered_series} series "
                              f"(A {len(clean.a.coverage)} for {clean.a.covered_series}), {len(b.holes)} holes"),
        ("mismatching rows", f"{sum(mismatches.values())} {mismatches or ''} (target 0)"),
    ]
    width = max(len(a) for a, _ in lines)
    print("\n" + "\n".join(f"{a:<{width}}  {v}" for a, v in lines))
    assert 0 < cut.rows < clean.a.rows  # the first run stored some rows, not all
    assert clean.a.mismatches(cut)  # which the comparison sees
    assert rerun["code"] == 0, rerun["doc"]["totals"]
    assert mismatches == {}
    assert not clean.a.holes and not b.holes
    assert len(b.coverage) == b.covered_series  # one span a series: no gap inside
