"""The analyst views of the store, and one streaming query over them (any DB-API connection).

Every view is derived from the active layer catalogue, so a repo's own layers are exported and
charted like the shipped ones: a layer's view (named after it) has the columns naming its series
(from its kind), its row key, `time`, `ts`, its stored columns and `closed` (not on a snapshot);
a layer's nested rows have a view of their own (its `detail`). Beside them, the stream's
liquidation events. Both store backends expose the same views with the same columns; this module
only builds a SELECT with a WHERE from a `Selection` and reads it in `fetchmany` batches, so a
year of 1m bars never sits in memory. Times are bar opens in ms UTC; `end` is exclusive.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from cgpreset.errors import ConfigError, UsageError, did_you_mean
from cgpreset.layers import Catalogue, LayerSpec, catalogue

BATCH_ROWS = 5000

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


@dataclass(frozen=True)
class View:
    """One analyst view as the store has it: its columns, the order of its rows, which are text.

    `order`: the series' identity, then time (a series' rows come out contiguous); `why_no_coin`
    and `why_no_closed` say why a view without that column refuses --coin or --closed-only;
    `added_by`: what adds the view to a store that lacks it.
    """

    name: str
    columns: tuple[str, ...]
    order: tuple[str, ...]
    text: frozenset[str]
    why_no_closed: str
    added_by: str
    why_no_coin: str = "it is the same for every coin"
    layer: LayerSpec | None = None  # the layer of a layer's own view (not of a detail view)


def layer_view(ls: LayerSpec) -> View:
    """A layer's view: its series columns, [row key], time, ts, its stored columns, [closed] (pure)."""
    key = (*ls.view_series, *((ls.row_key,) if ls.row_key else ()))
    values = tuple(c.name for c in ls.columns)
    return View(ls.id, (*key, "time", "ts", *values, *(() if ls.snapshot else ("closed",))), (*key, "time"),
                frozenset({*key, "ts", *(c.name for c in ls.columns if c.type == "str")}),
                "every row is a final snapshot", f"a run-preset of a config with the {ls.id} layer adds it", layer=ls)


def detail_view(ls: LayerSpec) -> View | None:
    """The view of a layer's nested rows (the ETF flows per ticker): time, ts, their key, values (pure)."""
    d = ls.detail
    if d is None:
        return None
    values = tuple(c.name for c in d.columns)
    return View(d.view, ("time", "ts", d.key, *values), (d.key, "time"),
                frozenset({"ts", d.key, *(c.name for c in d.columns if c.type == "str")}),
                f"{ls.id}'s closed column covers its rows", f"a run-preset of a config with the {ls.id} layer adds it")


#: The stream's liquidation events (one row per stored event; side is "long" or "short").
EVENTS = View("liquidation_events", ("coin", "exchange", "symbol", "side", "usd", "price", "time", "ts"),
              ("coin", "exchange", "symbol", "time", "side", "usd", "price"),
              frozenset({"coin", "exchange", "symbol", "side", "ts"}), "every event is final",
              "`cgpreset stream --store` adds it and fills it")

_views: tuple[Catalogue, dict[str, View]] | None = None


def views(cat: Catalogue | None = None) -> Mapping[str, View]:
    """Every analyst view of the catalogue (the active one): each layer's, its detail's, the events'.

    Built per catalogue, never at import: a repo's own layers join the catalogue at run time.
    """
    global _views
    cat = catalogue() if cat is None else cat
    if _views is not None and _views[0] is cat:
        return _views[1]
    out: dict[str, View] = {}
    for ls in cat.values():
        out[ls.id] = layer_view(ls)
        detail = detail_view(ls)
        if detail is not None:
            out[detail.name] = detail
    out[EVENTS.name] = EVENTS
    _views = (cat, out)
    return out


def view_names() -> tuple[str, ...]:
    """Every view `export` and `read` take, in the catalogue's order (then the events)."""
    return tuple(views())


@dataclass(frozen=True)
class Selection:
    """Which rows of a view: coins (empty = all), a time window [start, end) in ms, closed bars only."""

    coins: tuple[str, ...] = ()
    start_ms: int | None = None
    end_ms: int | None = None
    closed_only: bool = False


def parse_duration(text: str) -> int:
    """`30d`, `12h`, `90m`, `2w` as milliseconds; UsageError otherwise."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"--since {text!r}: expected a positive duration such as 30d, 12h, 90m or 2w")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_time(text: str, flag: str) -> int:
    """A point in time as ms UTC: ms since the epoch, or ISO-8601 (a date, or a datetime; naive = UTC)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected ISO-8601 (2026-11-01 or 2026-11-01T12:00Z) "
                         "or ms since the epoch") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def make_selection(*, coins: Sequence[str] = (), since: str | None = None, start: str | None = None,
                   end: str | None = None, closed_only: bool = False, now_ms: int) -> Selection:
    """A Selection from the export flags; UsageError for a contradiction (--since with --start/--end)."""
    if since is not None and (start is not None or end is not None):
        raise UsageError("--since cannot be combined with --start/--end")
    start_ms = now_ms - parse_duration(since) if since is not None else None
    if start is not None:
        start_ms = parse_time(start, "--start")
    end_ms = parse_time(end, "--end") if end is not None else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise UsageError(f"--end {end} is not after --start {start}")
    picked = tuple(dict.fromkeys(c.strip().upper() for c in coins))
    if any(not c for c in picked):
        raise UsageError("--coin: empty coin code")
    return Selection(picked, start_ms, end_ms, closed_only)


