"""A layer definition file (YAML) read into a LayerSpec; every problem names the file and field.

The file format is `cgpreset layers show funding`'s output; its fields are documented in the
README ("Layers as data"). Checked here, so a definition that loads is one the rest can run:
names that make valid table and view names, a kind and a history that fit together, fields with
known types and units, store columns that do not collide, checks whose fields exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cgpreset.errors import ConfigError
from cgpreset.layers.spec import (
    CHECKS,
    UNITS,
    ChartKind,
    CheckId,
    Column,
    Detail,
    FieldSpec,
    FieldType,
    History,
    Kind,
    LayerSpec,
    Setting,
)
from cgpreset.plans import INTERVALS, Plan

NAME = r"^[a-z][a-z0-9_]{0,39}$"
#: Store names a layer may not take: the store's own tables and views (a layer `runs` would collide).
RESERVED = frozenset({"series", "cursors", "coverage", "holes", "runs", "raw_pages", "stream_events", "stream_runs",
                      "cgpreset_meta", "liquidation_events", "layers"})
#: Column names a layer's values may not take: the table's own columns.
RESERVED_COLUMNS = frozenset({"series", "time", "closed", "exchange", "ts", "coin", "interval", "instrument"})
#: Fields each check reads (a definition that lists the check must have them).
CHECK_FIELDS: dict[str, tuple[str, ...]] = {
    "ohlc": ("open", "high", "low", "close"),
    "exchange_sum": ("liquidation_usd",),
    "long_short_total": ("liquidation_usd", "long_liquidation_usd", "short_liquidation_usd"),
    "etf_sum": ("flow_usd",),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldFile(_Strict):
    name: str = Field(min_length=1, description="the field's name in the API's rows")
    type: FieldType
    unit: Literal["USD", "percent", "ratio", "coin", "quote", "count", "index"] | None = None
    column: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$",
                               description="the store column (default: the name, for numbers)")
    store: bool = Field(default=True, description="false: decoded and checked, not stored (a value that "
                                                  "depends on the window asked, such as a running total)")
    aliases: list[str] = Field(default_factory=list, description="other spellings the API sends")
    required: bool = True
    signed: bool = False
    all_zero: bool = True
    label: str | None = None


class EndpointFile(_Strict):
    path: str = Field(pattern=r"^/api/[A-Za-z0-9/_\-]+$")
    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9\-]*$")
    docs: str = ""
    notes: str = ""
    params: dict[str, str] = Field(default_factory=dict, description="sent with every request")
    required: list[str] = Field(default_factory=list, description="parameters the API requires beyond the kind's "
                                                                  "(e.g. limit); the run sends them")
    optional: list[str] = Field(default_factory=list, description="documented parameters not sent")
    cache_seconds: int | None = Field(default=None, ge=1)


class TimeFile(_Strict):
    field: str = Field(min_length=1)
    unit: Literal["ms", "s"] = "ms"


class SettingFile(_Strict):
    values: list[str] = Field(min_length=1)
    default: str | None = None
    description: str = ""


class DetailFile(_Strict):
    field: str
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    key_field: str
    table: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    view: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    fields: list[FieldFile] = Field(min_length=1)


class DefinitionFile(_Strict):
    """One layer definition, as its file spells it."""

    name: str = Field(pattern=NAME, description="the layer's name: config key, store view, table data_<name>")
    title: str = Field(min_length=1)
    description: str = ""
    endpoint: EndpointFile
    kind: Kind
    history: History
    bar: str | None = None
    min_plan: Plan = Plan.HOBBYIST
    interval_floor: bool | dict[Plan, str] = True
    core: bool = False
    order: int = Field(default=1000, ge=0)
    range: dict[str, str] | None = None
    settings: dict[str, SettingFile] = Field(default_factory=dict)
    time: TimeFile | None = None
    fields: list[FieldFile] = Field(min_length=1)
    detail: DetailFile | None = None
    checks: list[CheckId] = Field(default_factory=list)
    chart: ChartKind = "lines"

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED:
            raise ValueError(f"{value} is a name of the store's own (choose another)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> DefinitionFile:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(d: DefinitionFile) -> list[str]:
    out: list[str] = []
    if (d.kind == "exchange_snapshot") != (d.history == "snapshot"):
        out.append("kind exchange_snapshot goes with history snapshot, and only it")
    if d.history == "whole" and d.kind != "macro":
        out.append("history whole (every call answers the whole history) is for kind macro")
    if d.history == "whole" and d.bar not in INTERVALS:
        out.append(f"bar: a whole-history layer names its bar ({', '.join(INTERVALS)})")
    if d.history == "snapshot" and not d.range:
        out.append("range: a snapshot names its range values and the bar each is stored at, e.g. {1h: 1h, 24h: 1d}")
    for value, bar in (d.range or {}).items():
        if bar not in INTERVALS:
            out.append(f"range.{value}: {bar} is not an interval ({', '.join(INTERVALS)})")
    if d.history != "snapshot" and d.time is None:
        out.append("time: a time series names its time field and unit, e.g. {field: time, unit: ms}")
    if isinstance(d.interval_floor, dict):
        for plan, interval in d.interval_floor.items():
            if interval not in INTERVALS:
                out.append(f"interval_floor.{plan.value}: {interval} is not an interval")
    names = [f.name for f in d.fields]
    if len(set(names)) != len(names):
        out.append("fields: a field is named twice")
    columns = [c for c in (_column(f) for f in d.fields) if c]
    if not columns:
        out.append("fields: no field is stored (a number, or one with `column:`)")
    if len(set(columns)) != len(columns):
        out.append("fields: two fields share a store column")
    bad = sorted(set(columns) & RESERVED_COLUMNS)
    if bad:
        out.append(f"fields: {', '.join(bad)} is a column of the table's own (give `column:` another name)")
    if d.time is not None and d.time.field in names:
        out.append(f"fields: {d.time.field} is the time field (declared under `time:`)")
    for check in d.checks:
        missing = [f for f in CHECK_FIELDS.get(check, ()) if f not in names]
        if missing:
            out.append(f"checks: {check} needs the field(s) {', '.join(missing)}")
    if "etf_sum" in d.checks and d.detail is None:
        out.append("checks: etf_sum needs a `detail` (the per-ticker rows)")
    if d.history == "snapshot" and "exchange" not in names:
        out.append("fields: a per-exchange snapshot has an `exchange` field (its rows' key)")
    if d.detail is not None and d.detail.field not in names:
        out.append(f"detail.field: {d.detail.field} is not one of the fields")
    for name, s in d.settings.items():
        if name in ("exchange", "symbol", "exchange_list", "range", "exchanges", "interval", "history_days"):
            out.append(f"settings.{name}: a setting of every {d.kind} layer already")
        if s.default is not None and s.default not in s.values:
            out.append(f"settings.{name}.default: {s.default} is not one of its values")
    if d.chart == "candles" and "ohlc" not in d.checks:
        out.append("chart: candles needs open, high, low and close (list the ohlc check)")
    if d.chart == "by_exchange" and d.history != "snapshot":
        out.append("chart: by_exchange is for a per-exchange snapshot")
    return out


def _column(f: FieldFile) -> str | None:
    """The store column of a field: given, else its name for a number (lists and text stay out)."""
    if not f.store:
        return None
    if f.column is not None:
        return f.column
    if f.type in ("number", "int") and re.fullmatch(r"[a-z][a-z0-9_]{0,39}", f.name) and f.name != "exchange":
        return f.name
    return None


def _field(f: FieldFile) -> FieldSpec:
    return FieldSpec(f.name, f.type, f.unit, _column(f), tuple(f.aliases), f.required, f.signed, f.all_zero, f.label)


def build(d: DefinitionFile, *, source: str = "cgpreset") -> LayerSpec:
    """The LayerSpec of a checked definition."""
    e = d.endpoint
    detail = None
    if d.detail is not None:
        dd = d.detail
        cols = tuple(Column(f.column or f.name, f.name, f.unit or "", f.type, f.signed, f.all_zero, f.label)
                     for f in dd.fields)
        detail = Detail(dd.field, dd.key, dd.key_field, dd.table, dd.view, cols)
    floor = d.interval_floor if isinstance(d.interval_floor, bool) else True
    by_plan = {} if isinstance(d.interval_floor, bool) else {p.value: i for p, i in d.interval_floor.items()}
    return LayerSpec(
        id=d.name, title=d.title, description=d.description.strip(), path=e.path,
        endpoint_id=e.id or e.path.removeprefix("/api/").strip("/").replace("/", "-").replace("_", "-").lower(),
        kind=d.kind, history=d.history, min_plan=d.min_plan, core=d.core,
        fields=tuple(_field(f) for f in d.fields), checks=tuple(d.checks), chart=d.chart,
        time_field=None if d.time is None else d.time.field, time_unit="ms" if d.time is None else d.time.unit,
        interval_floor=floor, floor_by_plan=by_plan, detail=detail, range_buckets=dict(d.range or {}),
        bar=d.bar, settings=tuple(Setting(n, tuple(s.values), s.default, s.description) for n, s in d.settings.items()),
        fixed_params=dict(e.params), optional_params=tuple(e.optional), required_params=tuple(e.required),
        cache_seconds=e.cache_seconds, docs=e.docs,
        notes=(e.notes,) if e.notes else (), order=d.order, source=source)


def parse_definition(data: Any, source: str) -> LayerSpec:
    """A definition's parsed YAML as a LayerSpec; ConfigError `source: field: problem` otherwise."""
    from cgpreset._io import format_validation

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level (a layer definition)")
    try:
        return build(DefinitionFile.model_validate(data), source=source)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation(exc, DefinitionFile)}") from None


def load_definition(path: Path, *, source: str | None = None) -> LayerSpec:
    """Read one definition file (the one bounded YAML loader: size, duplicate keys, aliases)."""
    from cgpreset._yaml import read_yaml

    return parse_definition(read_yaml(path), source if source is not None else path.as_posix())


__all__ = ["CHECKS", "UNITS", "DefinitionFile", "build", "load_definition", "parse_definition"]
