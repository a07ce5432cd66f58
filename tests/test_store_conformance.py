"""One behaviour for every store backend: each test runs on SQLite and on PostgreSQL.

Idempotent re-upsert, a cursor that moves only with its data, the forming bar rewritten, a failed
write that leaves nothing, a writer SIGKILLed mid-batch, writer threads and processes at once, the
runs table, schema versions, and the analyst views: the same run into both
backends gives the same rows in every view. What only SQLite's file does is in test_sqlite_store.py,
test_store_damage.py and test_store_v3.py.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ConfigError
from cgpreset.layers import catalogue
from cgpreset.store import open_store
from cgpreset.store.base import Cursor, Page, SeriesRef, Store
from cgpreset.store.schema import SCHEMA_VERSION, layer_views
from tests.conftest import REPO
from tests.store_worker import H, page_rows

BACKENDS = ["sqlite", "postgresql"]
OI = SeriesRef("open_interest/SOL/all/1h", "open_interest", "SOL", None, None, "1h", "{}")


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where an empty store of each backend lives: an SQLite path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_dsn"))


def bars(times: list[int], *, close: float = 1.0, closed_upto: int | None = None) -> list[tuple[Any, ...]]:
    return [(t, 1.0, 2.0, 0.5, close, int(closed_upto is not None and t <= closed_upto)) for t in times]


def view_rows(location: str, view: str) -> list[tuple[Any, ...]]:
    """Every row of a view, in a stable order, read with the backend's own driver."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as db:
            width = len(db.execute(f"SELECT * FROM {view} LIMIT 0").description or ())
            order = ", ".join(str(i) for i in range(1, width + 1))
            return [tuple(r) for r in db.execute(f"SELECT * FROM {view} ORDER BY {order}")]
    db = sqlite3.connect(location)
    try:
        width = len(db.execute(f"SELECT * FROM {view} LIMIT 0").description)
        order = ", ".join(str(i) for i in range(1, width + 1))
        return [tuple(r) for r in db.execute(f"SELECT * FROM {view} ORDER BY {order}")]
    finally:
        db.close()