def check_view(view: str, sel: Selection) -> View:
    """The view; UsageError for an unknown view or a filter it cannot take."""
    known = views()
    if view not in known:
        raise UsageError(f"unknown layer {view!r}{did_you_mean(view, known)}: expected one of "
                         f"{', '.join(known)} (`cgpreset layers` lists the layers)")
    v = known[view]
    if sel.coins and "coin" not in v.columns:
        raise UsageError(f"--coin: {view} has no coin column ({v.why_no_coin})")
    if sel.closed_only and "closed" not in v.columns:
        raise UsageError(f"--closed-only: {view} has no closed column ({v.why_no_closed})")
    return v


def _is_postgres(conn: Any) -> bool:
    return type(conn).__module__.split(".")[0] in ("psycopg", "psycopg2", "pg8000")


def placeholder(conn: Any) -> str:
    """The driver's parameter marker: `?` for sqlite3, `%s` for psycopg (format/pyformat drivers)."""
    return "%s" if _is_postgres(conn) else "?"


def select_sql(view: str, columns: Sequence[str], sel: Selection, mark: str = "?",
               order: Sequence[str] | None = None) -> tuple[str, list[Any]]:
    """SELECT the view's columns for the selection, ordered by series then time (pure).

    `order`: the columns to order by (default: the catalogue view's order, those of `columns`).
    """
    where: list[str] = []
    params: list[Any] = []
    if sel.coins:
        where.append(f"coin IN ({', '.join(mark for _ in sel.coins)})")
        params += list(sel.coins)
    if sel.start_ms is not None:
        where.append(f"time >= {mark}")
        params.append(sel.start_ms)
    if sel.end_ms is not None:
        where.append(f"time < {mark}")
        params.append(sel.end_ms)
    if sel.closed_only:
        where.append("closed")
    if order is None:
        order = [c for c in views()[view].order if c in columns]
    sql = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {view}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY " + ", ".join(order), params


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def exists(conn: Any, name: str) -> bool:
    """The store has a table or view `name` (asked of its catalogue: a failed query would abort a
    PostgreSQL transaction)."""
    cur = conn.cursor()
    try:
        if _is_postgres(conn):
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        else:
            cur.execute("SELECT count(*) > 0 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,))
        row = cur.fetchone()
        return bool(row and row[0])
    finally:
        cur.close()


def _found_columns(conn: Any, view: str) -> tuple[str, ...]:
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT * FROM {view} WHERE 1 = 0")
        return tuple(d[0] for d in cur.description)
    finally:
        cur.close()


def store_columns(conn: Any, view: str) -> tuple[str, ...] | None:
    """Every column the store's view has (the catalogue's first), or None when a cgpreset store has
    no such view yet (a layer no run has stored); ConfigError if the view lacks a column.

    A store without a `series` table is no cgpreset store (or a v2 one): the driver's own error
    ("no such table") says so, as before.
    """
    if not exists(conn, view) and exists(conn, "series"):
        return None
    try:
        found = _found_columns(conn, view)
    except sqlite3.OperationalError as exc:  # an SQLite view whose table is gone: the layer is not stored
        if "no such table" not in str(exc) or not exists(conn, "series"):
            raise
        return None
    want = views()[view].columns
    missing = [c for c in want if c not in found]
    if missing:
        raise ConfigError(f"the store's {view} view lacks column {', '.join(missing)} (an older store?)")
    return want + tuple(c for c in found if c not in want)


def missing_note(view: str) -> str:
    """The one line for a view the store does not have yet: it reads as empty."""
    return f"the store has no {view} view yet, so it has no rows ({views()[view].added_by})"


def _open_cursor(conn: Any) -> Any:
    """A cursor that streams: psycopg's client cursors load the whole result, a named one does not."""
    if type(conn).__module__.split(".")[0] == "psycopg":
        return conn.cursor(name="cgpreset_analyst", withhold=bool(conn.autocommit))
    return conn.cursor()


Batches = Generator[list[tuple[Any, ...]], None, None]


class ViewRows(NamedTuple):
    """A view's columns, its row batches, and the note for a view the store lacks (None if it has it)."""

    columns: tuple[str, ...]
    batches: Batches
    missing: str | None


def read_view(conn: Any, view: str, sel: Selection, *, batch_rows: int = BATCH_ROWS) -> ViewRows:
    """The view's columns and an iterator of row batches (tuples in column order, `closed` as bool).

    A view the store does not have yet reads as empty, with its catalogue columns and a note.
    """
    v = check_view(view, sel)
    columns = store_columns(conn, view)
    if columns is None:
        return ViewRows(v.columns, _no_batches(), missing_note(view))
    sql, params = select_sql(view, columns, sel, placeholder(conn), v.order)
    closed_at = columns.index("closed") if "closed" in columns else None

    def batches() -> Batches:
        cur = _open_cursor(conn)
        try:
            cur.execute(sql, params)
            while True:
                chunk = cur.fetchmany(batch_rows)
                if not chunk:
                    return
                if closed_at is None:
                    yield [tuple(r) for r in chunk]
                else:
                    yield [_with_bool(tuple(r), closed_at) for r in chunk]
        finally:
            cur.close()

    return ViewRows(columns, batches(), None)


def _no_batches() -> Batches:
    yield from ()


def iter_rows(conn: Any, view: str, sel: Selection, *, batch_rows: int = BATCH_ROWS
              ) -> tuple[tuple[str, ...], Batches]:
    """`read_view` without the note: the columns and the row batches."""
    columns, batches, _ = read_view(conn, view, sel, batch_rows=batch_rows)
    return columns, batches


def _with_bool(row: tuple[Any, ...], i: int) -> tuple[Any, ...]:
    """SQLite has no boolean: its 0/1 become False/True, as PostgreSQL's boolean already is."""
    v = row[i]
    return row if v is None or isinstance(v, bool) else (*row[:i], bool(v), *row[i + 1:])
