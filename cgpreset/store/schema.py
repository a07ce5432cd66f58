"""Schema v3 as data, shared by every backend: the base tables, one table per layer, the views (pure: no I/O).

Two kinds of tables. The base tables (`series`, `cursors`, `coverage`, `holes`, `runs`,
`raw_pages`, `stream_events`, `stream_runs`) are the schema's own, the same in every store.
The layer tables are derived from the layer catalogue: one per layer (`data_<layer>`, keyed by
(series, time) and the row key of a per-exchange snapshot, its typed values, and `closed`: 1
once the bar had closed when stored, 0 for the still-forming bar), plus a detail table for a
layer with nested rows. A store gains the tables and views of a layer the first time a writing
open meets it (store/growth.py), so a layer added later is never a version bump.

Each backend renders these with its dialect (store/dialect.py): the SQLite file and a
PostgreSQL database hold the same rows under the same names. Times are milliseconds since the
epoch (UTC) everywhere, the stream tables included; `ts` in the views is the same instant as
ISO-8601 UTC text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from cgpreset.layers import LayerSpec

#: The schema's version; a layer added, or a column a layer gained, never changes it.
SCHEMA_VERSION = 3

ColumnType = Literal["id", "int", "real", "text"]  # id: the table's own integer key

#: The stored type of a layer field's type (a list is never a column).
FIELD_TYPES: dict[str, ColumnType] = {"number": "real", "int": "int", "str": "text", "bool": "int"}


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

RUN_BASE: tuple[TableDef, ...] = (SERIES, CURSORS, COVERAGE, HOLES, RUNS, RAW_PAGES)
STREAM_TABLES: tuple[TableDef, ...] = (STREAM_EVENTS, STREAM_RUNS)
#: The schema's own tables, in every store whatever its layers.
BASE_TABLES: tuple[TableDef, ...] = (*RUN_BASE, *STREAM_TABLES)

#: Columns added to the base tables after stores of v3 were written: a store without them gets
#: them (ALTER TABLE ... ADD COLUMN, nullable) when opened for writing; reading one does without.
LATE_COLUMNS: dict[str, tuple[str, ...]] = {"runs": ("source",), "stream_runs": ("pid", "source"),
                                            "series": ("retired_at",)}
#: Base tables added after stores of v3 were written: a writing open creates them (and fills
#: `coverage` from the rows stored, store/coverage.py islands_sql); a read does without them.
LATE_TABLES: tuple[str, ...] = ("coverage", "holes")

#: Column defaults (the rest have none).
DEFAULTS = {("runs", "requests"): "0", ("runs", "retries"): "0", ("runs", "rate_limited"): "0",
            ("runs", "rate_wait_seconds"): "0", ("stream_runs", "events"): "0",
            ("stream_runs", "events_per_minute"): "0", ("stream_runs", "reconnects"): "0",
            ("stream_runs", "pings_sent"): "0", ("stream_runs", "pongs_received"): "0",
            ("stream_runs", "summary"): "'{}'"}

#: Extra indexes: (name, table, columns, unique). stream_events_coin_time also serves retention
#: (store/stream_sql.py deletes old events coin by coin along it).
INDEXES = (
    ("series_key", "series", ("key",), True),
    ("stream_events_coin_time", "stream_events", ("base_asset", "time_ms"), False),
)


def table_name(layer: str) -> str:
    """The table of a layer's rows, also for a layer the active catalogue does not hold (a
    user's layer not loaded by this command): `data_<layer>`, as LayerSpec.table says."""
    return f"data_{layer}"


def late_columns(found: Mapping[str, Sequence[str]]) -> list[tuple[str, str, ColumnType]]:
    """(table, column, type) of every LATE_COLUMNS entry that the `found` tables lack."""
    kinds = {(t.name, c): k for t in BASE_TABLES for c, k, _ in t.columns}
    return [(t, c, kinds[t, c]) for t, cols in LATE_COLUMNS.items() for c in cols
            if t in found and c not in found[t]]


@cache
def layer_table(ls: LayerSpec) -> TableDef:
    """A layer's table: series, time, [its row key], its typed columns, closed (not on a snapshot)."""
    key = ("series", "time", *((ls.row_key,) if ls.row_key else ()))
    cols: list[tuple[str, ColumnType, bool]] = [("series", "int", True), ("time", "int", True)]
    cols += [(ls.row_key, "text", True)] if ls.row_key else []
    cols += [(c.name, FIELD_TYPES.get(c.type, "real"), False) for c in ls.columns]
    cols += [] if ls.snapshot else [("closed", "int", True)]
    return TableDef(ls.table, tuple(cols), key, data=True)