def worker(location: str, series: str, first_page: int, pages: int, rows: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.store_worker", location, series, str(first_page),
                             str(pages), str(rows)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


# -- writes ------------------------------------------------------------------------------------

def test_re_upserting_a_page_adds_nothing(location: str) -> None:
    times = [i * H for i in range(50)]
    with open_store(location) as store:
        first = store.write(Page(OI, bars(times, closed_upto=times[-1]), closed_upto=times[-1]))
        again = store.write(Page(OI, bars(times, closed_upto=times[-1]), closed_upto=times[-1]))
        overlap = store.write(Page(OI, bars([t + 25 * H for t in times], closed_upto=74 * H), closed_upto=74 * H))
        assert (first.new_rows, again.new_rows, overlap.new_rows) == (50, 0, 25)
        assert store.count() == store.count(OI.key) == 75
        assert [r["time"] for r in store.rows(OI.key)] == [i * H for i in range(75)]
        assert store.cursor(OI.key) == 74 * H


def windowed(times: list[int], asked: tuple[int, int], forming: int, *, run_rows: bool = True) -> Page:
    """A page as the run writes it: the window asked, the forming bar's open, closed bars before it."""
    closed = [t for t in times if t < forming]
    return Page(OI, bars(times, closed_upto=max(closed, default=-1)) if run_rows else [],
                closed_upto=max(closed, default=None), asked=asked, forming_at=forming)


def test_coverage_holds_the_spans_stored_and_earliest_is_the_oldest_bar_stored(location: str) -> None:
    with open_store(location) as store:
        store.write(windowed([100 * H, 101 * H, 102 * H], (100 * H, 103 * H), forming=102 * H))
        store.write(windowed([], (40 * H, 100 * H), forming=102 * H))  # the API had nothing that old
        store.write(windowed([60 * H, 61 * H], (50 * H, 62 * H), forming=102 * H))
        cov = store.coverage()[OI.key]
        assert cov.spans == ((60 * H, 62 * H), (100 * H, 102 * H))  # closed bars only: 102 is forming
        pos = store.positions()[OI.key]
        assert (pos.earliest, pos.latest, pos.last_closed) == (60 * H, 102 * H, 101 * H)  # never "asked for"
        # what the windows lacked: [40, 100) once, [50, 60) twice (a page of no run counts on its own)
        assert [(h.start, h.end, h.attempts) for h in cov.holes] == [
            (40 * H, 50 * H, 1), (50 * H, 60 * H, 2), (62 * H, 100 * H, 1)]
        assert store.coverage("no/such/series/1h") == {}


def test_a_hole_counts_runs_in_a_row_and_goes_when_its_bars_arrive(location: str) -> None:
    with open_store(location) as store:
        for run in range(3):
            store.start_run()
            # two windows of one run over the same hole count once
            store.write(windowed([0, H, 4 * H], (0, 5 * H), forming=5 * H))
            store.write(windowed([3 * H, 4 * H], (2 * H, 5 * H), forming=5 * H))
            (hole,) = store.coverage()[OI.key].holes
            assert (hole.start, hole.end, hole.attempts, hole.known) == (2 * H, 3 * H, run + 1, run == 2)
            store.finish_run(store.runs()[-1]["id"], exit_code=1, totals={}, outcomes={})
        store.start_run()
        store.write(windowed([2 * H], (2 * H, 3 * H), forming=5 * H))  # the API has it at last
        cov = store.coverage()[OI.key]
        assert cov.holes == () and cov.spans == ((0, 5 * H),)


def test_stale_rows_in_a_window_asked_again_are_removed(location: str) -> None:
    with open_store(location) as store:
        # written by an older release: a bar at :30, one dated ahead, a forming row left behind
        store.write(Page(OI, [(0, 1.0, 2.0, 0.5, 1.0, 1), (H // 2, 1.0, 2.0, 0.5, 1.0, 1),
                              (H, 1.0, 2.0, 0.5, 1.0, 0), (9 * H, 1.0, 2.0, 0.5, 1.0, 0)], closed_upto=0))
        written = store.write(windowed([0, 2 * H, 3 * H], (0, 4 * H), forming=3 * H))
        assert written.removed == 2  # off the grid, and stale forming (H was not sent again); 9 H is outside
        assert [(r["time"], r["closed"]) for r in store.rows(OI.key)] == [(0, 1), (2 * H, 1), (3 * H, 0), (9 * H, 0)]
        assert store.coverage()[OI.key].spans == ((0, H), (2 * H, 3 * H))
        assert [(h.start, h.end) for h in store.coverage()[OI.key].holes] == [(H, 2 * H)]


def _drop_coverage(location: str) -> None:
    """Make the store one written by a release from before coverage was kept."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute("DROP TABLE coverage; DROP TABLE holes")
    else:
        db = sqlite3.connect(location)
        db.executescript("DROP TABLE coverage; DROP TABLE holes")
        db.close()


def test_a_store_from_before_coverage_opens_read_only_and_grows_it_from_its_rows(location: str) -> None:
    with open_store(location) as store:
        store.write(Page(OI, bars([0, H, 2 * H, 5 * H, 6 * H], closed_upto=5 * H), closed_upto=5 * H))
    _drop_coverage(location)
    with open_store(location, readonly=True) as store:  # nothing created: spans computed from the rows
        assert store.coverage()[OI.key].spans == ((0, 3 * H), (5 * H, 6 * H))
    with open_store(location) as store:  # a writing open adds the tables, filled from the rows
        assert store.coverage()[OI.key].spans == ((0, 3 * H), (5 * H, 6 * H))
        assert store.count() == 5


def test_the_cursor_moves_only_with_its_data_and_never_back(location: str) -> None:
    with open_store(location) as store:
        store.write(Page(OI, bars([0, H], closed_upto=H), closed_upto=H))
        broken = [*bars([2 * H, 3 * H], closed_upto=3 * H), (4 * H, 1.0, 2.0, 0.5, 1.0, 1, "extra")]  # a bad row last
        with pytest.raises(ConfigError) as err:
            store.write(Page(OI, broken, closed_upto=4 * H))
        assert "\n" not in str(err.value)
        assert store.cursor(OI.key) == H and store.count() == 2  # neither the rows nor the cursor of that page
        assert store.write(Page(OI, bars([0], closed_upto=0), closed_upto=0)).cursor == H  # never backwards
        assert store.positions()[OI.key].last_closed == H


def test_a_failed_first_write_leaves_no_rows_cursor_or_series(location: str) -> None:
    with open_store(location) as store:
        good = bars([0, H], closed_upto=H)
        broken = Page(OI, [*good, (2 * H, 1.0, 2.0, 0.5, object(), 1)], closed_upto=H)  # not a number
        with pytest.raises(ConfigError, match="store write failed") as err:
            store.write(broken)
        assert "\n" not in str(err.value)
        assert store.count() == 0 and store.cursor(OI.key) is None and store.positions() == {}


def test_the_forming_bar_is_rewritten_when_it_closes(location: str) -> None:
    with open_store(location) as store:
        first = store.write(Page(OI, bars([0, H], close=5.0, closed_upto=0), closed_upto=0))  # H still forming
        assert (first.received, first.new_rows, first.cursor) == (2, 2, 0)
        assert [(r["close"], r["closed"]) for r in store.rows(OI.key)] == [(5.0, 1), (5.0, 0)]
        closing = store.write(Page(OI, bars([H, 2 * H], close=7.0, closed_upto=H), closed_upto=H))
        assert (closing.received, closing.new_rows, closing.cursor) == (2, 1, H)  # H rewritten, not added
        assert [(r["time"], r["close"], r["closed"]) for r in store.rows(OI.key)] == [
            (0, 5.0, 1), (H, 7.0, 1), (2 * H, 7.0, 0)]
        assert store.count() == 3 and store.cursor(OI.key) == H
        assert store.positions()[OI.key] == Cursor(H, 0, 2 * H)  # the oldest and newest bars stored too


def test_a_writer_killed_mid_batch_leaves_whole_pages_and_a_rerun_completes_it(location: str) -> None:
    open_store(location).close()  # the schema exists before the kill, as after any first run
    rows, pages = 500, 20
    proc = worker(location, "KILL", 0, pages, rows)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "page 2":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    key = "open_interest/KILL/all/1h"
    with open_store(location) as store:
        stored = store.count(key)
        assert stored % rows == 0 and stored >= 3 * rows  # whole pages only, at least those reported
        assert store.cursor(key) == (stored - 1) * H  # the cursor is exactly the last whole page's
    rerun = worker(location, "KILL", 0, pages, rows)
    assert rerun.wait(60) == 0, rerun.stderr.read() if rerun.stderr else ""
    with open_store(location) as store:
        got = store.rows(key)
    assert len(got) == rows * pages and [r["time"] for r in got] == [i * H for i in range(rows * pages)]
    assert [r["close"] for r in got] == [row[4] for row in page_rows(0, rows * pages)]


def test_four_writer_processes_at_once_lose_and_double_nothing(location: str) -> None:
    rows = 300
    procs = [worker(location, "SHARED", 2 * n, 6, rows) for n in range(4)]  # overlapping pages of one series
    errors = [p.stderr.read() if p.wait(120) and p.stderr else "" for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    key = "open_interest/SHARED/all/1h"
    with open_store(location) as store:
        assert [r["time"] for r in store.rows(key)] == [i * H for i in range(12 * rows)]
        assert store.cursor(key) == (12 * rows - 1) * H
        assert len([k for k in store.cursors() if k == key]) == 1


def test_writer_threads_each_with_its_own_store_lose_and_double_nothing(location: str) -> None:
    open_store(location).close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with open_store(location) as store:
                for n_page in range(20):
                    times = [(n_page * 10 + i) * H for i in range(10)]
                    store.write(Page(SeriesRef(f"s{n % 3}", "open_interest", "SOL", None, None, "1h", "{}"),
                                     bars(times, closed_upto=times[-1]), closed_upto=times[-1]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_store(location) as store:  # three series, each written whole by two threads: 200 bars each
        assert store.count() == 3 * 200
        assert [store.cursor(f"s{n}") for n in range(3)] == [199 * H] * 3


# -- runs --------------------------------------------------------------------------------------

def test_a_finished_run_keeps_its_totals_exit_code_and_outcomes(location: str) -> None:
    with open_store(location) as store:
        run = store.start_run()
        store.finish_run(run, exit_code=1, totals={"requests": 5, "retries": 1, "rate_limited": 0,
                                                   "rate_wait_seconds": 0.5},
                         outcomes={"a": {"outcome": "ok"}})
        (row,) = store.runs()
        assert (row["id"], row["requests"], row["retries"], row["exit_code"]) == (run, 5, 1, 1)
        assert row["outcomes"] == {"a": {"outcome": "ok"}} and row["ended_at"] >= row["started_at"]


# -- schema versions ---------------------------------------------------------------------------

def _set_version(location: str, version: int) -> None:
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute("UPDATE cgpreset_meta SET value = %s WHERE key = 'schema_version'", (str(version),))
    else:
        db = sqlite3.connect(location)
        db.execute(f"PRAGMA user_version = {version}")
        db.close()


def test_a_store_of_a_newer_cgpreset_is_refused_in_every_mode(location: str) -> None:
    with open_store(location) as store:
        store.write(Page(OI, bars([0], closed_upto=0), closed_upto=0))
    _set_version(location, SCHEMA_VERSION + 1)
    for readonly in (False, True):
        with pytest.raises(ConfigError, match=f"written by a newer cgpreset \\(schema v{SCHEMA_VERSION + 1}"):
            open_store(location, readonly=readonly)


def _add_foreign_table(location: str) -> Callable[[], list[str]]:
    """Put a table of another application in the store; returns a reader of the tables there."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")

        def tables() -> list[str]:
            with psycopg.connect(location) as db:
                return sorted(r[0] for r in db.execute(
                    "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE nspname = current_schema() AND relkind IN ('r', 'v')"))
        return tables
    db = sqlite3.connect(location)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.close()

    def sqlite_tables() -> list[str]:
        con = sqlite3.connect(location)
        try:
            return sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"))
        finally:
            con.close()
    return sqlite_tables


def test_a_store_holding_another_applications_tables_is_refused_and_left_as_it_was(location: str) -> None:
    tables = _add_foreign_table(location)
    with pytest.raises(ConfigError, match="customers") as err:
        open_store(location)
    assert "\n" not in str(err.value) and "<redacted>" in str(err.value) or location.endswith(".db")
    assert tables() == ["customers"]


def test_four_processes_writing_their_own_series_into_a_fresh_store_create_it_once(location: str) -> None:
    procs = [worker(location, f"C{n}", 0, 15, 10) for n in range(4)]  # each opens the fresh store first
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0], [p.stderr.read() for p in procs if p.stderr]
    with open_store(location, readonly=True) as store:
        assert store.cursors() == {f"open_interest/C{n}/all/1h": 149 * H for n in range(4)}
        assert store.count() == 4 * 150


