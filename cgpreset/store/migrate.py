"""SQLite schema v0/v1/v2 -> v3, in place and in one transaction (the caller holds it).

v2 kept every layer in one `bars` table keyed by five text columns, with each row's raw JSON;
v3 (store/schema.py) has a `series` table and one table per layer keyed by (series, time).
The migration moves every row, cursor, run and stream event; the raw JSON is dropped except the
ETF flows' per-ticker list, which becomes `data_etf_tickers`. Times of the stream tables go from
seconds to milliseconds. Nothing here decides whether to migrate: a read-only (`--dry-run`)
store never calls it.
"""

from __future__ import annotations

import json
import sqlite3

from cgpreset.layers import catalogue
from cgpreset.store.schema import SCHEMA_VERSION, layer_table

#: The v2 tables (v1: runs without status), as v2 created them: for the schema check of old files.
LEGACY_SCHEMA = """
CREATE TABLE bars (layer TEXT NOT NULL, coin TEXT NOT NULL, instrument TEXT NOT NULL, interval TEXT NOT NULL,
    time INTEGER NOT NULL, series TEXT NOT NULL, open REAL, high REAL, low REAL, close REAL, long_usd REAL,
    short_usd REAL, buy_usd REAL, sell_usd REAL, total_usd REAL, price_usd REAL, payload TEXT NOT NULL,
    fetched_at INTEGER NOT NULL, PRIMARY KEY (layer, coin, instrument, interval, time)) WITHOUT ROWID;
CREATE TABLE cursors (series TEXT PRIMARY KEY, last_closed INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at INTEGER NOT NULL, ended_at INTEGER,
    exit_code INTEGER, requests INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0, rate_wait_seconds REAL NOT NULL DEFAULT 0, outcomes TEXT,
    status TEXT);
"""
LEGACY_STREAM_SCHEMA = """
CREATE TABLE stream_events (kind TEXT NOT NULL, exchange TEXT NOT NULL, symbol TEXT NOT NULL,
    time_ms INTEGER NOT NULL, side_raw TEXT NOT NULL, price REAL NOT NULL, volume_usd REAL NOT NULL,
    base_asset TEXT NOT NULL, side TEXT NOT NULL, channel TEXT NOT NULL, run_id INTEGER, received_at REAL NOT NULL,
    PRIMARY KEY (kind, exchange, symbol, time_ms, side_raw, price, volume_usd));
CREATE TABLE stream_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, updated_at REAL NOT NULL,
    ended_at REAL, status TEXT NOT NULL, stop_reason TEXT, url TEXT NOT NULL, channels TEXT NOT NULL, coins TEXT,
    events INTEGER NOT NULL DEFAULT 0, events_per_minute REAL NOT NULL DEFAULT 0,
    reconnects INTEGER NOT NULL DEFAULT 0, pings_sent INTEGER NOT NULL DEFAULT 0,
    pongs_received INTEGER NOT NULL DEFAULT 0, last_event_at REAL, summary TEXT NOT NULL DEFAULT '{}');
"""
_OLD = ("bars", "cursors", "runs", "stream_events", "stream_runs")

_STREAM_RUN_COLS = ("id", "started_at", "updated_at", "ended_at", "status", "stop_reason", "url", "channels",
                    "coins", "events", "events_per_minute", "reconnects", "pings_sent", "pongs_received",
                    "last_event_at", "summary")
_SECONDS = {"started_at", "updated_at", "ended_at", "last_event_at"}
_RUN_COLS = ("id", "started_at", "ended_at", "exit_code", "requests", "retries", "rate_limited",
             "rate_wait_seconds", "outcomes")


