"""The SQLite backend's own file: created in WAL mode at the current schema version, its folder
made (or one clear line why not), and a read-only open that never creates or changes a byte."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.store.schema import SCHEMA_VERSION
from cgpreset.store.sqlite import SQLiteStore
from tests.store_pages import H, write


def test_a_new_store_file_is_in_wal_mode_at_the_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    # a newer version is refused in every mode, the file left as it was: test_store_damage.py ("v99")


def test_a_folder_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"afile/x\.db: cannot create the store's folder: "):
        SQLiteStore(tmp_path / "afile" / "x.db")


def test_a_read_only_open_never_creates_or_changes_a_byte(tmp_path: Path) -> None:
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
