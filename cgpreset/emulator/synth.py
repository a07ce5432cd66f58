"""Rows of any layer from its definition: plausible values from each field's type and unit (pure).

A value is a pure function of (seed, layer path, series, field, bar), like the hand-written
series (bars.py, market.py): a closed bar never changes, the forming bar moves with the clock.
The unit sets the scale, the coin (and the share of its market the series covers) the size:

    open/high/low/close   one OHLC bar per row (low <= open, close <= high; a bar opens where the
                          one before closed), sent as numeric strings as in the docs' examples
    percent               an OHLC rate near 0.007 (a funding rate); a `signed` one around 0;
                          otherwise 40-60, and a `*long_percent` / `*short_percent` pair sums to 100
                          (a ratio field of the same prefix is then long / short)
    ratio                 around 0.6-1.4          quote      the coin's price
    USD, coin, count      an amount per bar (taker-volume scale; a `signed` one around 0; the
                          forming bar so far); as an OHLC level: the coin's open interest
    index                 around 25-75            none       around 1

Two USD fields are levels, by name: a `price` one (coinbase_price, price_usd) is the coin's price
(the macro series': BTC's), and a signed `X` beside a percent `X_rate` is that rate of the row's
price (a premium: its USD gap and the gap as a rate agree).

Every other number is sent as a JSON number; `int` fields as whole numbers, `str` fields as the
series' symbol (a snapshot's `exchange` as its exchange), `bool` as false, a list as the
definition's nested rows (`detail`) or empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cgpreset.emulator import bars as series
from cgpreset.emulator.data import Coin
from cgpreset.emulator.market import VOLUME_PER_HOUR, Market
from cgpreset.layers import FieldSpec, LayerSpec
from cgpreset.layers.definition import CHECK_FIELDS
from cgpreset.plans import HOUR_MS, MINUTE_MS

OHLC = ("open", "high", "low", "close")
#: A USD field named as a price (coinbase_price, price_usd): a level, not an amount.
PRICE_FIELD = re.compile(r"(?:^|_)price(?:_|$)")
#: Units whose values add up over bars, exchanges and coins (the others are levels: averaged).
AMOUNTS = frozenset({"USD", "coin", "count"})
#: An OHLC bar's typical high/low excursion in one hour, as a fraction of its level, per unit.
WIGGLE = {"percent": 0.04, "USD": 0.002, "coin": 0.002, "quote": 0.004}
#: Nested rows per row of a list field with a `detail` (their keys: the layer's initials and 1..N).
DETAIL_ROWS = 4
LONG, SHORT = "long_percent", "short_percent"


@dataclass(frozen=True)
class Subject:
    """What a series covers: a coin, the share of the coin's market, the series' name and symbol."""

    coin: Coin
    share: float
    name: str  # names the random streams, e.g. "Binance:BTCUSDT", "BTC", "BTC@Binance,OKX", "*"
    symbol: str  # what a `str` field holds


@dataclass(frozen=True)
class Shape:
    """How a definition's row is made, worked out once per definition."""

    ohlc: FieldSpec | None  # the field whose unit the OHLC group takes (its `close`)
    long_short: tuple[tuple[str, str, str], ...]  # (prefix, long field, short field)
    ratio_of: dict[str, str]  # ratio field -> the long/short prefix it divides
    prices: tuple[str, ...] = ()  # USD fields that are the coin's price
    gap_of: tuple[tuple[str, str], ...] = ()  # (USD gap field, the percent rate field it is of the price)


@lru_cache(maxsize=256)
def shape(spec: LayerSpec) -> Shape:
    """The roles of a definition's fields (cached per definition: a catalogue can change)."""
    by_name = {f.name: f for f in spec.fields}
    ohlc = by_name["close"] if all(n in by_name for n in OHLC) else None
    prefixes = [f.name[: -len(LONG)] for f in spec.fields if f.name.endswith(LONG) and f.unit == "percent"]
    pairs = tuple((p, p + LONG, p + SHORT) for p in prefixes if p + SHORT in by_name)
    ratio_of = {f.name: p for f in spec.fields if f.unit == "ratio"
                for p, _, _ in pairs if f.name.startswith(p)}
    usd = [f for f in spec.fields if f.unit == "USD" and f.type == "number" and f.name not in OHLC]
    prices = tuple(f.name for f in usd if PRICE_FIELD.search(f.name))
    gaps = tuple((f.name, f.name + "_rate") for f in usd
                 if f.signed and getattr(by_name.get(f.name + "_rate"), "unit", None) == "percent")
    return Shape(ohlc, pairs, ratio_of, prices, gaps)