# -- the analyst views -------------------------------------------------------------------------

class Tee:
    """A store that writes every call to two stores, and reads from the first: one run, two backends."""

    def __init__(self, first: Store, second: Store) -> None:
        self.first, self.second = first, second
        self._runs: dict[int, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.first, name)

    def write(self, page: Page) -> Any:
        self.second.write(page)
        return self.first.write(page)

    def reset_cursor(self, series: str) -> None:
        self.first.reset_cursor(series)
        self.second.reset_cursor(series)

    def start_run(self, **kw: Any) -> int:
        rid = self.first.start_run(**kw)
        self._runs[rid] = self.second.start_run(**kw)
        return rid

    def heartbeat(self, run_id: int, **kw: Any) -> None:
        self.first.heartbeat(run_id, **kw)
        self.second.heartbeat(self._runs[run_id], **kw)

    def record_plan(self, run_id: int, plan: str, **kw: Any) -> None:
        self.first.record_plan(run_id, plan, **kw)
        self.second.record_plan(self._runs[run_id], plan, **kw)

    def finish_run(self, run_id: int, **kw: Any) -> None:
        self.first.finish_run(run_id, **kw)
        self.second.finish_run(self._runs[run_id], **kw)


def test_the_same_run_gives_the_same_rows_in_every_view(tmp_path: Path, pg_dsn: str) -> None:
    from cgpreset.api.client import CoinGlassClient
    from cgpreset.emulator import serve
    from cgpreset.plans import bar_open
    from cgpreset.run.engine import run_preset
    from cgpreset.settings import Settings
    from tests.test_series import make_config

    now = bar_open(1_764_064_800_000, "1h") + 1_234_567  # a fixed instant inside a bar: a forming bar exists
    sqlite_path = str(tmp_path / "store.db")
    configs = [(Path(f"{c}.yaml"), make_config(c, history_days=3)) for c in ("SOL", "BTC")]  # the six first layers
    with serve(plan="standard", seed=7, now_ms=lambda: now) as emu, \
            CoinGlassClient(Settings(api_key=emu.api_key, base_url=emu.base_url, plan="standard")) as client, \
            open_store(sqlite_path) as lite, open_store(pg_dsn) as pg:
        result = run_preset(configs, client, Tee(lite, pg), concurrency=4, now_ms=now)  # type: ignore[arg-type]
        assert result.exit_code == 0, [(r.series.id, r.outcome, r.reason) for r in result.results]
        assert lite.positions() == pg.positions() and lite.count() == pg.count() > 0
    ran = {r.series.layer for r in result.results}
    for view in (v.name for ls in catalogue().values() if ls.id in ran for v in layer_views(ls)):
        rows = view_rows(sqlite_path, view)
        assert rows, f"view {view} is empty"
        assert view_rows(pg_dsn, view) == rows, f"view {view} differs between SQLite and PostgreSQL"


