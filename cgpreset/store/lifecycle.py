"""Series over their life: current, retired when no config produces them, pruned on request.

The same statements on every backend (`ph` is the backend's placeholder: `?` SQLite, `%s`
psycopg), run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from cgpreset.store.coverage import HOLES, SPANS
from cgpreset.store.schema import DETAIL_TABLES, LAYER_TABLES


def _sql(text: str, ph: str) -> str:
    return text if ph == "?" else text.replace("?", ph)


def mark_current(db: Any, ph: str, current: Collection[str], scope: Iterable[tuple[str, str]] | None,
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
                db.execute(_sql("UPDATE series SET retired_at = NULL WHERE id = ?", ph), (sid,))
        elif when is None and (pairs is None or (coin, layer) in pairs):
            db.execute(_sql("UPDATE series SET retired_at = ? WHERE id = ?", ph), (now, sid))
            retired.append(str(key))
    return sorted(retired)


def forget_coverage(db: Any, ph: str, key: str) -> None:
    """A series' cursor, spans and holes forgotten (its rows stay): the next run fetches its whole range."""
    sid = "(SELECT id FROM series WHERE key = ?)"
    db.execute(_sql(f"UPDATE cursors SET last_closed = NULL WHERE series = {sid}", ph), (key,))
    for table in (SPANS, HOLES):
        db.execute(_sql(f"DELETE FROM {table} WHERE series = {sid}", ph), (key,))


def prune(db: Any, ph: str, keys: Collection[str]) -> int:
    """Delete retired series (only those of `keys` still retired): rows, detail rows, coverage,
    cursor, raw pages and the series itself. Returns the rows deleted from the layer tables."""
    rows = 0
    for sid, key, layer in db.execute("SELECT id, key, layer FROM series WHERE retired_at IS NOT NULL").fetchall():
        if key not in keys:
            continue
        if layer in LAYER_TABLES:
            cur = db.execute(_sql(f"DELETE FROM {LAYER_TABLES[layer].name} WHERE series = ?", ph), (sid,))
            rows += max(0, int(cur.rowcount or 0))
        if layer in DETAIL_TABLES:
            db.execute(_sql(f"DELETE FROM {DETAIL_TABLES[layer].name} WHERE series = ?", ph), (sid,))
        for table in (SPANS, HOLES, "cursors", "raw_pages"):
            db.execute(_sql(f"DELETE FROM {table} WHERE series = ?", ph), (sid,))
        db.execute(_sql("DELETE FROM series WHERE id = ?", ph), (sid,))
    return rows
