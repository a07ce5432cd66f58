"""Schema v3: a v1 or v2 store (made by cgpreset's own older code) migrates in place; the analyst
views' columns."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from cgpreset.layers import catalogue
from cgpreset.store import open_store
from cgpreset.store.schema import SCHEMA_VERSION, views
from cgpreset.store.sqlite import SQLiteStore
from tests.conftest import FIXTURES

V2 = FIXTURES / "store-v2.db"  # written by run-preset and stream --store of schema v2 (2 coins, 2 days)

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

VIEW_COLUMNS = {
    "funding": ["coin", "exchange", "instrument", "interval", "time", "ts", "open", "high", "low", "close", "closed"],
    "open_interest": ["coin", "interval", "time", "ts", "open", "high", "low", "close", "closed"],
    "liquidation": ["coin", "interval", "time", "ts", "long_usd", "short_usd", "closed"],
    "taker_volume": ["coin", "interval", "time", "ts", "buy_usd", "sell_usd", "closed"],
    "liquidation_exchanges": ["coin", "exchange", "time", "ts", "total_usd", "long_usd", "short_usd"],
    "etf_flows": ["time", "ts", "flow_usd", "price_usd", "closed"],
    "etf_flows_by_ticker": ["time", "ts", "ticker", "flow_usd"],
}


def _v2(tmp_path: Path) -> Path:
    path = tmp_path / "v2.db"
    shutil.copy(V2, path)
    return path


def test_a_v2_store_migrates_in_place_keeping_rows_cursors_runs_and_stream_tables(tmp_path: Path) -> None:
    path = _v2(tmp_path)
    old = sqlite3.connect(path)
    bars = dict(old.execute("SELECT layer, count(*) FROM bars GROUP BY layer").fetchall())
    cursors = dict(old.execute("SELECT series, last_closed FROM cursors").fetchall())
    runs = old.execute("SELECT id, started_at, status FROM runs").fetchall()
    started = old.execute("SELECT started_at FROM stream_runs").fetchone()[0]
    tickers = old.execute("SELECT sum(json_array_length(payload, '$.etf_flows')) FROM bars "
                          "WHERE layer = 'etf_flows'").fetchone()[0]
    old.close()
    with SQLiteStore(path, readonly=True) as store:  # --dry-run reads a v2 store as it is
        assert store.cursors() == cursors
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
    with open_store(path) as store:
        assert store.cursors() == cursors
        assert [(r["id"], r["started_at"], r["status"]) for r in store.runs()] == runs
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for layer, n in bars.items():
        assert con.execute(f"SELECT count(*) FROM {layer}").fetchone()[0] == n, layer
    assert con.execute("SELECT count(*) FROM etf_flows_by_ticker").fetchone()[0] == tickers
    assert con.execute("SELECT started_at FROM stream_runs").fetchone()[0] == round(started * 1000)
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'bars'").fetchone()[0] == 0
    # the bar after each cursor is the forming one; all before it closed
    sol = con.execute("SELECT time, closed FROM funding WHERE coin = 'SOL' ORDER BY time").fetchall()
    assert [c for _, c in sol] == [1] * (len(sol) - 1) + [0]
    con.close()


def test_the_views_have_the_promised_columns_and_ts_is_iso_utc(tmp_path: Path) -> None:
    path = _v2(tmp_path)
    open_store(path).close()
    con = sqlite3.connect(path)
    for view, columns in VIEW_COLUMNS.items():
        got = [r[1] for r in con.execute(f"PRAGMA table_info({view})")]
        assert got == columns, view
    row = con.execute("SELECT time, ts FROM funding ORDER BY time LIMIT 1").fetchone()
    assert row[1] == sqlite3.connect(":memory:").execute(
        "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', ? / 1000, 'unixepoch')", (row[0],)).fetchone()[0]
    assert row[1].endswith("Z") and "T" in row[1]
    con.close()
    names = [v.name for v in views(catalogue())]  # the six first layers' views, then the later layers'
    assert names[:len(VIEW_COLUMNS) + 1] == ["liquidation_events", *VIEW_COLUMNS]


def test_a_run_left_running_by_a_killed_process_is_marked_abandoned_by_the_next(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with SQLiteStore(tmp_path / "s.db") as store:
        killed = store.start_run(pid=int(dead.stdout), now_ms=1_000)  # its process is gone
        alive = store.start_run(now_ms=2_000)  # this process: alive, fresh heartbeat
        stale = store.start_run(now_ms=3_000)
        store.heartbeat(stale, now_ms=3_000)
        nxt = store.start_run(now_ms=3_000 + 16 * 60_000)  # the stale heartbeat is 16 min old
        status = {r["id"]: r["status"] for r in store.runs()}
    assert status[killed] == "abandoned" and status[stale] == "abandoned"
    assert status[alive] == "abandoned"  # same pid, but its heartbeat is as stale
    assert status[nxt] == "running"


def test_a_v1_store_migrates_and_its_old_runs_have_no_status(tmp_path: Path) -> None:
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
