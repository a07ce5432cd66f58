"""Stream event persistence (de-duplicated) and the liveness row `health` reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cgpreset.errors import ConfigError, ExitCode
from cgpreset.store.stream_tables import StreamStore, latest_liveness
from cgpreset.stream.events import LiquidationEvent, TradeEvent


def _event(time: int = 1725416318379, channel: str = "liquidation_orders", **kw: object) -> LiquidationEvent:
    fields = dict(channel=channel, exchange="Binance", symbol="BTCUSDT", base_asset="BTC",
                  price=56738.0, side="short", side_raw=2, volume_usd=3858.184, time=time)
    fields.update(kw)
    return LiquidationEvent(**fields)  # type: ignore[arg-type]


def test_same_event_twice_is_one_row(tmp_path: Path) -> None:
    with StreamStore(tmp_path / "s.db") as store:
        store.start_run(url="ws://x/ws-api", channels=["liquidation_orders"], coins=None, now=1.0)
        assert store.add_events([_event(), _event()], now=2.0) == 1
        # the other channel variant carries the same event: still one row
        assert store.add_events([_event(channel="liquidationOrders")], now=3.0) == 0
        assert store.add_events([_event(time=1725416318380)], now=4.0) == 1
        assert store.count_events() == 2


def test_a_trade_and_a_liquidation_with_equal_fields_are_two_rows(tmp_path: Path) -> None:
    trade = TradeEvent(channel="futures_trades@Binance_BTCUSDT@0", exchange="Binance", symbol="BTCUSDT",
                       base_asset="BTC", price=56738.0, side="buy", side_raw=2, volume_usd=3858.184,
                       time=1725416318379)
    with StreamStore(tmp_path / "s.db") as store:
        assert store.add_events([_event(), trade], now=1.0) == 2


def test_events_survive_a_second_store_on_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with StreamStore(db) as store:
        store.add_events([_event()], now=1.0)
    with StreamStore(db) as store:
        assert store.add_events([_event()], now=2.0) == 0
        assert store.count_events() == 1


def test_wal_and_no_key_in_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with StreamStore(db) as store:
        store.start_run(url="wss://h/ws-api?cg-api-key=<redacted>", channels=["c"], coins=["BTC"], now=1.0)
        store.update_run({"events": 0}, now=2.0, last_event_at=None)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_liveness_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "cgpreset.db"
    assert latest_liveness(db) is None  # no file
    sqlite3.connect(db).close()
    assert latest_liveness(db) is None  # a file without the stream tables
    with StreamStore(db) as store:
        assert latest_liveness(db) is None  # tables, but no run yet
        store.start_run(url="ws://x/ws-api", channels=["liquidation_orders"], coins=["BTC", "SOL"], now=100.0)
        running = latest_liveness(db, now=101.0)
        assert running is not None and running["status"] == "running" and running["last_event_age_s"] is None
        summary = {"events": 30, "events_per_minute": 120.0, "reconnects": 2, "pings_sent": 9,
                   "pongs_received": 8, "stop_reason": "duration"}
        store.update_run(summary, now=115.0, last_event_at=114.5, status="stopped", stop_reason="duration")
    got = latest_liveness(db, now=120.0)
    assert got is not None
    assert {k: got[k] for k in ("status", "stop_reason", "events", "events_per_minute", "reconnects",
                                "pings_sent", "pongs_received", "last_event_at", "last_event_age_s",
                                "channels", "coins", "started_at", "ended_at")} == {
        "status": "stopped", "stop_reason": "duration", "events": 30, "events_per_minute": 120.0,
        "reconnects": 2, "pings_sent": 9, "pongs_received": 8, "last_event_at": 114.5,
        "last_event_age_s": 5.5, "channels": ["liquidation_orders"], "coins": ["BTC", "SOL"],
        "started_at": 100.0, "ended_at": 115.0,
    }
    assert got["summary"] == summary


def test_latest_liveness_is_the_newest_run(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with StreamStore(db) as store:
        store.start_run(url="u", channels=["a"], coins=None, now=1.0)
    with StreamStore(db) as store:
        store.start_run(url="u", channels=["b"], coins=None, now=2.0)
    got = latest_liveness(db)
    assert got is not None and got["channels"] == ["b"] and got["run_id"] == 2


def test_a_corrupt_file_or_a_directory_is_a_one_line_config_error(tmp_path: Path) -> None:
    garbage = tmp_path / "c.db"
    garbage.write_text("garbage\n", encoding="utf-8")
    folder = tmp_path / "d.db"
    folder.mkdir()
    expected = {garbage: f"{garbage}: not a cgpreset store (file is not a database)",
                folder: f"{folder}: is a directory"}
    for path, message in expected.items():
        for open_it in (StreamStore, latest_liveness):  # `stream --store` and `health` alike
            with pytest.raises(ConfigError) as info:
                open_it(path)
            assert str(info.value) == message and info.value.exit_code == ExitCode.USAGE
    assert garbage.read_text(encoding="utf-8") == "garbage\n"  # left as it was


def test_a_truncated_database_is_a_config_error(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with StreamStore(db) as store:
        store.start_run(url="u", channels=["liquidation_orders"], coins=None, now=1.0)
        store.add_events([_event(time=t) for t in range(1, 500)], now=2.0)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * (len(data) - 100))  # header kept, pages destroyed
    for open_it in (StreamStore, latest_liveness):
        with pytest.raises(ConfigError, match=r"t\.db: store is damaged \("):
            open_it(db)
