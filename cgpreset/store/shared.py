"""What both store backends do the same way, written once: coverage, the series' life cycle, the
cursors read from them. A backend gives its placeholder (`_ph`), its read and write transactions
(`_reading()`, `_tx(grace=...)`), and how it sees its own tables (`_columns_of(db)`)."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any

from cgpreset.store import coverage, lifecycle
from cgpreset.store.base import Coverage, Cursor
from cgpreset.store.schema import SCHEMA_VERSION


def _wall_ms() -> int:
    return int(time.time() * 1000)


class SharedStore:
    """Methods of the Store protocol that are the same SQL on every backend."""

    _ph: str
    _version: int
    _series_ids: dict[str, int]

    def _reading(self) -> AbstractContextManager[Any]:
        raise NotImplementedError  # each backend's

    def _tx(self, *, grace: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _columns_of(self, db: Any) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    def _current_positions(self, db: Any) -> dict[str, Cursor]:
        """Every series' cursor with the oldest and newest bars stored, and when it was retired."""
        retired = "s.retired_at" if "retired_at" in self._columns_of(db).get("series", ()) else "NULL"
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
            found = (coverage.load(db, self._ph, sid) if "coverage" in self._columns_of(db)
                     else coverage.islands(db))
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

    def reset_cursor(self, series: str) -> None:
        """Forget a series' cursor and coverage (`cursors reset`): its next run fetches its whole range;
        the rows stay and are upserted again."""
        with self._tx(grace=True) as db:
            lifecycle.forget_coverage(db, self._ph, series)

    def retire(self, current: Collection[str], scope: Iterable[tuple[str, str]] | None = None, *,
               now_ms: int | None = None) -> list[str]:
        """Mark series no config produces any more as retired (out of the analyst views), and the
        ones produced again as current; see store/lifecycle.py. Returns the keys retired now."""
        with self._tx(grace=True) as db:
            return lifecycle.mark_current(db, self._ph, current, scope, _wall_ms() if now_ms is None else now_ms)

    def prune(self, keys: Collection[str]) -> int:
        """Delete the retired series among `keys` and every row of theirs; returns the rows deleted."""
        with self._tx(grace=True) as db:
            rows = lifecycle.prune(db, self._ph, keys)
        self._series_ids.clear()
        return rows
