"""Coverage beside the rows: which closed bars each time series holds, and which it lacks.

Two tables, the same on every backend and written in the page's own transaction:
`coverage` (series, start_time, end_time): the contiguous spans of closed bars stored, merged as
pages arrive; `holes` (series, start_time, end_time, attempts, last_run, reason, first_seen,
last_seen): closed bars a window asked for and the answer lacked, with the runs in a row that
found them missing. A page fills what it held, and every bar its window should have held but
did not is a hole attempted once more on this run; a hole the API answers short for on
KNOWN_HOLE_RUNS runs is known (see store.base.Hole). The run plans from this: what is missing
inside the wanted range is fetched, known holes are not.

The SQL is written once, with `?` placeholders; `d` (store/dialect.py) spells it for the backend.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from cgpreset.layers import LayerSpec
from cgpreset.plans import DAY_MS, INTERVAL_MS
from cgpreset.store.base import Coverage, Hole, Page
from cgpreset.store.dialect import Dialect
from cgpreset.timeframes import Span, runs_of, subtract, union

SPANS = "coverage"
HOLES = "holes"
#: Bar opens of `1w` are Mondays: 1970-01-05 is the grid's origin.
WEEK_ORIGIN = 4 * DAY_MS

EMPTY_ANSWER = "the API answered without these bars (an empty answer)"
SHORT_ANSWER = "the API answered without these bars"


def grid_origin(interval: str) -> int:
    return WEEK_ORIGIN if interval == "1w" else 0


# -- pure: how a page changes a series' coverage ------------------------------------------------

def trim(holes: Sequence[Hole], held: Sequence[Span]) -> list[Hole]:
    """Holes without the bars now held (a hole partly filled keeps its attempts for the rest)."""
    out: list[Hole] = []
    for h in holes:
        out += [replace(h, start=s, end=e) for s, e in subtract([(h.start, h.end)], held)]
    return out


def attempted(holes: Sequence[Hole], missing: Sequence[Span], *, run: int | None, reason: str,
              now: int) -> list[Hole]:
    """Holes after a window was asked for and its `missing` spans did not arrive.

    Each missing span is attempted once more than the holes it overlaps, unless this same run
    attempted it already (two windows of one run count once; `run` None counts every page).
    """
    out = list(holes)
    for lo, hi in missing:
        over = [h for h in out if h.start < hi and h.end > lo]
        same = [h.attempts for h in over if run is not None and h.last_run == run]
        attempts = max(same) if same else max((h.attempts for h in over), default=0) + 1
        first = min((h.first_seen for h in over), default=now)
        kept = [h for h in out if h not in over]
        for h in over:
            kept += [replace(h, start=s, end=e) for s, e in subtract([(h.start, h.end)], [(lo, hi)])]
        out = [*kept, Hole(lo, hi, attempts, run, reason, first, now)]
    return sorted(out)


def tidy(holes: Sequence[Hole], wanted_from: int | None) -> list[Hole]:
    """Holes merged where they touch with the same attempts (windows split them), and without the
    ones the series no longer wants (older than its first wanted bar)."""
    out: list[Hole] = []
    for h in sorted(holes):
        if wanted_from is not None and h.end <= wanted_from:
            continue
        last = out[-1] if out else None
        if last and last.end == h.start and last.attempts == h.attempts:
            out[-1] = replace(last, end=h.end, first_seen=min(last.first_seen, h.first_seen),
                              last_seen=max(last.last_seen, h.last_seen),
                              reason=last.reason if last.reason == h.reason else SHORT_ANSWER)
        else:
            out.append(h)
    return out


def missing_in(page: Page, held: Sequence[Span]) -> list[Span]:
    """The closed bars the page's window asked for and the store still lacks after it."""
    if page.asked is None or page.forming_at is None:
        return []
    lo, hi = page.asked[0], min(page.asked[1], page.forming_at)
    return subtract([(lo, hi)], held) if lo < hi else []


# -- SQL: the same statements on every backend ---------------------------------------------------

def load(db: Any, d: Dialect, series_id: int | None = None) -> dict[int, Coverage]:
    """Every series' coverage (or one series'), by series id."""
    where = "" if series_id is None else " WHERE series = ?"
    args: tuple[Any, ...] = () if series_id is None else (series_id,)
    spans: dict[int, list[Span]] = {}
    for sid, s, e in db.execute(d.sql(f"SELECT series, start_time, end_time FROM {SPANS}{where} "
                                      "ORDER BY series, start_time"), args).fetchall():
        spans.setdefault(int(sid), []).append((int(s), int(e)))
    holes: dict[int, list[Hole]] = {}
    for sid, s, e, n, run, why, first, last in db.execute(d.sql(
            f"SELECT series, start_time, end_time, attempts, last_run, reason, first_seen, last_seen FROM {HOLES}"
            f"{where} ORDER BY series, start_time"), args).fetchall():
        holes.setdefault(int(sid), []).append(Hole(int(s), int(e), int(n), None if run is None else int(run),
                                                    str(why), int(first), int(last)))
    return {sid: Coverage(tuple(spans.get(sid, ())), tuple(holes.get(sid, ())))
            for sid in sorted({*spans, *holes})}


