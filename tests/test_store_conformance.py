"""One behaviour for every store backend: each test runs on SQLite and on PostgreSQL.

Idempotent re-upsert, a cursor that moves only with its data, the forming bar rewritten, a writer
SIGKILLed mid-batch, four writer processes at once, schema versions, and the analyst views:
the same run into both backends gives the same rows in every view.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ConfigError
from cgpreset.store import open_store
from cgpreset.store.base import Page, SeriesRef, Store
from cgpreset.store.schema import SCHEMA_VERSION, VIEW_NAMES
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


def test_earliest_reaches_back_to_an_older_window_asked_for_even_when_it_was_empty(location: str) -> None:
    with open_store(location) as store:
        store.write(Page(OI, bars([100 * H, 101 * H], closed_upto=101 * H), closed_upto=101 * H,
                         asked_from=100 * H))
        assert store.positions()[OI.key].earliest == 100 * H
        store.write(Page(OI, [], asked_from=40 * H))  # the API had nothing that old
        pos = store.positions()[OI.key]
        assert (pos.earliest, pos.latest, pos.last_closed) == (40 * H, 101 * H, 101 * H)
        store.write(Page(OI, bars([60 * H], closed_upto=60 * H), closed_upto=60 * H, asked_from=50 * H))
        assert store.positions()[OI.key].earliest == 40 * H  # never forward


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


def test_the_forming_bar_is_rewritten_when_it_closes(location: str) -> None:
    with open_store(location) as store:
        store.write(Page(OI, bars([0, H], close=5.0, closed_upto=0), closed_upto=0))  # H still forming
        assert [(r["close"], r["closed"]) for r in store.rows(OI.key)] == [(5.0, 1), (5.0, 0)]
        store.write(Page(OI, bars([H, 2 * H], close=7.0, closed_upto=H), closed_upto=H))
        assert [(r["time"], r["close"], r["closed"]) for r in store.rows(OI.key)] == [
            (0, 5.0, 1), (H, 7.0, 1), (2 * H, 7.0, 0)]
        assert store.count() == 3 and store.cursor(OI.key) == H


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


def test_a_store_created_by_four_processes_at_once_is_created_once(location: str) -> None:
    procs = [worker(location, f"C{n}", 0, 1, 10) for n in range(4)]  # each opens the fresh store first
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0], [p.stderr.read() for p in procs if p.stderr]
    with open_store(location, readonly=True) as store:
        assert sorted(store.cursors()) == [f"open_interest/C{n}/all/1h" for n in range(4)]
        assert store.count() == 40


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
    configs = [(Path(f"{c}.yaml"), make_config(c, history_days=3)) for c in ("SOL", "BTC")]
    with serve(plan="standard", seed=7, now_ms=lambda: now) as emu, \
            CoinGlassClient(Settings(api_key=emu.api_key, base_url=emu.base_url, plan="standard")) as client, \
            open_store(sqlite_path) as lite, open_store(pg_dsn) as pg:
        result = run_preset(configs, client, Tee(lite, pg), concurrency=4, now_ms=now)  # type: ignore[arg-type]
        assert result.exit_code == 0, [(r.series.id, r.outcome, r.reason) for r in result.results]
        assert lite.positions() == pg.positions() and lite.count() == pg.count() > 0
    for view in VIEW_NAMES:
        rows = view_rows(sqlite_path, view)
        assert rows, f"view {view} is empty"
        assert view_rows(pg_dsn, view) == rows, f"view {view} differs between SQLite and PostgreSQL"
