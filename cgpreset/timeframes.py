"""Time frames (pure: no I/O, no clock): bar windows of a request, the forming bar.

A history request asks for [start_time, end_time) in milliseconds, end exclusive, at most
MAX_LIMIT bars; the answer's last bar may still be forming (it opened before "now").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cgpreset.plans import bar_open, interval_ms

#: The documented contract: at most 1000 rows per history call (spec §4).
MAX_LIMIT = 1000


def iter_windows(start_ms: int, end_ms: int, interval: str, limit: int = MAX_LIMIT) -> Iterator[tuple[int, int]]:
    """[start, end) windows of at most `limit` bars, aligned to bar opens, oldest first."""
    if limit < 1 or limit > MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    step = interval_ms(interval) * limit
    cursor = bar_open(start_ms, interval)
    while cursor < end_ms:
        yield cursor, min(cursor + step, end_ms)
        cursor += step


def split_forming(rows: list[dict[str, Any]], interval: str, now_ms: int, time_field: str = "time") -> tuple[
    list[dict[str, Any]], dict[str, Any] | None
]:
    """Split ascending rows into closed bars and the still-forming bar (if the last row is it)."""
    if rows and rows[-1][time_field] >= bar_open(now_ms, interval):
        return rows[:-1], rows[-1]
    return rows, None
