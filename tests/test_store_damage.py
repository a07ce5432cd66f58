"""A damaged, foreign or newer store file is one ConfigError line naming it (exit 2), in every mode.

Never a traceback, never silently read as "no data": `run-preset` (also `--dry-run`), `stream --store`
and `health` all refuse it, and refusing leaves the file as it was.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import ConfigError, ExitCode
from cgpreset.store import sqlite as store_module
from cgpreset.store import sqlite_schema
from cgpreset.store.schema import SCHEMA_VERSION
from cgpreset.store.sqlite import SQLiteStore
from cgpreset.store.stream_tables import StreamStore, latest_liveness
from cgpreset.stream.events import LiquidationEvent
from tests.store_pages import write
from tests.test_run_e2e import write_configs
from tests.test_store_v3 import V1_SCHEMA

H = 3_600_000
PAGE = 4096
DAMAGE = 40 * PAGE  # bytes of random garbage from the second page on: every table's root page

#: Every way the code opens a store file: run-preset, --dry-run, stream --store, health.
OPENERS: dict[str, Callable[[Path], Any]] = {
    "store": SQLiteStore,
    "store-readonly": lambda p: SQLiteStore(p, readonly=True),
    "stream-store": StreamStore,
    "liveness": latest_liveness,
}


def _event(time: int) -> LiquidationEvent:
    return LiquidationEvent(channel="liquidation_orders", exchange="Binance", symbol="BTCUSDT", base_asset="BTC",
                            price=56738.0, side="short", side_raw=2, volume_usd=3858.184, time=time)


def real_store(path: Path) -> Path:
    """A store as run-preset and stream leave it: bars, cursors, runs, stream events and runs."""
    StreamStore(path).close()  # every table first: all their root pages fall in the damaged range
    with SQLiteStore(path) as store:
        for n_page in range(30):
            times = [(n_page * 100 + i) * H for i in range(100)]
            write(store, times, closed_upto=times[-1])
        store.finish_run(store.start_run(), exit_code=0, totals={}, outcomes={})
    with StreamStore(path) as stream:
        stream.start_run(url="ws://x/ws-api", channels=["liquidation_orders"], coins=None, now=1.0)
        stream.add_events([_event(t) for t in range(300)], now=2.0)
        stream.update_run({"events": 300}, now=3.0, last_event_at=2.0, status="stopped", stop_reason="duration")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, no -wal
    roots = [r for (r,) in con.execute("SELECT rootpage FROM sqlite_master WHERE rootpage > 0")]
    con.close()
    assert path.stat().st_size > PAGE + DAMAGE  # every root page starts (its header) inside the damage:
    assert all(PAGE <= (r - 1) * PAGE < PAGE + DAMAGE for r in roots), roots
    return path


def damage(path: Path, *, keep_schema: bool = False) -> bytes:
    """Random bytes from offset 4096 on (the header page stays intact).

    keep_schema: spare the schema's own pages (v3's schema spans several), so that statements
    still compile and only the tables' pages are damaged.
    """
    con = sqlite3.connect(path)
    spared = {n for (n,) in con.execute("SELECT pageno FROM dbstat WHERE name = 'sqlite_schema'")} if keep_schema \
        else set()
    con.close()
    data = bytearray(path.read_bytes())
    garbage = random.Random(7).randbytes(DAMAGE)
    for offset in range(PAGE, PAGE + DAMAGE, PAGE):
        if offset // PAGE + 1 not in spared:
            data[offset:offset + PAGE] = garbage[offset - PAGE:offset]
    path.write_bytes(bytes(data))
    return bytes(data)


def sqlite_file(path: Path, script: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript(script)
    con.close()
    return path


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def one_line(err: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == ExitCode.USAGE
    return text


# -- 1. damaged --------------------------------------------------------------------------------


#: Open, then first use: damage is found by the first access that meets it (no whole-file scan on open).
FIRST_USE: dict[str, Callable[[Path], Any]] = {
    "store": lambda p: SQLiteStore(p).cursors(),
    "store-readonly": lambda p: SQLiteStore(p, readonly=True).cursors(),
    "stream-store": lambda p: StreamStore(p).start_run(url="ws://x/ws-api", channels=["x"], coins=None, now=4.0),
    "liveness": latest_liveness,
}


@pytest.mark.parametrize("opener", FIRST_USE)
def test_a_damaged_store_is_refused_at_first_use_in_every_mode(tmp_path: Path, opener: str) -> None:
    path = real_store(tmp_path / "c.db")
    damaged = damage(path)
    with pytest.raises(ConfigError) as err:
        FIRST_USE[opener](path)
    assert one_line(err).startswith(f"{path}: store is damaged (")
    assert path.read_bytes() == damaged  # refused, not repaired or written into


def damaged_past_open_check(tmp_path: Path, module: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real store, damaged, whose schema check in `module` answers as for the healthy file."""
    path = real_store(tmp_path / "c.db")
    con = sqlite3.connect(path)
    tables = sqlite_schema.user_tables(con)
    con.close()
    damage(path, keep_schema=True)
    monkeypatch.setattr(module, "check_store", lambda db, p: (SCHEMA_VERSION, tables))
    monkeypatch.setattr(module, "check_intact", lambda db, p, budget_s: None)  # as if it ran out of time
    monkeypatch.setattr(module, "bring_to_v3", lambda db, p: tables)  # the schema check inside the migration
    return path


