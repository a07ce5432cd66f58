"""What every store backend offers a command: the `Store` protocol and the values it takes.

A backend (SQLite in store/sqlite.py, PostgreSQL in store/postgres.py) holds schema v3
(store/schema.py) and implements this protocol; `open_store` (store/__init__.py) picks one from
the `--store` value. Nothing outside the store imports a backend: a command gets everything
from the Store it opened (the run history, cursors and coverage, the analyst's connection, the
stream's sink and liveness).
Series are named by their key (`Series.id`, e.g. `funding/SOL/Binance:SOLUSDT/1h`); the backend
maps a key to its integer id in the `series` table on first write.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cgpreset.timeframes import KNOWN_HOLE_RUNS, Span, intersect, subtract

if TYPE_CHECKING:
    from cgpreset.channels import StreamEvent


@dataclass(frozen=True)
class SeriesRef:
    """A series as the `series` table holds it (params: its request parameters as JSON text)."""

    key: str
    layer: str
    coin: str
    exchange: str | None
    instrument: str | None
    interval: str
    params: str


@dataclass(frozen=True)
class Page:
    """One answer's rows, ready to store, with the cursor they move.

    `rows` are tuples in the layer table's column order after `series` (see
    schema.layer_table): time, [row key], the typed values, [closed]. `detail` are the rows of the
    layer's detail table after `series` (the ETF flows per ticker: time, ticker, flow_usd).
    `closed_upto` is the open time of the page's last closed bar (the cursor moves to it, never
    backwards). `raw` is the answer's text, kept only on field drift or when asked (`raw_reason`).
    """

    series: SeriesRef
    rows: Sequence[tuple[Any, ...]]
    closed_upto: int | None = None
    detail: Sequence[tuple[Any, ...]] = ()
    raw: str | None = None
    raw_reason: str = ""
    #: The window asked for, [start, end) (None for a snapshot or a whole-history answer): the
    #: store's coverage learns which of its closed bars the answer held and which it lacked.
    asked: tuple[int, int] | None = None
    #: The open of the still-forming bar when the page was fetched: bars before it are closed.
    forming_at: int | None = None
    #: The first bar the series wants (history_days back): holes older than it are forgotten.
    wanted_from: int | None = None


@dataclass(frozen=True)
class WriteResult:
    """What one `write` did: rows received, rows new to the store, the series' cursor after it,
    and stale rows removed from the window asked (off the bar grid, dated ahead of the forming
    bar, or a forming bar the API no longer sends)."""

    received: int
    new_rows: int
    cursor: int | None
    removed: int = 0


@dataclass(frozen=True, order=True)
class Hole:
    """Closed bars a series lacks that the API was asked for and answered without, [start, end).

    `attempts`: runs on which the API answered this span short (empty, or without these bars);
    at KNOWN_HOLE_RUNS (cgpreset/timeframes.py) it is a known hole, no longer asked for.
    """

    start: int
    end: int
    attempts: int = 1
    last_run: int | None = None
    reason: str = ""
    first_seen: int = 0
    last_seen: int = 0

    @property
    def known(self) -> bool:
        return self.attempts >= KNOWN_HOLE_RUNS


@dataclass(frozen=True)
class Coverage:
    """Which closed bars a time series holds (`spans`, contiguous, ascending) and which it was
    asked for and lacks (`holes`), as [start, end) ms intervals of bar opens."""

    spans: tuple[tuple[int, int], ...] = ()
    holes: tuple[Hole, ...] = ()


def spans_in(coverage: Coverage | None, wanted: Span) -> tuple[list[Span], list[Hole], list[Span]]:
    """Within `wanted`: the spans held, the known holes, and the other missing spans (pending)."""
    held = intersect(coverage.spans, wanted) if coverage else []
    known = [h for h in (coverage.holes if coverage else ()) if h.known and h.start < wanted[1] and h.end > wanted[0]]
    pending = subtract([wanted], [*held, *((h.start, h.end) for h in known)])
    return held, known, pending


@dataclass(frozen=True)
class Cursor:
    """Where a series stands: its last closed bar, the oldest and newest bars stored, and when a
    run found that no config produces it any more (None while it is current)."""

    last_closed: int | None
    earliest: int | None = None
    latest: int | None = None
    retired_at: int | None = None


@dataclass(frozen=True)
class KnownPlan:
    """The key's plan as the last run recorded it: when, and `max_limit`, the key's requests per minute
    its answers' API-KEY-MAX-LIMIT header gave (not a page size: that is the `limit` parameter)."""

    plan: str
    at_ms: int
    max_limit: int | None = None