def elapsed(t: int, step: int, now: int) -> float:
    """1 for a closed bar; the part of the forming bar gone by."""
    return 1.0 if t + step <= now else min(1.0, max(0.0, (now - t) / step))


def number(value: float, f: FieldSpec) -> Any:
    """A value as the API sends the field: a whole number, a numeric string (OHLC) or a number."""
    if f.type == "int":
        return int(round(value))
    places = 2 if value == 0 else max(2, min(12, 5 - math.floor(math.log10(abs(value)))))
    return series.fmt_num(value, places) if f.name in OHLC else round(value, places)


class RowMaker:
    """The rows of one layer's series (one subject) for a seed."""

    def __init__(self, market: Market, spec: LayerSpec, subject: Subject) -> None:
        self.market = market
        self.spec = spec
        self.subject = subject
        self.shape = shape(spec)

    def key(self, *parts: object) -> int:
        return self.market.key("layer", self.spec.path, self.subject.name, *map(str, parts))

    # -- a row ---------------------------------------------------------------------------------

    def rows(self, opens: Iterable[int], step: int, now: int) -> list[dict[str, Any]]:
        """One row per bar open, the time field first (in seconds where the definition says so)."""
        divide = 1000 if self.spec.time_unit == "s" else 1
        out = []
        for t in opens:
            row: dict[str, Any] = {self.spec.time_field or "time": t // divide}
            row.update(self.values(t, step, now))
            out.append(row)
        return out

    def values(self, t: int, step: int, now: int, *, exchange: str | None = None) -> dict[str, Any]:
        """The fields of the bar opening at t, in the definition's order."""
        at = t if t + step <= now else now  # a level's value: at the bar's open, or now while forming
        raw: dict[str, Any] = {}
        if self.shape.ohlc is not None:
            raw.update(zip(OHLC, self._ohlc(self.shape.ohlc, t, step, now), strict=True))
        for prefix, long_name, short_name in self.shape.long_short:
            long = round(50.0 + 10.0 * series.level(self.key(prefix, "long"), at), 2)
            raw[long_name], raw[short_name] = long, round(100.0 - long, 2)
        for name, prefix in self.shape.ratio_of.items():
            raw[name] = round(raw[prefix + LONG] / raw[prefix + SHORT], 2)
        for f in self.spec.fields:
            if f.name in raw:
                continue
            if f.type == "str":
                raw[f.name] = exchange if f.name == "exchange" and exchange else self.subject.symbol
            elif f.type == "bool":
                raw[f.name] = False
            elif f.type == "list":
                raw[f.name] = self._nested(f, t, step, now)
            elif f.name in self.shape.prices:
                raw[f.name] = self.market.price(self.subject.coin, at)
            else:
                raw[f.name] = self.amount(f, t, step, now) if f.unit in AMOUNTS else self.level(f, at)
        for gap, rate in self.shape.gap_of:
            price = next((raw[p] for p in self.shape.prices), None) or self.market.price(self.subject.coin, at)
            raw[gap] = price * raw[rate] / 100
        self._sums(raw)
        return {f.name: number(raw[f.name], f) if f.type in ("number", "int") else raw[f.name]
                for f in self.spec.fields}

    # -- values by unit ------------------------------------------------------------------------

    def level(self, f: FieldSpec, t: int, *, ohlc: bool = False) -> float:
        """A level at t: a rate, a share, a ratio, a price, an index; an OHLC amount is the coin's OI."""
        lv = series.level(self.key(f.name), t)
        m, coin, unit = self.market, self.subject.coin, f.unit
        if unit == "percent":
            return 0.0068 + 0.0045 * lv if ohlc else 0.1 * lv if f.signed else 50.0 + 10.0 * lv
        if unit == "quote":
            return m.price(coin, t)
        if unit in ("USD", "coin"):
            oi = m.oi(coin, t) * self.subject.share
            return oi if unit == "USD" else oi / m.price(coin, t)
        if unit == "count":
            return 1000.0 * (1.0 + 0.5 * lv)
        if unit == "index":
            return 50.0 + 25.0 * lv
        if unit == "ratio":
            return 1.0 + 0.4 * lv
        return 0.3 * lv if f.signed else 1.0 + 0.3 * lv

    def amount(self, f: FieldSpec, t: int, step: int, now: int, salt: str = "") -> float:
        """An amount traded (or liquidated, or flowed) in the bar: positive, or around 0 if signed."""
        key = self.key(f.name, step, salt)
        n = t // step
        hours = step / HOUR_MS
        if f.unit == "count":
            return 200.0 * hours * series.lognormal(key, n, 0.35) * elapsed(t, step, now)
        m, coin = self.market, self.subject.coin
        activity = 1.0 + 0.5 * series.level(self.market.key("volact", coin.code), t)
        size = m.oi(coin, t) * self.subject.share * VOLUME_PER_HOUR * hours * activity
        size *= 0.25 * series.signed(key, n) if f.signed else series.lognormal(key, n, 0.35)
        size *= elapsed(t, step, now)
        return size / m.price(coin, t) if f.unit == "coin" else size

    def _ohlc(self, f: FieldSpec, t: int, step: int, now: int) -> tuple[float, float, float, float]:
        """A bar of the level: it opens at the level at t and closes at its end (or now, forming)."""
        o = self.level(f, t, ohlc=True)
        c = self.level(f, min(t + step, now), ohlc=True)
        key, n = self.key("hl"), t // MINUTE_MS
        spread = max(abs(o), abs(c)) * WIGGLE.get(f.unit or "", 0.01) * math.sqrt(step / HOUR_MS)
        spread *= elapsed(t, step, now)
        return o, max(o, c) + spread * series.unit(key, 2 * n), min(o, c) - spread * series.unit(key, 2 * n + 1), c

    def _nested(self, f: FieldSpec, t: int, step: int, now: int) -> list[dict[str, Any]]:
        """A list field's nested rows (the definition's `detail`), or an empty list."""
        detail = self.spec.detail
        if detail is None or detail.field != f.name:
            return []
        initials = "".join(w[0] for w in self.spec.id.split("_")).upper()
        rows = []
        for i in range(1, DETAIL_ROWS + 1):
            row: dict[str, Any] = {detail.key_field: f"{initials}{i}"}
            for c in detail.columns:
                nested = FieldSpec(c.field, c.type, c.unit, signed=c.signed)
                value = (self.amount(nested, t, step, now, salt=str(i)) if c.unit in AMOUNTS
                         else self.level(nested, t))
                row[c.field] = number(value, nested)
            rows.append(row)
        return rows

    def _sums(self, raw: dict[str, Any]) -> None:
        """Totals the definition's checks expect: a total of its long and short, a day of its tickers."""
        if "long_short_total" in self.spec.checks:
            total, *parts = CHECK_FIELDS["long_short_total"]
            raw[total] = sum(raw[p] for p in parts)
        detail = self.spec.detail
        if "etf_sum" in self.spec.checks and detail is not None:
            for name in CHECK_FIELDS["etf_sum"]:
                raw[name] = sum(float(r.get(name, 0)) for r in raw[detail.field])


def totals(rows: list[dict[str, Any]], spec: LayerSpec, exchange: str) -> dict[str, Any]:
    """One row over several: amounts added, levels averaged, the `exchange` field set (others kept)."""
    out: dict[str, Any] = {}
    for f in spec.fields:
        if f.type in ("number", "int"):
            values = [float(r[f.name]) for r in rows]
            out[f.name] = number(sum(values) / (1 if f.unit in AMOUNTS else max(1, len(values))), f)
        elif f.name == "exchange":
            out[f.name] = exchange
        else:
            out[f.name] = rows[0][f.name] if rows else ([] if f.type == "list" else "" if f.type == "str" else False)
    return out
