"""The analyst views of the store, and one streaming query over them (any DB-API connection).

Both store backends (SQLite, PostgreSQL) expose the same views with the same columns; this
module only builds a SELECT with a WHERE from a `Selection` and reads it in `fetchmany` batches,
so a year of 1m bars never sits in memory. Times are bar opens in ms UTC; `end` is exclusive.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cgpreset.errors import ConfigError, UsageError

#: The documented columns of every view, in the store's order (a view may have more: etf_flows).
VIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "funding": ("coin", "exchange", "instrument", "interval", "time", "ts", "open", "high", "low", "close",
                "closed"),
    "open_interest": ("coin", "interval", "time", "ts", "open", "high", "low", "close", "closed"),
    "liquidation": ("coin", "interval", "time", "ts", "long_usd", "short_usd", "closed"),
    "taker_volume": ("coin", "interval", "time", "ts", "buy_usd", "sell_usd", "closed"),
    "liquidation_exchanges": ("coin", "exchange", "time", "ts", "long_usd", "short_usd", "total_usd"),
    "etf_flows": ("time", "ts", "flow_usd"),
    "etf_flows_by_ticker": ("time", "ts", "ticker", "flow_usd"),
}
VIEWS: tuple[str, ...] = tuple(VIEW_COLUMNS)
#: Columns holding text; `time` is an integer (ms), `closed` a boolean, every other column a float.
TEXT_COLUMNS = frozenset({"coin", "exchange", "instrument", "interval", "ts", "ticker"})
#: Rows come out ordered by the series' identity, then time: a series' bars are contiguous.
ORDER_COLUMNS = ("coin", "exchange", "instrument", "interval", "ticker", "time")
BATCH_ROWS = 5000

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


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


def check_view(view: str, sel: Selection) -> tuple[str, ...]:
    """The view's documented columns; UsageError for an unknown view or a filter it cannot take."""
    if view not in VIEW_COLUMNS:
        raise UsageError(f"unknown layer {view!r}: expected one of {', '.join(VIEWS)}")
    columns = VIEW_COLUMNS[view]
    if sel.coins and "coin" not in columns:
        raise UsageError(f"--coin: {view} has no coin column (it is the same for every coin)")
    if sel.closed_only and "closed" not in columns:
        raise UsageError(f"--closed-only: {view} has no closed column (every row is a final snapshot)")
    return columns


def placeholder(conn: Any) -> str:
    """The driver's parameter marker: `?` for sqlite3, `%s` for psycopg (format/pyformat drivers)."""
    return "%s" if type(conn).__module__.split(".")[0] in ("psycopg", "psycopg2", "pg8000") else "?"


def select_sql(view: str, columns: Sequence[str], sel: Selection, mark: str = "?") -> tuple[str, list[Any]]:
    """SELECT the view's columns for the selection, ordered by series then time (pure)."""
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
    order = [c for c in ORDER_COLUMNS if c in columns]
    sql = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {view}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY " + ", ".join(order), params


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_columns(conn: Any, view: str) -> tuple[str, ...]:
    """Every column the store's view has (the documented ones first); ConfigError if it lacks one."""
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT * FROM {view} WHERE 1 = 0")
        found = tuple(d[0] for d in cur.description)
    finally:
        cur.close()
    want = VIEW_COLUMNS[view]
    missing = [c for c in want if c not in found]
    if missing:
        raise ConfigError(f"the store's {view} view lacks column {', '.join(missing)} (an older store?)")
    return want + tuple(c for c in found if c not in want)


def _open_cursor(conn: Any) -> Any:
    """A cursor that streams: psycopg's client cursors load the whole result, a named one does not."""
    if type(conn).__module__.split(".")[0] == "psycopg":
        return conn.cursor(name="cgpreset_analyst", withhold=bool(conn.autocommit))
    return conn.cursor()


def iter_rows(conn: Any, view: str, sel: Selection, *, batch_rows: int = BATCH_ROWS
              ) -> tuple[tuple[str, ...], Generator[list[tuple[Any, ...]], None, None]]:
    """The view's columns and an iterator of row batches (tuples in column order, `closed` as bool)."""
    check_view(view, sel)
    columns = view_columns(conn, view)
    sql, params = select_sql(view, columns, sel, placeholder(conn))
    closed_at = columns.index("closed") if "closed" in columns else None

    def batches() -> Generator[list[tuple[Any, ...]], None, None]:
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

    return columns, batches()


def _with_bool(row: tuple[Any, ...], i: int) -> tuple[Any, ...]:
    """SQLite has no boolean: its 0/1 become False/True, as PostgreSQL's boolean already is."""
    v = row[i]
    return row if v is None or isinstance(v, bool) else (*row[:i], bool(v), *row[i + 1:])
