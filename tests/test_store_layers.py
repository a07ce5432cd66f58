"""A store meets the catalogue's layers: on both backends, a writing open (or the first write of a
layer that joined later) adds a layer's table and view in one transaction, a definition that
gained a field adds a nullable column, a read-only open works without them, and a table of a
layer this command did not load is left alone. Layers are defined here as a repo defines its
own: a YAML file in `layers/`."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cgpreset import layers
from cgpreset.errors import ConfigError
from cgpreset.store import Page, SeriesRef, open_store
from cgpreset.store import growth as growth_module
from cgpreset.store.schema import ViewDef
from tests.test_store_conformance import (
    location,  # noqa: F401 - the backends fixture
    view_rows,
)

H = 3_600_000
OI = SeriesRef("open_interest/SOL/all/1h", "open_interest", "SOL", None, None, "1h", "{}")
BASIS = SeriesRef("basis_x/SOL/Binance:SOLUSDT/1h", "basis_x", "SOL", "Binance", "SOLUSDT", "1h", "{}")


@pytest.fixture(autouse=True)
def _shipped_after() -> Iterator[None]:
    yield
    layers.reset()


def define(folder: Path, name: str, fields: list[str], *, kind: str = "pair") -> None:
    """Make `layers/<name>.yaml` (numbers in percent) and the catalogue with it the active one."""
    (folder / "layers").mkdir(exist_ok=True)
    rows = "\n".join(f"  - {{name: {f}, type: number, unit: percent}}" for f in fields)
    (folder / "layers" / f"{name}.yaml").write_text(
        f"name: {name}\ntitle: {name} (a test layer)\nendpoint: {{path: /api/futures/{name}/history}}\n"
        f"kind: {kind}\nhistory: windows\ntime: {{field: time, unit: ms}}\nfields:\n{rows}\nchart: lines\n",
        encoding="utf-8")
    layers.use([folder / "layers"])


def tables(where: str) -> dict[str, tuple[str, ...]]:
    """Every table and view of the store with its columns, read with the backend's own driver."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where) as db:
            found: dict[str, tuple[str, ...]] = {}
            for name, col in db.execute("SELECT table_name, column_name FROM information_schema.columns "
                                        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
                found[name] = (*found.get(name, ()), col)
            return found
    db = sqlite3.connect(where)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        return {n: tuple(r[1] for r in db.execute(f"PRAGMA table_info({n})")) for n in names}
    finally:
        db.close()


def relation_id(where: str, name: str) -> int | None:
    """PostgreSQL's id of a table or view (None on SQLite): the same id is the same object."""
    if not where.startswith("postgresql://"):
        return None
    import psycopg

    with psycopg.connect(where) as db:
        return int(db.execute("SELECT %s::regclass::oid", (name,)).fetchone()[0])  # type: ignore[index]


def bars(times: list[int], width: int) -> list[tuple[Any, ...]]:
    return [(t, *(float(i + 1) for i in range(width)), 1) for t in times]


def test_a_store_open_before_a_layer_joined_grows_its_table_and_view_at_its_first_write(
        location: str, tmp_path: Path) -> None:  # noqa: F811
    with open_store(location) as store:
        store.write(Page(OI, [(0, 1.0, 2.0, 0.5, 1.5, 1)], closed_upto=0))
        assert "data_basis_x" not in tables(location)
        define(tmp_path, "basis_x", ["open_basis", "close_basis"])
        written = store.write(Page(BASIS, bars([0, H, 2 * H], 2), closed_upto=2 * H, asked=(0, 3 * H),
                                   forming_at=3 * H))
        assert written.new_rows == 3
        assert [r["close_basis"] for r in store.rows(BASIS.key)] == [2.0, 2.0, 2.0]
        assert store.count() == 4 and store.coverage()[BASIS.key].spans == ((0, 3 * H),)
    found = tables(location)
    assert found["data_basis_x"] == ("series", "time", "open_basis", "close_basis", "closed")
    assert found["basis_x"] == ("coin", "exchange", "instrument", "interval", "time", "ts", "open_basis",
                                "close_basis", "closed")
    assert [r[4] for r in view_rows(location, "basis_x")] == [0, H, 2 * H]


def test_a_writing_open_grows_every_layer_of_the_catalogue_in_one_transaction(
        location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    open_store(location).close()
    define(tmp_path, "basis_x", ["open_basis", "close_basis"])
    broken = ViewDef("broken_view", (("1 +", "x"),), "series")  # a syntax error on both backends
    real = growth_module.views
    monkeypatch.setattr(growth_module, "views", lambda cat, found=None: (*real(cat, found), broken))
    with pytest.raises(ConfigError) as err:
        open_store(location)
    assert "\n" not in str(err.value)
    assert "data_basis_x" not in tables(location)  # the table went with the view that failed
    monkeypatch.setattr(growth_module, "views", real)
    open_store(location).close()
    assert {"data_basis_x", "basis_x"} <= tables(location).keys()


def test_a_read_only_open_works_without_a_layer_and_changes_nothing(location: str, tmp_path: Path) -> None:  # noqa: F811
    with open_store(location) as store:
        store.write(Page(OI, [(0, 1.0, 2.0, 0.5, 1.5, 1)], closed_upto=0))
    before = tables(location)
    digest = hashlib.sha256(Path(location).read_bytes()).hexdigest() if not location.startswith("postgresql") else ""
    define(tmp_path, "basis_x", ["open_basis", "close_basis"])
    with open_store(location, readonly=True) as store:
        assert store.rows(BASIS.key) == [] and store.count(BASIS.key) == 0
        assert store.count() == 1 and list(store.positions()) == [OI.key]
    assert tables(location) == before
    if digest:
        assert hashlib.sha256(Path(location).read_bytes()).hexdigest() == digest


def test_a_definition_that_gained_a_field_adds_a_nullable_column_and_keeps_the_rows(
        location: str, tmp_path: Path) -> None:  # noqa: F811
    define(tmp_path, "basis_x", ["open_basis", "close_basis"])
    with open_store(location) as store:
        store.write(Page(BASIS, bars([0, H], 2), closed_upto=H))
    view_id = relation_id(location, "basis_x")
    define(tmp_path, "basis_x", ["open_basis", "close_basis", "basis_change"])
    with open_store(location) as store:
        store.write(Page(BASIS, bars([2 * H], 3), closed_upto=2 * H))
        assert [r["basis_change"] for r in store.rows(BASIS.key)] == [None, None, 3.0]
    assert relation_id(location, "basis_x") == view_id  # PostgreSQL: replaced in place, its GRANTs kept
    found = tables(location)
    assert found["data_basis_x"][-1] == found["basis_x"][-1] == "basis_change"  # the view grew at its end
    layers.reset()  # a command that does not load the repo's layers: the table and its view stay
    with open_store(location) as store:
        assert store.count() == 3 and len(store.rows(BASIS.key)) == 3
    assert tables(location)["basis_x"] == found["basis_x"]


def test_a_layer_table_without_its_key_is_refused_in_one_line(location: str, tmp_path: Path) -> None:  # noqa: F811
    open_store(location).close()
    sql = "CREATE TABLE data_basis_x (series BIGINT, open_basis DOUBLE PRECISION)"
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute(sql)
    else:
        with sqlite3.connect(location) as db:
            db.execute(sql)
    define(tmp_path, "basis_x", ["open_basis"])
    for readonly in (True, False):
        with pytest.raises(ConfigError, match=r"not a cgpreset store \(table data_basis_x has no column time, "
                                              r"closed \(layer basis_x: its key changed\? give it a new name\)\)$"):
            open_store(location, readonly=readonly)


def test_bytes_per_row_of_a_new_layer_table(location: str, tmp_path: Path) -> None:  # noqa: F811
    """A pair layer of four values, 20,000 hourly rows over 10 series: bytes on disk per row
    (table and key; SQLite: WITHOUT ROWID, measured by dbstat)."""
    define(tmp_path, "basis_x", ["open_basis", "high_basis", "low_basis", "close_basis"])
    n = 2000
    with open_store(location) as store:
        for i in range(10):
            ref = SeriesRef(f"basis_x/C{i}/Binance:C{i}USDT/1h", "basis_x", f"C{i}", "Binance", f"C{i}USDT", "1h", "{}")
            for start in range(0, n, 1000):
                times = [1_700_000_000_000 + t * H for t in range(start, start + 1000)]
                store.write(Page(ref, [(t, 0.0123, 0.0456, -0.0078, 0.0201, 1) for t in times], closed_upto=times[-1]))
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as db:
            db.execute("VACUUM ANALYZE data_basis_x")
            size = db.execute("SELECT pg_total_relation_size('data_basis_x')").fetchone()[0]  # type: ignore[index]
    else:
        with sqlite3.connect(location) as db:
            size = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'data_basis_x'").fetchone()[0]
    per_row = size / (10 * n)
    print(f"\nbytes per row of a new layer table ({location.split(':')[0]}): {per_row:.1f}")
    if not location.startswith("postgresql://"):  # PostgreSQL's row header alone is 24 bytes
        assert per_row <= 80