class StreamSink(Protocol):
    """What a stream session writes to (`Store.stream_sink()`): its run's row and its events.

    `forget_events` is the retention of `stream --retention-days`: the events dated more than
    `days` before `now` go (at most `max_rows` of them), in short transactions, and nothing else."""

    run_id: int | None
    source: str | None  # recorded with the run: "emulator" or the API's host (run/source.py)

    def close(self) -> None: ...
    def start_run(self, *, url: str, channels: list[str], coins: list[str] | None, now: float) -> int: ...
    def add_events(self, events: Iterable[StreamEvent], *, now: float) -> int: ...
    def update_run(self, summary: dict[str, Any], *, now: float, last_event_at: float | None,
                   status: str = "running", stop_reason: str | None = None) -> None: ...
    def count_events(self) -> int: ...
    def forget_events(self, days: float, *, now: float, max_rows: int | None = None) -> int: ...


class Store(Protocol):
    """A store of schema v3. Every method raises ConfigError (one line naming the store) on failure.

    Readers: `cursor`, `cursors`, `positions`, `coverage`, `rows`, `count`, `runs`, `known_plan`,
    `sources`, `stream_liveness`, and `reader()` (a DB-API connection to the analyst views).
    Writers: `write` (a page and its cursor, atomically), `reset_cursor`, `retire`, `prune`, the
    runs table (`start_run`, which first marks rows of killed runs, `heartbeat`, `record_plan`,
    `finish_run`), and `stream_sink()` for `stream --store`. A writing open adds the tables and
    views of layers the store has not met (and so does the first write of a layer that joined the
    catalogue later); a read-only store (`--dry-run`) never creates, migrates or writes anything:
    a layer it has no table for reads as empty.
    """

    display: str
    readonly: bool

    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> None: ...

    def cursor(self, series: str) -> int | None: ...
    def cursors(self) -> dict[str, int]: ...
    def positions(self) -> dict[str, Cursor]: ...
    def coverage(self, series: str | None = None) -> dict[str, Coverage]: ...
    def write(self, page: Page) -> WriteResult: ...
    def reset_cursor(self, series: str) -> None: ...
    def retire(self, current: Collection[str], scope: Iterable[tuple[str, str]] | None = None, *,
               now_ms: int | None = None) -> list[str]: ...
    def prune(self, keys: Collection[str]) -> int: ...
    def rows(self, series: str) -> list[dict[str, Any]]: ...
    def count(self, series: str | None = None) -> int: ...

    def start_run(self, *, pid: int | None = None, now_ms: int | None = None, source: str | None = None) -> int: ...
    def sources(self) -> list[str]: ...
    def heartbeat(self, run_id: int, *, now_ms: int | None = None) -> None: ...
    def record_plan(self, run_id: int, plan: str, *, max_limit: int | None, now_ms: int | None = None) -> None: ...
    def known_plan(self) -> KnownPlan | None: ...
    def finish_run(self, run_id: int, *, exit_code: int | None, totals: dict[str, Any],
                   outcomes: dict[str, Any], status: str = "finished") -> None: ...
    def set_exit_code(self, run_id: int, exit_code: int) -> None: ...
    def runs(self) -> list[dict[str, Any]]: ...

    def reader(self) -> AbstractContextManager[Any]: ...
    def stream_sink(self) -> StreamSink: ...
    def stream_liveness(self, *, now: float | None = None) -> dict[str, Any] | None: ...

