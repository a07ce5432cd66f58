"""Schema v3 as data, shared by every backend: tables, keys and the analyst views (pure: no I/O).

Each backend renders the same `TABLES` with its own column types (`render_table`) and creates
the same `VIEWS` with its own expression for `ts` (`view_sql`), so the SQLite file and a
PostgreSQL database hold the same rows under the same names. Built from the layer registry:
one table per layer, keyed by (series, time) (+ the exchange of the per-exchange breakdown),
its typed values as floating-point columns, and `closed` (1 once the bar had closed when stored,
0 for the still-forming bar). Times are milliseconds since the epoch (UTC) everywhere, the stream
tables included; `ts` in the views is the same instant as ISO-8601 UTC text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cgpreset.layers import REGISTRY, LayerSpec

SCHEMA_VERSION = 3

ColumnType = Literal["id", "int", "real", "text"]  # id: the series table's own integer key


@dataclass(frozen=True)
class TableDef:
    """One table: columns as (name, type, not null), its primary key, whether it is a data table."""

    name: str
    columns: tuple[tuple[str, ColumnType, bool], ...]
    key: tuple[str, ...]
    data: bool = False  # keyed by (series, time, ...): SQLite stores it WITHOUT ROWID

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.columns)


#: retired_at: when a run first found that no config produces the series any more (its rows stay,
#: out of the analyst views, until `cgpreset cursors prune` deletes them); NULL while current.
SERIES = TableDef("series", (
    ("id", "id", True), ("key", "text", True), ("layer", "text", True), ("coin", "text", True),
    ("exchange", "text", False), ("instrument", "text", False), ("interval", "text", True),
    ("params", "text", True), ("retired_at", "int", False),
), key=("id",))

#: last_closed: the open time of the series' last closed bar (NULL for a snapshot); earliest: the
#: oldest bar stored or asked for (a window the API had nothing that old for counts), latest: the
#: newest bar stored, so that a deeper history_days backfills what is older, once.
CURSORS = TableDef("cursors", (
    ("series", "int", True), ("last_closed", "int", False), ("earliest", "int", False),
    ("latest", "int", False), ("updated_at", "int", True),
), key=("series",))

#: The spans of closed bars each time series holds, merged as pages arrive (store/coverage.py).
COVERAGE = TableDef("coverage", (
    ("series", "int", True), ("start_time", "int", True), ("end_time", "int", True),
), key=("series", "start_time"))

#: Closed bars a window asked for and its answer lacked: attempts counts the runs that found them
#: missing (at KNOWN_HOLE_RUNS a known hole, no longer asked for); reason says how it was missing.
HOLES = TableDef("holes", (
    ("series", "int", True), ("start_time", "int", True), ("end_time", "int", True), ("attempts", "int", True),
    ("last_run", "int", False), ("reason", "text", True), ("first_seen", "int", True), ("last_seen", "int", True),
), key=("series", "start_time"))

#: One row per run-preset run; pid and heartbeat_at let the next run tell a killed run (its row
#: still `running`) from one still going; plan, plan_at and max_limit let it reuse what the last
#: run learnt of the key instead of asking again; source names where the data came from ("emulator"
#: or the API's host name, see run/source.py): a store never mixes sources.
RUNS = TableDef("runs", (
    ("id", "id", True), ("started_at", "int", True), ("ended_at", "int", False), ("exit_code", "int", False),
    ("requests", "int", True), ("retries", "int", True), ("rate_limited", "int", True),
    ("rate_wait_seconds", "real", True), ("outcomes", "text", False), ("status", "text", False),
    ("pid", "int", False), ("heartbeat_at", "int", False), ("plan", "text", False), ("plan_at", "int", False),
    ("max_limit", "int", False), ("source", "text", False),
), key=("id",))

#: Columns added to schema v3 after stores of it were written: a store without them gets them
#: (ALTER TABLE ... ADD COLUMN, nullable) when opened for writing; reading one does without them.
LATE_COLUMNS: dict[str, tuple[str, ...]] = {"runs": ("source",), "stream_runs": ("pid", "source"),
                                            "series": ("retired_at",)}
#: Tables added to schema v3 after stores of it were written: a writing open creates them (and
#: fills `coverage` from the rows stored, store/coverage.py islands_sql); a read does without them.
LATE_TABLES: tuple[str, ...] = ("coverage", "holes")

#: An answer's page kept as it came: on field drift (unknown fields) or with --keep-raw.
RAW_PAGES = TableDef("raw_pages", (
    ("series", "int", True), ("fetched_at", "int", True), ("reason", "text", True), ("body", "text", True),
), key=("series", "fetched_at", "reason"))

STREAM_EVENTS = TableDef("stream_events", (
    ("kind", "text", True), ("exchange", "text", True), ("symbol", "text", True), ("time_ms", "int", True),
    ("side_raw", "text", True), ("price", "real", True), ("volume_usd", "real", True),
    ("base_asset", "text", True), ("side", "text", True), ("channel", "text", True), ("run_id", "int", False),
    ("received_at", "int", True),
), key=("kind", "exchange", "symbol", "time_ms", "side_raw", "price", "volume_usd"))

STREAM_RUNS = TableDef("stream_runs", (
    ("id", "id", True), ("started_at", "int", True), ("updated_at", "int", True), ("ended_at", "int", False),
    ("status", "text", True), ("stop_reason", "text", False), ("url", "text", True), ("channels", "text", True),
    ("coins", "text", False), ("events", "int", True), ("events_per_minute", "real", True),
    ("reconnects", "int", True), ("pings_sent", "int", True), ("pongs_received", "int", True),
    ("last_event_at", "int", False), ("summary", "text", True), ("pid", "int", False), ("source", "text", False),
), key=("id",))

#: Column defaults (the rest have none).
DEFAULTS = {("runs", "requests"): "0", ("runs", "retries"): "0", ("runs", "rate_limited"): "0",
            ("runs", "rate_wait_seconds"): "0", ("stream_runs", "events"): "0",
            ("stream_runs", "events_per_minute"): "0", ("stream_runs", "reconnects"): "0",
            ("stream_runs", "pings_sent"): "0", ("stream_runs", "pongs_received"): "0",
            ("stream_runs", "summary"): "'{}'"}


def late_columns(found: dict[str, tuple[str, ...]]) -> list[tuple[str, str, ColumnType]]:
    """(table, column, type) of every LATE_COLUMNS entry that the `found` tables lack."""
    kinds = {(t.name, c): k for t in (STREAM_RUNS, RUNS, SERIES) for c, k, _ in t.columns}
    return [(t, c, kinds[t, c]) for t, cols in LATE_COLUMNS.items() for c in cols if c not in found.get(t, ())]


def windowed(ls: LayerSpec) -> bool:
    """A layer fetched in time windows, whose coverage the store keeps (not a snapshot, not a
    whole-history answer such as the ETF flows)."""
    return not ls.snapshot and not ls.whole_history


def layer_table(ls: LayerSpec) -> TableDef:
    """A layer's table: series, time, [its row key], its typed columns, closed (not on a snapshot)."""
    key = ("series", "time", *((ls.row_key,) if ls.row_key else ()))
    cols: list[tuple[str, ColumnType, bool]] = [("series", "int", True), ("time", "int", True)]
    cols += [(ls.row_key, "text", True)] if ls.row_key else []
    cols += [(c.name, "real", False) for c in ls.columns]
    cols += [] if ls.snapshot else [("closed", "int", True)]
    return TableDef(ls.table, tuple(cols), key, data=True)


