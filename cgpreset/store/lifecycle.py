"""Series over their life: current, retired when no config produces them, pruned on request.

The same statements on every backend (`d`, store/dialect.py, spells them), run inside the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from cgpreset.layers import catalogue
from cgpreset.store.coverage import HOLES, SPANS
from cgpreset.store.dialect import Dialect
from cgpreset.store.schema import layer_tables, table_name


def mark_current(db: Any, d: Dialect, current: Collection[str], scope: Iterable[tuple[str, str]] | None,
                 now: int) -> list[str]:
    """Retire stored series that no config produces any more; bring back any that one produces again.

    `scope` None: `current` is every series of the configs, so any other series is retired.
    Else only series of those (coin, layer) pairs are judged (a run of some coins or layers,
    `--coins`/`--layers`). Returns the keys retired now.
    """
    pairs = None if scope is None else set(scope)
    retired: list[str] = []
    for sid, key, coin, layer, when in db.execute("SELECT id, key, coin, layer, retired_at FROM series").fetchall():
        if key in current:
            if when is not None:
                db.execute(d.sql("UPDATE series SET retired_at = NULL WHERE id = ?"), (sid,))
        elif when is None and (pairs is None or (coin, layer) in pairs):
            db.execute(d.sql("UPDATE series SET retired_at = ? WHERE id = ?"), (now, sid))
            retired.append(str(key))
    return sorted(retired)


def forget_coverage(db: Any, d: Dialect, key: str) -> None:
    """A series' cursor, spans and holes forgotten (its rows stay): the next run fetches its whole range."""
    sid = "(SELECT id FROM series WHERE key = ?)"
    db.execute(d.sql(f"UPDATE cursors SET last_closed = NULL WHERE series = {sid}"), (key,))
    for table in (SPANS, HOLES):
        db.execute(d.sql(f"DELETE FROM {table} WHERE series = {sid}"), (key,))


def prune(db: Any, d: Dialect, keys: Collection[str], found: Collection[str]) -> int:
    """Delete retired series (only those of `keys` still retired): rows, detail rows, coverage,
    cursor, raw pages and the series itself. Returns the rows deleted from the layer tables.
    `found`: the store's tables (a layer's detail table is known from its definition: a layer
    this command did not load loses its own table's rows only)."""
    rows = 0
    layers = catalogue()
    for sid, key, layer in db.execute("SELECT id, key, layer FROM series WHERE retired_at IS NOT NULL").fetchall():
        if key not in keys:
            continue
        tables = [t.name for t in layer_tables(layers[layer])] if layer in layers else [table_name(layer)]
        for table in (t for t in tables if t in found):
            cur = db.execute(d.sql(f"DELETE FROM {table} WHERE series = ?"), (sid,))
            rows += max(0, int(cur.rowcount or 0)) if table == table_name(layer) else 0
        for table in (SPANS, HOLES, "cursors", "raw_pages"):
            db.execute(d.sql(f"DELETE FROM {table} WHERE series = ?"), (sid,))
        db.execute(d.sql("DELETE FROM series WHERE id = ?"), (sid,))
    return rows
