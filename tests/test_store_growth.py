"""A store written by the release before coverage (schema v3 at ff2c7b6) opens with today's code:
a read leaves it untouched, a writing open grows it (coverage filled from its rows, the retired
column, today's views) in one transaction and loses nothing."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

from cgpreset.store import open_store
from tests.conftest import FIXTURES

OLD = FIXTURES / "store-v3-ff2c7b6.db"


def _tables(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'data_%'")]
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    finally:
        con.close()


def test_a_read_leaves_the_old_store_as_it_was_and_sees_its_coverage(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(OLD, db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with open_store(db, readonly=True) as store:
        cov = store.coverage()
        positions = store.positions()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    oi = cov["open_interest/SOL/all/1h"]
    assert len(oi.spans) == 1 and oi.holes == ()
    assert oi.spans[0][1] - 3_600_000 == positions["open_interest/SOL/all/1h"].last_closed


def test_a_writing_open_grows_the_old_store_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(OLD, db)
    before = _tables(db)
    assert sum(before.values()) > 1000
    with open_store(db) as store:
        cov = store.coverage()
        assert {k for k in cov if k.startswith(("funding", "open_interest", "liquidation/", "taker"))} == {
            k for k in store.positions() if k.startswith(("funding", "open_interest", "liquidation/", "taker"))}
        assert all(len(c.spans) == 1 for c in cov.values())
    after = _tables(db)
    assert {k: after[k] for k in before} == before  # nothing lost
    assert all(after[k] == 0 for k in after.keys() - before.keys())  # the layers it never met: empty tables
    con = sqlite3.connect(db)
    try:
        assert "retired_at" in {r[1] for r in con.execute("PRAGMA table_info(series)")}
        assert "retired_at IS NULL" in con.execute("SELECT sql FROM sqlite_master WHERE name = 'funding'").fetchone()[0]
        assert con.execute("SELECT count(*) FROM open_interest").fetchone()[0] == before["data_open_interest"]
    finally:
        con.close()


def test_the_old_store_gains_the_tables_and_views_of_layers_it_never_met(tmp_path: Path) -> None:
    """A layer added after a store was written is never a version bump: the store opens, gains the
    layer's table and view and `liquidation_events`, and keeps every row."""
    from cgpreset import layers
    from tests.test_store_layers import define, tables

    db = tmp_path / "old.db"
    shutil.copy(OLD, db)
    before = _tables(db)
    define(tmp_path, "basis_x", ["open_basis", "close_basis"])
    try:
        with open_store(db, readonly=True) as store:  # a read does without them
            assert store.count() == sum(v for k, v in before.items() if k != "data_etf_tickers")
        assert "data_basis_x" not in tables(str(db))
        open_store(db).close()
    finally:
        layers.reset()
    grown = tables(str(db))
    assert {"data_basis_x", "basis_x", "liquidation_events"} <= grown.keys()
    after = _tables(db)
    assert {k: after[k] for k in before} == before and after["data_basis_x"] == 0
    assert all(after[k] == 0 for k in after.keys() - before.keys())
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 3