def detail_table(ls: LayerSpec) -> TableDef | None:
    """The table of a layer's nested rows (the ETF flows per ticker), if it has them."""
    d = ls.detail
    if d is None:
        return None
    cols: tuple[tuple[str, ColumnType, bool], ...] = (
        ("series", "int", True), ("time", "int", True), (d.key, "text", True),
        *((c.name, "real", False) for c in d.columns))
    return TableDef(d.table, cols, ("series", "time", d.key), data=True)


LAYER_TABLES: dict[str, TableDef] = {ls.id: layer_table(ls) for ls in REGISTRY.values()}
DETAIL_TABLES: dict[str, TableDef] = {ls.id: t for ls in REGISTRY.values() if (t := detail_table(ls))}

RUN_TABLES: tuple[TableDef, ...] = (SERIES, CURSORS, COVERAGE, HOLES, RUNS, RAW_PAGES, *LAYER_TABLES.values(),
                                    *DETAIL_TABLES.values())
STREAM_TABLES: tuple[TableDef, ...] = (STREAM_EVENTS, STREAM_RUNS)
TABLES: tuple[TableDef, ...] = (*RUN_TABLES, *STREAM_TABLES)

#: Extra indexes: (name, table, columns, unique).
INDEXES = (
    ("series_key", "series", ("key",), True),
    ("stream_events_coin_time", "stream_events", ("base_asset", "time_ms"), False),
)