@cache
def detail_table(ls: LayerSpec) -> TableDef | None:
    """The table of a layer's nested rows (the ETF flows per ticker), if it has them."""
    d = ls.detail
    if d is None:
        return None
    cols: tuple[tuple[str, ColumnType, bool], ...] = (
        ("series", "int", True), ("time", "int", True), (d.key, "text", True),
        *((c.name, FIELD_TYPES.get(c.type, "real"), False) for c in d.columns))
    return TableDef(d.table, cols, ("series", "time", d.key), data=True)


def layer_tables(ls: LayerSpec) -> tuple[TableDef, ...]:
    """The tables a layer's rows go to: its own, and its detail table if it has one."""
    detail = detail_table(ls)
    return (layer_table(ls),) if detail is None else (layer_table(ls), detail)


def key_columns(t: TableDef) -> tuple[str, ...]:
    """What makes a layer table one: its key, and `closed` where it has one. A table found
    without them is not cgpreset's; its value columns may be fewer (added on a writing open)."""
    return (*t.key, *(("closed",) if "closed" in t.column_names else ()))


# -- the analyst views --------------------------------------------------------------------------

@dataclass(frozen=True)
class ViewDef:
    """One analyst view: its output columns as (expression, name) (`ts` marks the ISO text of an
    ms column: each dialect renders it), and the FROM ... WHERE ... it reads."""

    name: str
    columns: tuple[tuple[str, str], ...]
    source: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(n for _, n in self.columns)


#: The expression marking "ISO-8601 UTC text of this ms column" in a ViewDef.
TS = "ts:"
#: The views show the series the current configs produce: retired ones stay in the tables only.
CURRENT = "s.retired_at IS NULL"


def _values(t: TableDef, stored: Sequence[str] | None, skip: tuple[str, ...]) -> list[str]:
    """A table's columns after its key, in the table's order: as stored (a column a newer
    definition added comes last, after `closed`: the view grows at its end, so PostgreSQL replaces
    it in place and its grants stay), or as its definition has them for a table not created yet."""
    names = t.column_names if stored is None else tuple(stored)
    return [c for c in names if c not in skip]


def layer_view(ls: LayerSpec, stored: Sequence[str] | None = None) -> ViewDef:
    """A layer's view, named after it: the series' coin, exchange, instrument and interval where
    its kind has them, [the row key], time (bar open, ms UTC), ts, the values, closed.

    `stored`: the columns its table holds (None: as the definition makes it): the view shows
    what the table holds, in its order, so every process makes the same view of one table."""
    t = layer_table(ls)
    skip = ("series", "time", *((ls.row_key,) if ls.row_key else ()))
    cols = [(f"s.{c}", c) for c in ls.view_series]
    cols += [(f"d.{ls.row_key}", ls.row_key)] if ls.row_key else []
    cols += [("d.time", "time"), (TS + "d.time", "ts"), *((f"d.{c}", c) for c in _values(t, stored, skip))]
    return ViewDef(ls.id, tuple(cols), f"{t.name} d JOIN series s ON s.id = d.series WHERE {CURRENT}")


def detail_view(ls: LayerSpec, stored: Sequence[str] | None = None) -> ViewDef | None:
    """The view of a layer's nested rows (etf_flows_by_ticker): time, ts, the key, the values."""
    t, d = detail_table(ls), ls.detail
    if t is None or d is None:
        return None
    cols = [("d.time", "time"), (TS + "d.time", "ts"), (f"d.{d.key}", d.key)]
    cols += [(f"d.{c}", c) for c in _values(t, stored, ("series", "time", d.key))]
    return ViewDef(d.view, tuple(cols), f"{t.name} d JOIN series s ON s.id = d.series WHERE {CURRENT}")


#: The stream's liquidation events for the analyst: one row per stored liquidation event.
LIQUIDATION_EVENTS = ViewDef("liquidation_events", (
    ("base_asset", "coin"), ("exchange", "exchange"), ("symbol", "symbol"), ("side", "side"),
    ("volume_usd", "usd"), ("price", "price"), ("time_ms", "time"), (TS + "time_ms", "ts"),
), "stream_events WHERE kind = 'liquidation'")

#: The views of the schema's own tables (beside each layer's).
BASE_VIEWS: tuple[ViewDef, ...] = (LIQUIDATION_EVENTS,)


def layer_views(ls: LayerSpec, found: Mapping[str, Sequence[str]] | None = None) -> tuple[ViewDef, ...]:
    """A layer's views (its own, and its detail rows'), over its tables as `found` holds them."""
    found = found or {}
    view = layer_view(ls, found.get(ls.table))
    detail = detail_view(ls, found.get(ls.detail.table) if ls.detail else None)
    return (view,) if detail is None else (view, detail)


def views(catalogue: Mapping[str, LayerSpec], found: Mapping[str, Sequence[str]] | None = None
          ) -> tuple[ViewDef, ...]:
    """Every analyst view of a store with these layers: the base ones, then each layer's."""
    return (*BASE_VIEWS, *(v for ls in catalogue.values() for v in layer_views(ls, found)))
