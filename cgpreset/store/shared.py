"""What both store backends do the same way, written once: coverage, the series' life cycle, the
cursors and rows read back, and meeting a layer the store has not seen. A backend gives its
dialect (`_d`), its read and write transactions (`_reading()`, `_tx(grace=...)`), how it sees
its own tables (`_columns_of(db)`), and `_grow()` (store/growth.py's plan, under its lock)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any

from cgpreset.clock import WallClock
from cgpreset.layers import LayerSpec, catalogue
from cgpreset.store import coverage, lifecycle
from cgpreset.store.base import Coverage, Cursor
from cgpreset.store.dialect import Dialect
from cgpreset.store.schema import SCHEMA_VERSION, TableDef, layer_table, table_name


class SharedStore:
    """Methods of the Store protocol that are the same SQL on every backend."""

    _d: Dialect
    _version: int
    _series_ids: dict[str, int]
    readonly: bool
    _clock: WallClock  # now, in ms (cgpreset/clock.py)
    #: The store's tables and views with their columns, as of opening (or its last growth).
    _found: dict[str, tuple[str, ...]]
    #: The layers this store has grown for since it opened (their tables and views are there).
    _met: dict[str, LayerSpec]

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError  # each backend's

    def _tx(self, *, grace: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _columns_of(self, db: Any) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    def _grow(self) -> None:
        """Add what the store lacks for the active catalogue (one transaction, under the backend's
        schema lock), then set `_found` and `_met`."""
        raise NotImplementedError

    def _met_all(self) -> None:
        self._met = dict(catalogue())

    def _table_for(self, ls: LayerSpec) -> TableDef:
        """The layer's table, grown into the store first if the layer joined the catalogue (or its
        definition changed) after the store was opened: a writer never needs a new open for it."""
        if self._met.get(ls.id) is not ls:
            self._grow()
        return layer_table(ls)

    def _current_positions(self, db: Any) -> dict[str, Cursor]:
        """Every series' cursor with the oldest and newest bars stored, and when it was retired."""
        retired = "s.retired_at" if "retired_at" in self._found.get("series", ()) else "NULL"
        return {k: Cursor(c, lo, hi, gone) for k, c, lo, hi, gone in db.execute(
            f"SELECT s.key, c.last_closed, c.earliest, c.latest, {retired} FROM cursors c "
            "JOIN series s ON s.id = c.series").fetchall()}

    def coverage(self, series: str | None = None) -> dict[str, Coverage]:
        """Each time series' spans held and holes found, by series key (one series' if given).

        A store written before coverage was kept (read-only: not grown yet) has its spans
        computed from the rows stored, and no holes.
        """
        if self._version != SCHEMA_VERSION:
            return {}
        with self._reading() as db:
            keys = {int(i): str(k) for i, k in db.execute("SELECT id, key FROM series").fetchall()}
            sid = None if series is None else next((i for i, k in keys.items() if k == series), -1)
            if sid == -1:
                return {}
            found = (coverage.load(db, self._d, sid) if "coverage" in self._found
                     else coverage.islands(db, coverage.windowed_tables(catalogue(), self._found)))
        return {keys[i]: c for i, c in found.items() if i in keys and (sid is None or i == sid)}

    def cursors(self) -> dict[str, int]:
        """Open time of each series' last closed bar, by series key (series without one left out)."""
        return {k: c.last_closed for k, c in self.positions().items() if c.last_closed is not None}

    def positions(self) -> dict[str, Cursor]:
        """Every series' cursor with the oldest and newest bars stored, by series key."""
        if self._version != SCHEMA_VERSION:
            return {}
        with self._reading() as db:
            return self._current_positions(db)

    def _series_table(self, db: Any, series: str) -> tuple[int, str, tuple[str, ...]] | None:
        """A series' id, its layer's table and that table's key after `series` (None: no such
        series, or no table for its layer: a layer this store has not met reads as empty)."""
        row = db.execute(self._d.sql("SELECT id, layer FROM series WHERE key = ?"), (series,)).fetchone()
        if row is None:
            return None
        layer, table = str(row[1]), table_name(str(row[1]))
        if table not in self._columns_of(db):
            return None
        ls = catalogue().get(layer)
        return int(row[0]), table, layer_table(ls).key[1:] if ls is not None else ("time",)

    def rows(self, series: str) -> list[dict[str, Any]]:
        """A series' rows as dicts of its layer table's columns, ascending by time (and row key)."""
        if self._version != SCHEMA_VERSION:
            return []
        with self._reading() as db:
            found = self._series_table(db, series)
            if found is None:
                return []
            sid, table, order = found
            cur = db.execute(self._d.sql(f"SELECT * FROM {table} WHERE series = ? ORDER BY {', '.join(order)}"),
                             (sid,))
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def count(self, series: str | None = None) -> int:
        """Rows stored (layer tables, not the nested detail rows), of one series or all."""
        if self._version != SCHEMA_VERSION:
            return 0
        with self._reading() as db:
            if series is not None:
                found = self._series_table(db, series)
                return 0 if found is None else int(db.execute(self._d.sql(
                    f"SELECT count(*) FROM {found[1]} WHERE series = ?"), (found[0],)).fetchone()[0])
            held = self._columns_of(db)
            layers = {str(r[0]) for r in db.execute("SELECT DISTINCT layer FROM series").fetchall()}
            tables = sorted(t for t in map(table_name, layers) if t in held)
            return sum(int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables)

    def reset_cursor(self, series: str) -> None:
        """Forget a series' cursor and coverage (`cursors reset`): its next run fetches its whole range;
        the rows stay and are upserted again."""
        with self._tx(grace=True) as db:
            lifecycle.forget_coverage(db, self._d, series)

    def retire(self, current: Collection[str], scope: Iterable[tuple[str, str]] | None = None, *,
               now_ms: int | None = None) -> list[str]:
        """Mark series no config produces any more as retired (out of the analyst views), and the
        ones produced again as current; see store/lifecycle.py. Returns the keys retired now."""
        with self._tx(grace=True) as db:
            return lifecycle.mark_current(db, self._d, current, scope, self._clock() if now_ms is None else now_ms)

    def prune(self, keys: Collection[str]) -> int:
        """Delete the retired series among `keys` and every row of theirs; returns the rows deleted."""
        with self._tx(grace=True) as db:
            rows = lifecycle.prune(db, self._d, keys, self._columns_of(db))
        self._series_ids.clear()
        return rows
