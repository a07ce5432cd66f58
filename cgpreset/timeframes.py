"""Time frames (pure: no I/O, no clock): bar windows of a request, the forming bar.

A history request asks for [start_time, end_time) in milliseconds, end exclusive, at most
MAX_LIMIT bars; the answer's last bar may still be forming (it opened before "now").
"""

from __future__ import annotations

from collections.abc import Iterable

from cgpreset.plans import bar_open

#: The documented contract: at most 1000 rows per history call (the CoinGlass docs: `limit` "Maximum 1000").
MAX_LIMIT = 1000


# -- spans: what a series holds and lacks, as [start, end) intervals of bar opens ----------------

#: A span of bars: [start, end) in ms, both on the series' bar grid.
Span = tuple[int, int]

#: Runs in a row on which the API answered a span short (empty, or without those bars) before the
#: span is recorded as a known hole: not asked for again, shown by `cursors`, health and the report.
KNOWN_HOLE_RUNS = 3


def on_grid(ts_ms: int, interval: str) -> bool:
    """Whether a time is a bar open of the interval (bars align to UTC epoch multiples; 1w to Monday)."""
    return bar_open(ts_ms, interval) == ts_ms


def runs_of(times: Iterable[int], step: int) -> list[Span]:
    """Contiguous runs of bar opens `step` apart, as spans, ascending (duplicates ignored)."""
    out: list[Span] = []
    for t in sorted(set(times)):
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + step)
        else:
            out.append((t, t + step))
    return out


def union(*groups: Iterable[Span]) -> list[Span]:
    """Spans that overlap or touch, merged; ascending."""
    out: list[Span] = []
    for start, end in sorted(s for g in groups for s in g if s[0] < s[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(spans: Iterable[Span], minus: Iterable[Span]) -> list[Span]:
    """The parts of `spans` outside every span of `minus`; ascending."""
    cut = union(minus)
    out: list[Span] = []
    for start, end in union(spans):
        for lo, hi in cut:
            if hi <= start or lo >= end:
                continue
            if lo > start:
                out.append((start, lo))
            start = max(start, hi)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def intersect(spans: Iterable[Span], within: Span) -> list[Span]:
    """The parts of `spans` inside `within`; ascending."""
    return [(max(s, within[0]), min(e, within[1])) for s, e in union(spans) if s < within[1] and e > within[0]]


def bar_count(spans: Iterable[Span], step: int) -> int:
    """How many bars the spans hold."""
    return sum((e - s) // step for s, e in spans)


def windows_newest_first(missing: Iterable[Span], step: int, limit: int = MAX_LIMIT) -> list[Span]:
    """Request windows of at most `limit` bars covering every missing span, newest first.

    Nearby spans share a window (bars held between them are asked again and upserted unchanged):
    one request fills every hole within `limit` bars of each other.
    """
    pending = union(missing)
    out: list[Span] = []
    while pending:
        end = pending[-1][1]
        floor = end - limit * step
        start = end
        while pending and pending[-1][1] > floor:
            s, e = pending.pop()
            if s >= floor:
                start = s
                continue
            start = floor
            pending.append((s, floor))
            break
        out.append((start, end))
    return out