@pytest.mark.parametrize("readonly", [False, True])
def test_every_read_is_guarded_even_past_the_open_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        readonly: bool) -> None:
    """Damage the open check cannot see (it happened later, or it is subtle) still comes out as one line."""
    path = damaged_past_open_check(tmp_path, store_module, monkeypatch)
    with SQLiteStore(path, readonly=readonly) as store:
        for read in (store.cursors, lambda: store.cursor("oi/SOL/all/1h"), lambda: store.rows("oi/SOL/all/1h"),
                     store.count, store.runs):
            with pytest.raises(ConfigError) as err:
                read()
            assert one_line(err).startswith(f"{path}: store is damaged (")


def test_stream_reads_and_writes_are_guarded_past_the_open_check(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = damaged_past_open_check(tmp_path, store_module, monkeypatch)  # the stream's store is the run's
    with pytest.raises(ConfigError, match=r"c\.db: store is damaged \("):
        latest_liveness(path)
    with StreamStore(path) as stream:
        for use in (lambda: stream.start_run(url="u", channels=["c"], coins=None, now=1.0),
                    lambda: stream.add_events([_event(1)], now=1.0), stream.count_events):
            with pytest.raises(ConfigError) as err:
                use()
            assert one_line(err).startswith(f"{path}: store is damaged (")


def test_a_table_dropped_under_an_open_store_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as writer:  # keeps the -wal: the read-only store sees other writers
        write(writer, [0, H], closed_upto=0)
        with SQLiteStore(path, readonly=True) as store:
            assert store.cursors() == {"oi/SOL/all/1h": 0}
            sqlite_file(path, "DROP TABLE cursors;")
            with pytest.raises(ConfigError) as err:
                store.cursors()
    assert one_line(err) == f"{path}: store read failed: no such table: cursors"


def test_stored_json_that_does_not_parse_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        write(store, [0], closed_upto=None)
        store.finish_run(store.start_run(), exit_code=0, totals={}, outcomes={})
    sqlite_file(path, "UPDATE runs SET outcomes = 'nope';")
    with SQLiteStore(path, readonly=True) as store:
        for read in (store.runs,):
            with pytest.raises(ConfigError) as err:
                read()
            assert one_line(err).startswith(f"{path}: store is damaged (a stored JSON value does not parse: ")


# -- 2. foreign or newer ------------------------------------------------------------------------

FOREIGN = {
    "v1-runs-only": ("PRAGMA user_version = 1; CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at INTEGER);",
                     "not a cgpreset store (schema v1 without table bars, cursors; "
                     "table runs has no column ended_at, exit_code, requests, …)"),
    "foreign-bars": ("CREATE TABLE bars (symbol TEXT, close REAL); INSERT INTO bars VALUES ('x', 1);",
                     "not a cgpreset store (table bars has no column layer, coin, instrument, …)"),
    "unrelated": ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);",
                  "not a cgpreset store (none of its tables is cgpreset's: users)"),
    "foreign-stream-runs": ("CREATE TABLE stream_runs (id INTEGER PRIMARY KEY, status TEXT);",
                            "not a cgpreset store (table stream_runs has no column started_at, updated_at, "
                            "ended_at, …)"),
    "v99": (f"{V1_SCHEMA} PRAGMA user_version = 99;",
            f"written by a newer cgpreset (schema v99; this one reads up to v{SCHEMA_VERSION})"),
    "negative": ("PRAGMA user_version = -1;", "not a cgpreset store (schema v-1)"),
}


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("kind", FOREIGN)
def test_a_foreign_or_newer_file_is_refused_in_every_mode_and_left_alone(tmp_path: Path, kind: str,
                                                                         opener: str) -> None:
    script, message = FOREIGN[kind]
    path = sqlite_file(tmp_path / "f.db", script)
    before = files(tmp_path)
    with pytest.raises(ConfigError) as err:
        OPENERS[opener](path)
    assert one_line(err) == f"{path}: {message}"
    assert files(tmp_path) == before  # no tables added, no version bumped, no WAL switch


