"""A layer as the rest of cgpreset reads it: `LayerSpec`, built from one YAML definition (pure).

Everything that differs between layers is in the definition: the endpoint, the kind (how a
config names the series: an exchange pair, a coin, a coin over an exchange list, a per-exchange
snapshot, a macro series), how it pages (time windows, a whole history, a snapshot), the plan
gates, the time field and its unit, each row field with its type and unit and the store column
that keeps it, the checks and the chart. What follows from the kind (request parameters, the
series key, the settings a config gives, which view columns name the series) is derived here,
so code branches on a layer's kind, never on its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cgpreset.plans import Plan

Kind = Literal["pair", "coin", "coin_exchanges", "exchange_snapshot", "macro"]
History = Literal["windows", "whole", "snapshot"]
FieldType = Literal["number", "int", "str", "bool", "list"]
CheckId = Literal["gaps", "freshness", "ohlc", "exchange_sum", "long_short_total", "etf_sum", "all_zero"]
ChartKind = Literal["candles", "line_close", "lines", "bars", "by_exchange", "flows"]
#: Where a layer's series interval comes from: the config (`interval`, or the layer's own), the
#: bucket of its `range` (a per-exchange snapshot), or a fixed bar (a whole-history answer).
IntervalFrom = Literal["config", "range", "1d"]
HistoryFrom = Literal["config", "layer", "none"]

KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
CHECKS: tuple[str, ...] = CheckId.__args__  # type: ignore[attr-defined]
CHARTS: tuple[str, ...] = ChartKind.__args__  # type: ignore[attr-defined]
#: Units a field may declare (what the store's README and the report's axis say).
UNITS = ("USD", "percent", "ratio", "coin", "quote", "count", "index")

#: Request parameters that come from a config's settings, per kind, in the order they are sent.
KIND_PARAMS: dict[str, tuple[str, ...]] = {
    "pair": ("exchange", "symbol"),
    "coin": ("symbol",),
    "coin_exchanges": ("exchange_list", "symbol"),
    "exchange_snapshot": ("range", "symbol"),
    "macro": (),
}
#: The series key's instrument part, per kind (formatted from the config's settings).
KIND_KEY: dict[str, str] = {
    "pair": "{exchange}:{symbol}",
    "coin": "all",
    "coin_exchanges": "{exchange_list}",
    "exchange_snapshot": "range={range}",
    "macro": "all",
}
#: Series columns of the layer's analyst view (from the `series` table), before `time`.
KIND_VIEW: dict[str, tuple[str, ...]] = {
    "pair": ("coin", "exchange", "instrument", "interval"),
    "coin": ("coin", "interval"),
    "coin_exchanges": ("coin", "interval"),
    "exchange_snapshot": ("coin",),
    "macro": ("interval",),
}


@dataclass(frozen=True)
class FieldSpec:
    """One row field: its API name (and other spellings seen), type, unit, and store column."""

    name: str
    type: FieldType
    unit: str | None = None
    column: str | None = None  # the typed store column holding it (None: not stored as a column)
    aliases: tuple[str, ...] = ()
    required: bool = True
    signed: bool = False  # may be negative (a net flow, a funding rate); USD amounts are otherwise >= 0
    all_zero: bool = True  # looked at by the all-zero check
    label: str | None = None  # the chart's name for it

    @property
    def stored(self) -> bool:
        return self.column is not None


@dataclass(frozen=True)
class Column:
    """One typed store column: its name, the canonical API field it holds, its unit."""

    name: str
    field: str
    unit: str
    type: FieldType = "number"
    signed: bool = False
    all_zero: bool = True
    label: str | None = None


@dataclass(frozen=True)
class Detail:
    """Rows nested in a layer's row (the ETF flows' per-ticker list), stored in a table of their own."""

    field: str  # the row's list field
    key: str  # the store column that keys a nested row (beside series and time)
    key_field: str  # the nested row's field that fills `key`
    table: str
    view: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Setting:
    """A setting a config's layer block takes beyond its kind's (e.g. the ETF flows' `asset`)."""

    name: str
    values: tuple[str, ...] = ()
    default: str | None = None
    description: str = ""


@dataclass(frozen=True)
class LayerSpec:
    """Everything about one layer that is not the same for all layers."""

    id: str
    title: str
    description: str
    path: str
    endpoint_id: str
    kind: Kind
    history: History
    min_plan: Plan
    core: bool
    fields: tuple[FieldSpec, ...]
    checks: tuple[CheckId, ...]
    chart: ChartKind
    time_field: str | None = None
    time_unit: Literal["ms", "s"] = "ms"
    #: The plan's interval floor applies; a mapping names the floor per plan where it differs.
    interval_floor: bool = True
    floor_by_plan: Mapping[str, str] = field(default_factory=dict)
    detail: Detail | None = None
    range_buckets: Mapping[str, str] = field(default_factory=dict)  # snapshot `range` -> its bar
    bar: str | None = None  # the fixed bar of a whole-history layer
    settings: tuple[Setting, ...] = ()
    fixed_params: Mapping[str, str] = field(default_factory=dict)  # sent with every request
    optional_params: tuple[str, ...] = ()  # documented, not sent
    required_params: tuple[str, ...] = ()  # required by the API beyond the kind's (the run sends `limit` always)
    cache_seconds: int | None = None
    docs: str = ""
    notes: tuple[str, ...] = ()
    order: int = 1000
    source: str = "cgpreset"  # where the definition came from: "cgpreset" (shipped) or its file

    def __hash__(self) -> int:  # the mappings inside are never changed: a spec is its name and source
        return hash((self.id, self.source, self.path))

    # -- derived from the kind and the history -------------------------------------------------

    @property
    def name(self) -> str:
        return self.id

    @property
    def shipped(self) -> bool:
        return self.source == "cgpreset"

    @property
    def params(self) -> tuple[str, ...]:
        """Config settings sent as request parameters, in order (lists are joined with ",")."""
        return KIND_PARAMS[self.kind]

    @property
    def key(self) -> str:
        """The series' instrument label, formatted from the config's layer settings."""
        if self.kind == "macro" and any(s.name == "asset" for s in self.settings):
            return "{asset}"
        return KIND_KEY[self.kind]

    @property
    def snapshot(self) -> bool:
        """A snapshot of per-exchange rows (keyed by exchange, stored at the bar the run falls in)."""
        return self.history == "snapshot"

    @property
    def whole_history(self) -> bool:
        """Every call answers the whole history: the depth asked for is applied to the answer."""
        return self.history == "whole"

    @property
    def windowed(self) -> bool:
        """Fetched in start_time/end_time windows: the store keeps its coverage."""
        return self.history == "windows"

    @property
    def macro(self) -> bool:
        """Not per coin: the same request for every config (merged into one series, coin "*")."""
        return self.kind == "macro"

    @property
    def symbol_is_coin(self) -> bool:
        """The `symbol` of a coin-level layer must be the config's coin code."""
        return self.kind in ("coin", "coin_exchanges", "exchange_snapshot")

    @property
    def floor(self) -> bool:
        """The plan's interval floor applies to this layer's interval."""
        return self.windowed and self.interval_floor

    @property
    def interval_from(self) -> IntervalFrom:
        return {"windows": "config", "snapshot": "range"}.get(self.history, "1d")  # type: ignore[return-value]

    @property
    def history_from(self) -> HistoryFrom:
        return {"windows": "config", "whole": "layer"}.get(self.history, "none")  # type: ignore[return-value]

    @property
    def keep_field(self) -> str | None:
        """The config setting naming which rows of a snapshot to store (None: every row)."""
        return "exchanges" if self.snapshot else None

    @property
    def row_key(self) -> str | None:
        """A key column of the rows beside (series, time): the exchange of a per-exchange snapshot."""
        return "exchange" if self.snapshot else None

    @property
    def view_series(self) -> tuple[str, ...]:
        if self.kind == "macro" and not self.windowed:
            return ()
        return KIND_VIEW[self.kind]

    @property
    def table(self) -> str:
        return f"data_{self.id}"

    @property
    def columns(self) -> tuple[Column, ...]:
        """The typed store columns, in order."""
        return tuple(Column(f.column, f.name, f.unit or "", f.type, f.signed, f.all_zero, f.label)
                     for f in self.fields if f.column is not None)

    @property
    def value_fields(self) -> tuple[str, ...]:
        """The API fields the all-zero check looks at."""
        return tuple(c.field for c in self.columns if c.all_zero)

    @property
    def typed_fields(self) -> dict[str, str]:
        """Store column -> canonical API field."""
        return {c.name: c.field for c in self.columns}

    def floor_for(self, plan: Plan) -> str:
        """The finest interval this layer may request on `plan`."""
        return self.floor_by_plan.get(plan.value, plan.interval_floor)

    def allows(self, plan: Plan, interval: str) -> bool:
        """The plan serves this layer at this interval (its minimum plan, its interval floor)."""
        from cgpreset.plans import INTERVAL_MS

        if not plan.at_least(self.min_plan):
            return False
        return not self.floor or INTERVAL_MS[interval] >= INTERVAL_MS[self.floor_for(plan)]