def record(db: Any, d: Dialect, series_id: int, page: Page, step: int, *, run: int | None, now: int) -> Coverage:
    """Update a series' coverage with a written page (inside the page's transaction)."""
    before = load(db, d, series_id).get(series_id, Coverage())
    forming = page.forming_at
    closed = [r[0] for r in page.rows if forming is None or r[0] < forming]
    spans = union(before.spans, runs_of(closed, step))
    holes = trim(before.holes, spans)
    gone = missing_in(page, spans)
    if gone:
        holes = attempted(holes, gone, run=run, reason=SHORT_ANSWER if page.rows else EMPTY_ANSWER, now=now)
    holes = tidy(holes, page.wanted_from)
    if spans != list(before.spans):
        db.execute(d.sql(f"DELETE FROM {SPANS} WHERE series = ?"), (series_id,))
        db.cursor().executemany(d.sql(f"INSERT INTO {SPANS} (series, start_time, end_time) VALUES (?, ?, ?)"),
                                [(series_id, s, e) for s, e in spans])
    if holes != list(before.holes):
        db.execute(d.sql(f"DELETE FROM {HOLES} WHERE series = ?"), (series_id,))
        db.cursor().executemany(d.sql(
            f"INSERT INTO {HOLES} (series, start_time, end_time, attempts, last_run, reason, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            [(series_id, h.start, h.end, h.attempts, h.last_run, h.reason, h.first_seen, h.last_seen) for h in holes])
    return Coverage(tuple(spans), tuple(holes))


def remove_stale(db: Any, d: Dialect, table: str, series_id: int, page: Page, interval: str) -> int:
    """Delete, inside the window asked, rows no answer can hold any more: off the bar grid, dated
    after the forming bar, or a still-forming row whose bar has closed and was not sent again.

    The page's own rows never match (they are on the grid, not ahead, and closed before the
    forming bar). Returns how many rows went.
    """
    if page.asked is None or page.forming_at is None:
        return 0
    cur = db.execute(d.sql(
        f"DELETE FROM {table} WHERE series = ? AND time >= ? AND time < ? "
        "AND (time > ? OR (time - ?) % ? <> 0 OR (closed = 0 AND time < ?))"),
        (series_id, page.asked[0], page.asked[1], page.forming_at, grid_origin(interval), INTERVAL_MS[interval],
         page.forming_at))
    return max(0, int(cur.rowcount or 0))


def islands_sql(table: str) -> str:
    """The spans of closed bars on the grid that `table` holds, per series (for a store written
    before coverage was kept): consecutive bars share `time - step * row_number`."""
    step = "CASE s.interval " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in INTERVAL_MS.items()) + " END"
    origin = f"CASE s.interval WHEN '1w' THEN {WEEK_ORIGIN} ELSE 0 END"
    return (f"SELECT series, min(time) AS start_time, max(time) + step AS end_time FROM ("
            f"SELECT d.series, d.time, {step} AS step, "
            f"d.time - {step} * row_number() OVER (PARTITION BY d.series ORDER BY d.time) AS grp "
            f"FROM {table} d JOIN series s ON s.id = d.series "
            f"WHERE d.closed = 1 AND (d.time - {origin}) % {step} = 0) b GROUP BY series, grp, step")


def fill_statements(tables: Iterable[str]) -> list[str]:
    """Fill `coverage` from the rows of these windowed layer tables (a store that kept none yet)."""
    return [f"INSERT INTO {SPANS} (series, start_time, end_time) SELECT series, start_time, end_time "
            f"FROM ({islands_sql(t)}) i" for t in tables]


def windowed_tables(layers: Mapping[str, LayerSpec], found: Collection[str]) -> list[str]:
    """The tables of these layers' windowed ones (coverage is kept for) that a store holding `found` has."""
    return [ls.table for ls in layers.values() if ls.windowed and ls.table in found]


def islands(db: Any, tables: Iterable[str]) -> dict[int, Coverage]:
    """Every series' spans computed from the rows of these windowed layer tables, for a store
    without a `coverage` table (read-only)."""
    spans: dict[int, list[Span]] = {}
    for table in tables:
        for sid, s, e in db.execute(islands_sql(table)).fetchall():
            spans.setdefault(int(sid), []).append((int(s), int(e)))
    return {sid: Coverage(tuple(sorted(v))) for sid, v in sorted(spans.items())}