def render_table(t: TableDef, types: dict[ColumnType, str], *, without_rowid: bool = False) -> str:
    """`CREATE TABLE IF NOT EXISTS` for one table, with the backend's names of the column types."""
    cols = []
    for name, kind, notnull in t.columns:
        line = f'"{name}" {types[kind]}' + (" NOT NULL" if notnull and kind != "id" else "")
        default = DEFAULTS.get((t.name, name))
        cols.append(line + (f" DEFAULT {default}" if default is not None else ""))
    if t.key != ("id",):
        cols.append(f"PRIMARY KEY ({', '.join(t.key)})")
    tail = " WITHOUT ROWID" if without_rowid and t.data else ""
    return f"CREATE TABLE IF NOT EXISTS {t.name} (\n    " + ",\n    ".join(cols) + f"\n){tail}"


# -- the analyst views ------------------------------------------------------------------------

#: A backend's expression for `ts`: ISO-8601 UTC text of the ms column it is given.
TS_SQLITE = "strftime('%Y-%m-%dT%H:%M:%SZ', {col} / 1000, 'unixepoch')"
TS_POSTGRES = "to_char(to_timestamp({col} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


#: The views show the series the current configs produce: retired ones stay in the tables only.
CURRENT = "s.retired_at IS NULL"


def _layer_view(ls: LayerSpec, ts: Callable[[str], str]) -> str:
    cols = [f"s.{c}" for c in ls.view_series]
    cols += [f"d.{ls.row_key}"] if ls.row_key else []
    cols += ["d.time", f"{ts('d.time')} AS ts", *(f"d.{c.name}" for c in ls.columns)]
    cols += [] if ls.snapshot else ["d.closed"]
    return f"SELECT {', '.join(cols)} FROM {ls.table} d JOIN series s ON s.id = d.series WHERE {CURRENT}"


def _detail_view(ls: LayerSpec, ts: Callable[[str], str]) -> str:
    d = ls.detail
    assert d is not None
    cols = ["d.time", f"{ts('d.time')} AS ts", f"d.{d.key}", *(f"d.{c.name}" for c in d.columns)]
    return f"SELECT {', '.join(cols)} FROM {d.table} d JOIN series s ON s.id = d.series WHERE {CURRENT}"


def view_sql(ts_template: str) -> list[tuple[str, str]]:
    """Every analyst view as (name, SELECT), `ts` rendered with the backend's template.

    One view per layer, named after it (funding, open_interest, liquidation, taker_volume,
    liquidation_exchanges, etf_flows), plus etf_flows_by_ticker: the series' coin, exchange,
    instrument and interval where the layer has them, time (bar open, ms UTC), ts, the typed
    values, and closed (1 = the bar had closed when stored).
    """
    def ts(col: str) -> str:
        return ts_template.format(col=col)

    out: list[tuple[str, str]] = []
    for ls in REGISTRY.values():
        out.append((ls.id, _layer_view(ls, ts)))
        if ls.detail is not None:
            out.append((ls.detail.view, _detail_view(ls, ts)))
    return out


VIEW_NAMES: tuple[str, ...] = tuple(name for name, _ in view_sql(TS_SQLITE))
