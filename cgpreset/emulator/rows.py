"""Row builders of the emulated answers: windows, bar rounding, venue weights and the row shapes
real responses use (they differ from the docs' in places). Pure helpers of api.py and layered.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import cache
from typing import Any

from cgpreset.emulator.bodies import DEFAULT_LIMIT, Body
from cgpreset.emulator.data import Coin, coin_share
from cgpreset.plans import DAY_MS, bar_open, interval_ms

CHANGE_WINDOWS = (("5m", 5), ("15m", 15), ("30m", 30), ("1h", 60), ("4h", 240), ("12h", 720), ("24h", 1440))
CHANGE_WINDOWS_OI = (("5m", 5), ("15m", 15), ("30m", 30), ("1h", 60), ("4h", 240), ("24h", 1440))


def ceil_bar(ts: int, interval: str) -> int:
    start = bar_open(ts, interval)
    return start if start == ts else start + interval_ms(interval)


@cache
def listed_ms(listed: str) -> int:
    """A listing day (ISO date, UTC) in ms."""
    return int(datetime.fromisoformat(listed).replace(tzinfo=timezone.utc).timestamp() * 1000)


def window(params: Mapping[str, str], *, listed: str, now: int, days: int | None) -> tuple[list[int], int]:
    """The bar opens a history call returns, and the bar length.

    Bars align to the interval; `end_time` is exclusive; the newest bar is the forming one.
    Without `start_time` the newest `limit` bars of the window come back, with it the
    oldest `limit` bars from start_time on. Depth is cut to `days` of history (the plan's,
    plans.HISTORY_DAYS; None = since the listing).
    """
    interval = params["interval"]
    step = interval_ms(interval)
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    earliest = listed_ms(listed) if days is None else max(listed_ms(listed), now - days * DAY_MS)
    earliest = ceil_bar(earliest, interval)
    last = bar_open(now, interval)
    if params.get("end_time"):
        last = min(last, bar_open(int(params["end_time"]) - 1, interval))
    if params.get("start_time"):
        first = max(earliest, ceil_bar(int(params["start_time"]), interval))
        last = min(last, first + (limit - 1) * step)
    else:
        first = max(earliest, last - (limit - 1) * step)
    if first > last:
        return [], step
    return list(range(first, last + 1, step)), step


def split_at_forming(params: Mapping[str, str], now: int) -> tuple[dict[str, str], dict[str, str]] | None:
    """A start_time/end_time window that holds closed bars and the forming bar, as the params of its
    two parts: [start, forming bar) and [forming bar, end). None when it is not both, or when `limit`
    ends the answer before the forming bar.

    The closed part is the same on every call within the bar, so it can be kept; only the forming bar
    is computed again. Every bar is a function of its own open time (and of now, for the forming
    one), so the two answers joined are the whole window's (tests/test_emulator_cache.py).
    """
    start, end = params.get("start_time"), params.get("end_time")
    if not start or not end:
        return None
    interval = params["interval"]
    current = bar_open(now, interval)
    first = ceil_bar(int(start), interval)
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    if bar_open(int(end) - 1, interval) < current or first >= current:
        return None
    if (current - first) // interval_ms(interval) + 1 > limit:
        return None
    return {**params, "end_time": str(current)}, {**params, "start_time": str(current)}


def joined(closed: Body, forming: Body) -> Body | None:
    """One answer of a split window: the closed part's rows, then the forming part's, in the forming
    part's envelope; None unless both parts are successes with rows in a list."""
    if closed.get("code") != "0" or forming.get("code") != "0":
        return None
    if not isinstance(closed.get("data"), list) or not isinstance(forming.get("data"), list):
        return None
    return {**forming, "data": [*closed["data"], *forming["data"]]}


def exchange_list(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def venue_weight(coin: Coin, venues: list[str] | None) -> float:
    """The part of the coin's market that the listed exchanges hold (unknown names count 0)."""
    if venues is None:
        return 1.0
    return min(1.0, sum(coin_share(coin, ex) for ex in set(venues)))


def ohlc_row(bar: tuple[int, float, float, float, float], fmt: Callable[[float], str]) -> dict[str, Any]:
    t, o, h, lo, c = bar
    return {"time": t, "open": fmt(o), "high": fmt(h), "low": fmt(lo), "close": fmt(c)}


def oi_total_row(coin: Coin, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The `exchange: "All"` row: sums of the exchange rows (percent changes OI-weighted)."""
    total: dict[str, Any] = {"exchange": "All", "symbol": coin.code}
    usd = sum(r["open_interest_usd"] for r in rows) or 1.0
    for name in rows[0]:
        if name in ("exchange", "symbol"):
            continue
        if name.startswith("open_interest_change_percent"):
            total[name] = round(sum(r[name] * r["open_interest_usd"] for r in rows) / usd, 2)
        else:
            total[name] = round(sum(r[name] for r in rows), 4)
    return total


def liq_row(exchange: str, long_usd: float, short_usd: float) -> dict[str, Any]:
    """A liquidation exchange-list row, with the field names real responses use (`longLiquidation_usd`,
    where the docs say `long_liquidation_usd`)."""
    lo, sh = round(long_usd, 5), round(short_usd, 5)
    return {"exchange": exchange, "liquidation_usd": round(lo + sh, 5),
            "longLiquidation_usd": lo, "shortLiquidation_usd": sh}
