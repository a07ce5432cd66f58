"""One answer on its way to the store: typed rows -> the layer table's tuples, checked, outside the store's lock.

The rows come from the typed decoder (api/rows.decode_rows) as msgspec Structs; here they become
the tuples a `Page` carries (time, [row key], the layer's values, [closed]), are checked against
the window asked for, and are kept per series as tuples (never as dicts) for the checks at the
end of the series. Only the small answers whose checks need their nested rows (the per-exchange
snapshot, the ETF flows and their tickers) are kept as dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any

from cgpreset.api.rows import Decoded, number_or_none
from cgpreset.errors import MalformedResponseError
from cgpreset.plans import DAY_MS, bar_open, interval_ms
from cgpreset.run.checks import Check
from cgpreset.run.series import Series
from cgpreset.store.base import Page
from cgpreset.timeframes import on_grid


@dataclass
class SeriesRows:
    """What a series received this run, for its checks: tuples by time (or dicts for small layers)."""

    series: Series
    by_key: dict[Any, Any] = field(default_factory=dict)
    duplicates: list[int] = field(default_factory=list)  # times sent twice with different values
    unknown: set[str] = field(default_factory=set)
    off_grid: list[int] = field(default_factory=list)  # times refused: not a bar open of the interval
    ahead: list[int] = field(default_factory=list)  # times refused: after the forming bar

    def rows(self) -> list[Any]:
        """Ascending by time (snapshots in the order the answer had them)."""
        if self.series.spec.snapshot:
            return list(self.by_key.values())
        return [self.by_key[k] for k in sorted(self.by_key)]

    def findings(self) -> list[Check]:
        out = []
        if self.duplicates:
            times = sorted(set(self.duplicates))
            out.append(Check("duplicates", False, f"{_n(times, 'time')} sent twice with different values in one "
                                                  f"answer (first at {times[0]}); the later kept"))
        bar = "1d" if self.series.spec.whole_history else self.series.interval
        if self.off_grid:
            times = sorted(set(self.off_grid))
            out.append(Check("off_grid", False, f"{_n(times, 'row')} of {self.series.id} off the {bar} bar grid "
                                                f"refused (first at {_iso(times[0])}); not stored"))
        if self.ahead:
            times = sorted(set(self.ahead))
            out.append(Check("future", False, f"{_n(times, 'row')} of {self.series.id} dated after the forming bar "
                                              f"refused (first at {_iso(times[0])}); not stored"))
        return out


def _n(items: list[int], noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) > 1 else ''}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_window(s: Series, window: tuple[int, int] | None, times: list[int]) -> None:
    """Rows must lie in the window asked for (± one bar): else seconds-vs-milliseconds or worse."""
    if window is None:
        return
    step = interval_ms(s.interval)
    lo, hi = window[0] - step, window[1] + step
    bad = [t for t in times if not lo <= t <= hi]
    if bad:
        tf = s.endpoint.time_field or "time"
        hint = ""
        if s.endpoint.time_unit == "ms" and all(b < 10**11 for b in bad):
            hint = " (seconds, not milliseconds?)"
        elif s.endpoint.time_unit == "s" and all(b >= 10**14 for b in bad):  # made ms from what were ms already
            hint = " (milliseconds, not seconds as the layer's definition says?)"
        raise MalformedResponseError(
            f"{len(bad)} of {len(times)} rows have a {tf} outside the requested window "
            f"[{window[0]}, {window[1]}), e.g. {bad[0]}{hint}; nothing stored", path=s.endpoint.path)


def build_page(s: Series, decoded: Decoded, got: SeriesRows, *, now_ms: int,
               window: tuple[int, int] | None, wanted_from: int | None = None) -> Page:
    """The page to store for one answer; `got` collects the rows for the series' checks.

    Raises MalformedResponseError (nothing of the page stored) when rows lie outside the window.
    """
    ls = s.spec
    tf = s.endpoint.time_field or "time"
    structs = decoded.rows
    fields = [c.field for c in ls.columns]
    if ls.snapshot:
        when = bar_open(now_ms, s.interval)
        for r in structs:
            got.by_key[r.exchange] = decoded.as_dict(r)
        kept = structs if s.keep is None else [r for r in structs if str(r.exchange) in s.keep]
        take = attrgetter(*fields)
        return Page(s.ref, [(when, str(r.exchange), *take(r)) for r in kept], None)
    if ls.whole_history and s.history_days:
        since = bar_open(now_ms - s.history_days * DAY_MS, "1d")
        structs = [r for r in structs if getattr(r, tf) >= since]
    take = attrgetter(tf, *fields)
    values = list(map(take, structs))
    _check_window(s, window, [v[0] for v in values])
    forming_at = bar_open(now_ms, s.interval)
    structs, values = _on_grid(s, structs, values, forming_at, got)
    times = [v[0] for v in values]
    closed_upto = max((t for t in times if t < forming_at), default=None)
    upto = -1 if closed_upto is None else closed_upto
    rows = [(*v, int(v[0] <= upto)) for v in values]
    if len(set(times)) != len(times):
        _note_duplicates(rows, got)
    detail: list[tuple[Any, ...]] = []
    if ls.detail is not None:
        d = ls.detail
        for r in structs:
            got.by_key[getattr(r, tf)] = decoded.as_dict(r)
            for item in getattr(r, d.field, None) or ():
                if isinstance(item, dict) and item.get(d.key_field) is not None:
                    detail.append((getattr(r, tf), str(item[d.key_field]),
                                   *(number_or_none(item.get(c.field)) for c in d.columns)))
    else:
        got.by_key.update(zip(times, rows, strict=True))
    return Page(s.ref, rows, closed_upto, detail, asked=window, forming_at=None if window is None else forming_at,
                wanted_from=wanted_from)


def _on_grid(s: Series, structs: list[Any], values: list[tuple[Any, ...]], forming_at: int,
             got: SeriesRows) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Rows whose time is a bar open of the interval and not after the forming bar; the others
    are refused (noted on `got`, a finding naming the series): a bar at :30 of an hourly series, or
    a daily ETF row shifted by 12 hours, would be a second bar of its hour or day."""
    bar = "1d" if s.spec.whole_history else s.interval
    step, origin = interval_ms(bar), bar_open(0, bar)
    if all((v[0] - origin) % step == 0 and v[0] <= forming_at for v in values):
        return structs, values
    keep = []
    for i, v in enumerate(values):
        if not on_grid(v[0], bar):
            got.off_grid.append(v[0])
        elif v[0] > forming_at:
            got.ahead.append(v[0])
        else:
            keep.append(i)
    return [structs[i] for i in keep], [values[i] for i in keep]


def _note_duplicates(rows: list[tuple[Any, ...]], got: SeriesRows) -> None:
    """A time sent twice in one answer with different values: a finding (the later row is kept)."""
    first: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        seen = first.setdefault(r[0], r)
        if seen is not r and seen[:-1] != r[:-1]:
            got.duplicates.append(r[0])
