"""`cgpreset export` and `cgpreset.read`: the files hold exactly the view's rows and columns."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.analyst import export as export_mod
from cgpreset.analyst.read import read
from cgpreset.analyst.views import Selection, iter_rows, make_selection, select_sql, view_names
from cgpreset.cli import cli
from cgpreset.errors import UsageError
from cgpreset.store import open_store
from tests.analyst_db import DAY, HOUR, SHIPPED_VIEWS, T0, iso, make_views_db

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_views_db(tmp_path / "views.db", coins=("BTC", "ETH", "SOL"), bars=30)


def _view_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
    """What the view itself answers, straight from SQLite (closed 0/1 made bool, as exported)."""
    con = sqlite3.connect(db)
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    rows = [tuple(bool(v) if c == "closed" else v for c, v in zip(cols, r, strict=True)) for r in cur]
    con.close()
    return cols, rows


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["export", *args])


def _from_csv(text: str, cols: list[str]) -> list[tuple[Any, ...]]:
    def conv(c: str, v: str) -> Any:
        if v == "":
            return None
        if c in ("coin", "exchange", "instrument", "interval", "ts", "ticker"):
            return v
        if c == "time":
            return int(v)
        if c == "closed":
            return {"true": True, "false": False}[v]
        return float(v)

    reader = csv.reader(io.StringIO(text))
    assert next(reader) == cols
    return [tuple(conv(c, v) for c, v in zip(cols, r, strict=True)) for r in reader]


def test_csv_round_trips_the_selection_exactly(db: Path, tmp_path: Path) -> None:
    start, end = T0 + 5 * HOUR, T0 + 29 * HOUR + 1  # includes the forming last bar
    result = _invoke("open_interest", "--store", str(db), "--coin", "sol", "--coin", "BTC",
                     "--start", iso(start), "--end", str(end))
    assert result.exit_code == 0, result.output
    cols, want = _view_rows(db, "SELECT * FROM open_interest WHERE coin IN ('BTC','SOL') AND time >= ? AND time < ? "
                                "ORDER BY coin, interval, time", (start, end))
    got = _from_csv(result.stdout, cols)
    assert got == want
    assert len(got) == 2 * 25 and got[-1][-1] is False  # the forming bar is there, marked


def test_closed_only_leaves_out_the_forming_bar(db: Path) -> None:
    result = _invoke("liquidation", "--store", str(db), "--coin", "ETH", "--closed-only")
    cols, want = _view_rows(db, "SELECT * FROM liquidation WHERE coin = 'ETH' AND closed ORDER BY time")
    assert _from_csv(result.stdout, cols) == want
    assert len(want) == 29


def test_parquet_round_trips_with_proper_types(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "funding.parquet"
    result = _invoke("funding", "--store", str(db), "--since", "3650d", "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "exported 90 rows of funding" in result.stderr
    table = pq.read_table(out)
    cols, want = _view_rows(db, "SELECT * FROM funding ORDER BY coin, exchange, instrument, interval, time")
    assert table.column_names == cols
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["time"] == pa.timestamp("ms", tz="UTC")
    assert types["open"] == pa.float64() and types["closed"] == pa.bool_() and types["coin"] == pa.string()
    got = [tuple(int(v.timestamp() * 1000) if c == "time" else v for c, v in zip(cols, r.values(), strict=True))
           for r in table.to_pylist()]
    assert got == want


def test_etf_views_keep_their_extra_columns(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "etf.parquet"
    assert _invoke("etf_flows", "--store", str(db), "--format", "parquet", "--output", str(out)).exit_code == 0
    cols, want = _view_rows(db, "SELECT * FROM etf_flows ORDER BY time")
    assert pq.read_table(out).column_names == cols == ["time", "ts", "flow_usd", "price_usd", "closed"]
    result = _invoke("etf_flows_by_ticker", "--store", str(db), "--format", "jsonl")
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    _, by_ticker = _view_rows(db, "SELECT * FROM etf_flows_by_ticker ORDER BY ticker, time")
    assert [tuple(x.values()) for x in lines] == by_ticker


def test_parquet_is_written_batch_by_batch(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = sqlite3.connect(db)
    columns, batches = iter_rows(con, "taker_volume", Selection(), batch_rows=7)
    out = tmp_path / "t.parquet"
    with out.open("wb") as fh:
        assert export_mod.write_parquet(columns, batches, fh) == 90
    assert pq.ParquetFile(out).metadata.num_row_groups == 13  # ceil(90 / 7): one row group per fetched batch


def test_a_failure_mid_export_leaves_the_old_file_and_no_temp(db: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "oi.csv"
    out.write_text("old\n")
    real = export_mod.write_csv

    def failing(columns: Any, batches: Any, fh: Any) -> int:
        real(columns, iter([next(batches)]), fh)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_mod, "write_csv", failing)
    result = _invoke("open_interest", "--store", str(db), "--output", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {out}: cannot write: No space left on device"
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oi.csv", "views.db"]


@pytest.mark.parametrize(("args", "message"), [
    (["fundng"], "unknown layer 'fundng' (did you mean funding?): expected one of " + ", ".join(view_names())
     + " (`cgpreset layers` lists the layers)"),
    (["etf_flows", "--coin", "BTC"], "--coin: etf_flows has no coin column (it is the same for every coin)"),
    (["liquidation_exchanges", "--closed-only"],
     "--closed-only: liquidation_exchanges has no closed column (every row is a final snapshot)"),
    (["funding", "--format", "parquet"], "--format parquet needs --output FILE (Parquet is not written to stdout)"),
    (["funding", "--since", "3x"], "--since '3x': expected a positive duration such as 30d, 12h, 90m or 2w"),
    (["funding", "--since", "3d", "--start", "2026-11-01"], "--since cannot be combined with --start/--end"),
    (["funding", "--start", "2026-11-02", "--end", "2026-11-01"], "--end 2026-11-01 is not after --start 2026-11-02"),
    (["funding", "--start", "yesterday"],
     "--start 'yesterday': expected ISO-8601 (2026-11-01 or 2026-11-01T12:00Z) or ms since the epoch"),
])
def test_bad_flags_are_one_line_and_exit_2(db: Path, args: list[str], message: str) -> None:
    result = _invoke(*args, "--store", str(db))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""


def test_unreadable_stores_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _invoke("funding", "--store", str(tmp_path / "none.db"))
    assert (missing.exit_code, missing.stderr) == (2, f"Error: {tmp_path / 'none.db'}: no such store "
                                                      "(no run has written it yet)\n")
    old = tmp_path / "old.db"
    sqlite3.connect(old).execute("CREATE TABLE bars (x)").connection.commit()
    result = _invoke("funding", "--store", str(old))
    assert result.exit_code == 2  # refused by the store's check, before any read
    assert result.stderr == (f"Error: {old}: not a cgpreset store"
                             " (table bars has no column layer, coin, instrument, …)\n")
    assert not (tmp_path / "none.db").exists()  # reading never creates a store
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert _invoke("funding", "--store", str(junk)).exit_code == 2


def test_select_sql_filters_and_orders() -> None:
    sel = make_selection(coins=["sol", "SOL", "btc"], since="2d", closed_only=True, now_ms=T0 + 2 * DAY)
    sql, params = select_sql("liquidation", ("coin", "interval", "time", "long_usd", "closed"), sel, "%s")
    assert sql == ('SELECT "coin", "interval", "time", "long_usd", "closed" FROM liquidation '
                   "WHERE coin IN (%s, %s) AND time >= %s AND closed ORDER BY coin, interval, time")
    assert params == ["SOL", "BTC", T0]


def test_read_returns_rows_and_frames(db: Path) -> None:
    rows = read(db, "open_interest", coin="SOL", closed_only=True)
    assert len(rows) == 29 and rows.columns[:3] == ("coin", "interval", "time")
    assert rows[0]["coin"] == "SOL" and rows[0]["time"] == T0 and rows[0]["closed"] is True
    table = rows.to_arrow()
    assert table.num_rows == 29 and table.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    both = read(sqlite3.connect(db), "taker_volume", coin=["BTC", "ETH"], start=T0 + HOUR, end=iso(T0 + 3 * HOUR))
    assert [(r["coin"], r["time"]) for r in both] == [(c, T0 + h * HOUR) for c in ("BTC", "ETH") for h in (1, 2)]


def test_read_to_pandas_when_installed(db: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = read(db, "funding", coin="BTC").to_pandas()
    assert list(frame.columns) == list(read(db, "funding").columns) and len(frame) == 30
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["time"].iloc[0] == pd.Timestamp(T0, unit="ms", tz="UTC")


def test_read_rejects_a_bad_layer(db: Path) -> None:
    with pytest.raises(UsageError, match="unknown layer 'oi'"):
        read(db, "oi")


def _copy_to_postgres(db: Path, dsn: str) -> None:
    """The same views and rows in PostgreSQL (closed as a real boolean there), in a store whose
    views read them."""
    import psycopg

    open_store(dsn).close()
    src = sqlite3.connect(db)
    with psycopg.connect(dsn) as pg:
        for view in SHIPPED_VIEWS:
            pg.execute(f"DROP VIEW {view}")
            cur = src.execute(f"SELECT * FROM t_{view}")
            cols = [d[0] for d in cur.description]
            kinds = ["TEXT" if c in ("coin", "exchange", "instrument", "interval", "ts", "ticker") else "BIGINT"
                     if c == "time" else "BOOLEAN" if c == "closed" else "DOUBLE PRECISION" for c in cols]
            pg.execute(f"CREATE TABLE t_{view} ({', '.join(f'{c} {k}' for c, k in zip(cols, kinds, strict=True))})")
            pg.execute(f"CREATE VIEW {view} AS SELECT * FROM t_{view}")
            with pg.cursor() as pc:
                pc.executemany(f"INSERT INTO t_{view} VALUES ({', '.join(['%s'] * len(cols))})",
                               [tuple(bool(v) if c == "closed" else v for c, v in zip(cols, r, strict=True))
                                for r in cur])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_postgres_store_exports_the_same_bytes_as_sqlite(db: Path, pg_dsn: str, fmt: str) -> None:
    _copy_to_postgres(db, pg_dsn)
    for view in SHIPPED_VIEWS:
        args = [view, "--format", fmt] + ([] if view.startswith("etf") else ["--coin", "SOL", "--coin", "BTC"])
        from_sqlite = _invoke(*args, "--store", str(db))
        from_pg = _invoke(*args, "--store", pg_dsn)
        assert from_pg.exit_code == 0, from_pg.output
        assert from_pg.stdout == from_sqlite.stdout and from_sqlite.stdout.count("\n") > 3
