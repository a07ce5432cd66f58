"""A store that grows by itself: what a writing open adds, and what any open requires (pure: no I/O).

Given the tables a store holds (`found`: name -> its columns, views included) and the active
layer catalogue, `plan` says what a writing open adds, in one transaction, on either backend:
the base tables and columns of a later v3 release, the table (and detail table) of every layer
the store has not met, the columns a layer's definition gained (nullable: rows stored before
have none), and every view as the grown tables make it. Nothing is ever dropped or renamed.

`problems` is the open-time check of a v3 store (every open, read-only included): the base
tables must be there with their columns (bar the late ones); a layer table that is there must
have its key (and `closed`); an unknown `data_*` table (a layer of a newer catalogue, or a
user's layer this command did not load) is left alone; a layer without a table reads as empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cgpreset.layers import LayerSpec
from cgpreset.store.coverage import windowed_tables
from cgpreset.store.dialect import Dialect
from cgpreset.store.schema import (
    BASE_TABLES,
    INDEXES,
    LATE_COLUMNS,
    LATE_TABLES,
    TableDef,
    ViewDef,
    key_columns,
    late_columns,
    layer_tables,
    views,
)

Found = Mapping[str, Sequence[str]]


@dataclass
class Growth:
    """What a writing open does to a store: `statements` in order, the layer tables among them
    that are new (`created`: TimescaleDB makes them hypertables), whether `coverage` is new to a
    store holding rows (`fill_from`: the windowed layer tables to compute it from), and every
    view as the grown tables make it (the backend replaces those that differ)."""

    statements: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    fill_from: list[str] | None = None
    views: tuple[ViewDef, ...] = ()
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the tables after it


def plan(found: Found, catalogue: Mapping[str, LayerSpec], dialect: Dialect) -> Growth:
    """What a store holding `found` lacks for `catalogue`, as statements of `dialect`."""
    g = Growth(columns={k: tuple(v) for k, v in found.items()})
    new_base = [t for t in BASE_TABLES if t.name not in found]
    for t in new_base:
        _create(g, t, dialect)
    made = {t.name for t in new_base}
    g.statements += [dialect.create_index(*ix) for ix in INDEXES if ix[1] in made]
    for table, column, kind in late_columns(found):
        g.statements.append(dialect.add_column(table, column, kind))
        g.columns[table] += (column,)
    for ls in catalogue.values():
        for t in layer_tables(ls):
            if t.name not in found:
                _create(g, t, dialect)
                g.created.append(t.name)
                continue
            for name, kind, _ in t.columns:
                if name not in g.columns[t.name]:
                    g.statements.append(dialect.add_column(t.name, name, kind))
                    g.columns[t.name] += (name,)
    if "coverage" not in found and "series" in found:  # a store of the release before coverage
        g.fill_from = windowed_tables(catalogue, found)
    g.views = views(catalogue, g.columns)
    return g


def _create(g: Growth, t: TableDef, dialect: Dialect) -> None:
    g.statements.append(dialect.create_table(t))
    g.columns[t.name] = t.column_names


def problems(found: Found, catalogue: Mapping[str, LayerSpec]) -> list[str]:
    """Why a store holding `found` is not a cgpreset store of v3 (empty: it is one)."""
    out = []
    absent = [t.name for t in BASE_TABLES if t.name not in found and t.name not in LATE_TABLES]
    if absent:
        out.append(f"schema v3 without table {', '.join(absent)}")
    for t in BASE_TABLES:
        out += _missing(found, t.name, [c for c in t.column_names if c not in LATE_COLUMNS.get(t.name, ())])
    for ls in catalogue.values():
        for t in layer_tables(ls):
            out += _missing(found, t.name, key_columns(t), f" (layer {ls.id}: its key changed? give it a new name)")
    return out


def _missing(found: Found, table: str, columns: Sequence[str], hint: str = "") -> list[str]:
    if table not in found:
        return []
    missing = [c for c in columns if c not in found[table]]
    if not missing:
        return []
    return [f"table {table} has no column {', '.join(missing[:3])}{', …' if missing[3:] else ''}{hint}"]