def _stream_first(path: Path) -> Path:  # `stream --store` before any run-preset: v0, stream tables only
    StreamStore(path).close()
    return path


def _empty(path: Path) -> Path:
    path.touch()
    return path


OWN = {
    "stream-first": _stream_first,
    "v1": lambda p: sqlite_file(p, f"{V1_SCHEMA} PRAGMA user_version = 1;"),
    "empty": _empty,
    "real": real_store,
}


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("kind", OWN)
def test_what_cgpreset_itself_writes_is_accepted_by_every_opener(tmp_path: Path, kind: str, opener: str) -> None:
    got = OPENERS[opener](OWN[kind](tmp_path / "s.db"))  # no ConfigError
    if hasattr(got, "close"):
        got.close()


def test_a_stream_only_file_is_migrated_next_to_the_stream_tables(tmp_path: Path) -> None:
    path = _stream_first(tmp_path / "s.db")
    with SQLiteStore(path, readonly=True) as store:  # read-only: reads as empty, not an error
        assert (store.cursors(), store.cursor("x"), store.rows("x"), store.count(), store.runs()) == ({}, None, [],
                                                                                                     0, [])
    with SQLiteStore(path) as store:
        assert store.runs() == [] and store.cursors() == {}
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_a_failed_post_migration_check_leaves_the_file_as_it_was(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = sqlite_file(tmp_path / "v1.db", f"{V1_SCHEMA} PRAGMA user_version = 1;")
    real = sqlite_schema.check_tables

    def after_migration_fails(p: Path, version: int, found: Any) -> Any:
        if "series" in found:  # only the check inside the migration transaction
            raise ConfigError(f"{p}: not a cgpreset store (test)")
        return real(p, version, found)

    monkeypatch.setattr(sqlite_schema, "check_tables", after_migration_fails)
    with pytest.raises(ConfigError, match=r"v1\.db: not a cgpreset store \(test\)$"):
        SQLiteStore(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "status" not in [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'series'").fetchone()[0] == 0
    con.close()


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


# -- the commands -------------------------------------------------------------------------------

#: No command below may reach a network: the store is refused before the first request.
OFFLINE = {"COINGLASS_API_KEY": "k" * 32, "CGPRESET_BASE_URL": "http://127.0.0.1:9",
           "CGPRESET_WS_URL": "ws://127.0.0.1:9/ws-api", "CGPRESET_PLAN": "standard", "CGPRESET_MAX_ATTEMPTS": "1"}

COMMANDS = {
    "run-preset": ["run-preset", "{configs}", "--store", "{store}"],
    "dry-run": ["run-preset", "{configs}", "--store", "{store}", "--dry-run"],
    "stream": ["stream", "--duration", "2", "--store", "{store}"],
    "health": ["health", "{configs}", "--store", "{store}"],
}


def run_command(tmp_path: Path, command: str, store: Path) -> Any:
    configs = write_configs(tmp_path / "configs", coins=("SOL",))
    args = [a.format(configs=configs, store=store) for a in COMMANDS[command]]
    return CliRunner().invoke(cli, args, env=OFFLINE, catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_on_a_damaged_store_exit_2_in_one_line(tmp_path: Path, command: str) -> None:
    store = real_store(tmp_path / "c.db")
    damaged = damage(store)
    result = run_command(tmp_path, command, store)
    assert result.exit_code == 2, result.output
    *before, line = result.stderr.splitlines()
    assert before == []  # v3's schema spans more than the first page: even `stream` finds it before connecting
    assert line.startswith(f"Error: {store}: store is damaged (") and result.stdout == ""
    assert store.read_bytes() == damaged


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["v1-runs-only", "foreign-bars", "v99"])
def test_commands_on_a_foreign_or_newer_store_exit_2_in_one_line(tmp_path: Path, command: str, kind: str) -> None:
    script, message = FOREIGN[kind]
    store = sqlite_file(tmp_path / "f.db", script)
    before = store.read_bytes()
    result = run_command(tmp_path, command, store)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"Error: {store}: {message}"] and result.stdout == ""
    assert store.read_bytes() == before