# -- series life cycle ---------------------------------------------------------------------------

OI_4H = SeriesRef("open_interest/SOL/all/4h", "open_interest", "SOL", None, None, "4h", "{}")
BTC = SeriesRef("open_interest/BTC/all/1h", "open_interest", "BTC", None, None, "1h", "{}")


def test_retired_series_leave_the_views_stay_in_the_tables_and_prune_deletes_them(location: str) -> None:
    with open_store(location) as store:
        for ref in (OI, OI_4H, BTC):
            store.write(Page(ref, bars([0, 4 * H], closed_upto=4 * H), closed_upto=4 * H))
        # a run of SOL only (--coins SOL) after 1h -> 4h: SOL's 1h series is retired, BTC is not judged
        assert store.retire({OI_4H.key}, {("SOL", "open_interest")}, now_ms=7) == [OI.key]
        assert [r[0] for r in view_rows(location, "open_interest")] == ["BTC", "BTC", "SOL", "SOL"]
        assert {r[1] for r in view_rows(location, "open_interest") if r[0] == "SOL"} == {"4h"}
        assert store.positions()[OI.key].retired_at == 7 and store.count(OI.key) == 2  # rows stay
        assert store.retire({OI.key, OI_4H.key}) == [BTC.key]  # every config: BTC's left the watchlist
        assert store.positions()[OI.key].retired_at is None  # produced again: current again
        assert store.prune([BTC.key, OI.key]) == 2  # only retired ones go (OI is current again)
        assert BTC.key not in store.positions() and store.count() == 4
        assert [r[0] for r in view_rows(location, "open_interest")] == ["SOL"] * 4
