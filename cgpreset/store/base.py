"""What every store backend offers the run pipeline: the `Store` protocol and the values it takes.

A backend (SQLite in store/sqlite.py; PostgreSQL next) holds schema v3 (store/schema.py) and
implements this protocol; `open_store` (store/__init__.py) picks one from the `--store` value.
Series are named by their key (`Series.id`, e.g. `funding/SOL/Binance:SOLUSDT/1h`); the backend
maps a key to its integer id in the `series` table on first write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
    #: The start of the window asked for: the series' `earliest` moves back to it even where the
    #: API had nothing that old (a coin listed later), so a deeper history is asked for once.
    asked_from: int | None = None


@dataclass(frozen=True)
class WriteResult:
    """What one `write` did: rows received, rows new to the store, the series' cursor after it."""

    received: int
    new_rows: int
    cursor: int | None


@dataclass(frozen=True)
class Cursor:
    """Where a series stands: its last closed bar, and the oldest and newest bars stored."""

    last_closed: int | None
    earliest: int | None = None
    latest: int | None = None


@dataclass(frozen=True)
class KnownPlan:
    """The key's plan as the last run recorded it: when, and the page size its first answer allowed."""

    plan: str
    at_ms: int
    max_limit: int | None = None


@dataclass
class RunRow:
    """A `runs` row: what `finish_run` writes besides the status."""

    exit_code: int | None
    totals: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """A store of schema v3. Every method raises ConfigError (one line naming the store) on failure.

    Readers: `cursor`, `cursors`, `positions`, `rows`, `count`, `runs`, `known_plan`.
    Writers: `write` (a page and its cursor, atomically), `reset_cursor`, and the runs table:
    `start_run` (which first marks rows of killed runs), `heartbeat`, `record_plan`, `finish_run`.
    A read-only store (`--dry-run`) never creates, migrates or writes anything.
    """

    display: str
    readonly: bool

    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> None: ...

    def cursor(self, series: str) -> int | None: ...
    def cursors(self) -> dict[str, int]: ...
    def positions(self) -> dict[str, Cursor]: ...
    def write(self, page: Page) -> WriteResult: ...
    def reset_cursor(self, series: str) -> None: ...
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