def migrate(db: sqlite3.Connection, version: int, tables: set[str], create: list[str]) -> None:
    """Bring a v0-v2 file to v3 inside the caller's transaction; `create` makes v3's tables (the
    views come after, as every writing open makes them)."""
    old = [t for t in _OLD if t in tables]
    for t in old:
        db.execute(f"ALTER TABLE {t} RENAME TO v2_{t}")
    db.execute("DROP INDEX IF EXISTS stream_events_coin_time")
    for statement in create:
        db.execute(statement)
    if "bars" in old:
        _series(db)
        _rows(db)
        _cursors(db)
    if "runs" in old:
        cols = ", ".join(_RUN_COLS + (("status",) if version >= 2 else ()))
        db.execute(f"INSERT INTO runs ({cols}) SELECT {cols} FROM v2_runs")
    if "stream_events" in old:
        db.execute("INSERT INTO stream_events SELECT kind, exchange, symbol, time_ms, side_raw, price, volume_usd, "
                   "base_asset, side, channel, run_id, CAST(round(received_at * 1000) AS INTEGER) "
                   "FROM v2_stream_events")
    if "stream_runs" in old:
        picked = ", ".join(f"CAST(round({c} * 1000) AS INTEGER)" if c in _SECONDS else c for c in _STREAM_RUN_COLS)
        db.execute(f"INSERT INTO stream_runs ({', '.join(_STREAM_RUN_COLS)}) SELECT {picked} FROM v2_stream_runs")
    for t in old:
        db.execute(f"DROP TABLE v2_{t}")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _series(db: sqlite3.Connection) -> None:
    """One `series` row per v2 series key; exchange and instrument from its key."""
    keys = db.execute("SELECT DISTINCT series, layer, coin, interval FROM v2_bars").fetchall()
    for key, layer, coin, interval in keys:
        label = key.split("/")[2] if key.count("/") >= 3 else ""
        exchange, instrument = None, None
        ls = catalogue().get(layer)
        if ls is not None and ls.kind == "pair" and ":" in label:
            exchange, instrument = label.split(":", 1)
        elif ls is not None and "exchange_list" in ls.params:
            exchange = label
        elif ls is not None and ls.macro:
            instrument = label
        db.execute("INSERT INTO series (key, layer, coin, exchange, instrument, interval, params) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, layer, coin, exchange, instrument, interval, json.dumps({})))


def _rows(db: sqlite3.Connection) -> None:
    """Every v2 row into its layer's table; `closed` from the series' cursor. Only v2's layers
    (those its rows name): a layer defined since has no v2 column to come from."""
    held = {str(r[0]) for r in db.execute("SELECT DISTINCT layer FROM v2_bars")}
    for ls in (ls for ls in catalogue().values() if ls.id in held):
        table = layer_table(ls)
        old_name = {c.name: ("total_usd" if c.name == "flow_usd" else c.name) for c in ls.columns}
        values = [f"b.{old_name[c.name]}" for c in ls.columns]
        if ls.row_key:
            values.insert(0, "b.instrument")
        if not ls.snapshot:
            values.append("CASE WHEN c.last_closed IS NOT NULL AND b.time <= c.last_closed THEN 1 ELSE 0 END")
        db.execute(
            f"INSERT OR IGNORE INTO {table.name} ({', '.join(table.column_names)}) "
            f"SELECT s.id, b.time, {', '.join(values)} FROM v2_bars b JOIN series s ON s.key = b.series "
            f"LEFT JOIN v2_cursors c ON c.series = b.series WHERE b.layer = ?", (ls.id,))
        d = ls.detail
        if d is not None:
            db.execute(
                f"INSERT OR IGNORE INTO {d.table} (series, time, {d.key}, {', '.join(c.name for c in d.columns)}) "
                f"SELECT s.id, b.time, json_extract(j.value, '$.{d.key_field}'), "
                + ", ".join(f"json_extract(j.value, '$.{c.field}')" for c in d.columns)
                + f" FROM v2_bars b JOIN series s ON s.key = b.series, json_each(b.payload, '$.{d.field}') j "
                f"WHERE b.layer = ? AND json_extract(j.value, '$.{d.key_field}') IS NOT NULL", (ls.id,))


def _cursors(db: sqlite3.Connection) -> None:
    """Each series' cursor, with the oldest and newest bars it holds (v2's index makes these cheap)."""
    db.execute(
        "INSERT INTO cursors (series, last_closed, earliest, latest, updated_at) "
        "SELECT s.id, c.last_closed, (SELECT min(time) FROM v2_bars WHERE series = s.key), "
        "(SELECT max(time) FROM v2_bars WHERE series = s.key), coalesce(c.updated_at, 0) "
        "FROM series s LEFT JOIN v2_cursors c ON c.series = s.key")
