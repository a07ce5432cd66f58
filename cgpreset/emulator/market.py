"""The emulator's market model: OI, prices, funding, liquidations and taker volume over time.

Every function is pure in (seed, names, time) and cheap, so a request can generate thousands of
bars on the fly. Scales follow the data table (data.py); shapes follow real series: OI drifts
slowly, funding hovers near 0.01 %/8h, liquidations are bursty and heavy-tailed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cgpreset.emulator import bars as series
from cgpreset.emulator.data import Coin, Instrument, coin_share
from cgpreset.plans import HOUR_MS

#: How far a coin's own OI drifts around its base level (kept small so the top-10 is stable).
OI_DRIFT = 0.035
#: Liquidations per hour as a fraction of OI, and taker volume per hour as a fraction of OI.
LIQ_PER_HOUR = 4e-5
VOLUME_PER_HOUR = 0.02


@dataclass(frozen=True)
class Market:
    """Series generators for one seed."""

    seed: int

    @lru_cache(maxsize=4096)  # noqa: B019 - a handful of Market objects live as long as the process
    def key(self, *parts: str) -> int:
        return series.stream_key(self.seed, *parts)

    # -- levels ------------------------------------------------------------------------------

    def price(self, coin: Coin, t: int) -> float:
        """The coin's USD price at t."""
        drift = 1.0 + 0.12 * series.level(self.key("price", coin.code), t)
        return coin.price * series.market_factor(self.seed, t) * drift

    def oi(self, coin: Coin, t: int) -> float:
        """The coin's total OI in USD at t, across all its venues."""
        drift = 1.0 + OI_DRIFT * series.level(self.key("oi", coin.code), t)
        return coin.oi_usd * series.market_factor(self.seed, t) * drift

    def oi_on(self, coin: Coin, exchange: str, t: int) -> float:
        """OI of the coin on one exchange (its share moves a little over time)."""
        share = coin_share(coin, exchange)
        if share == 0.0:
            return 0.0
        wobble = 1.0 + 0.06 * series.level(self.key("share", coin.code, exchange), t)
        return self.oi(coin, t) * share * wobble

    def funding(self, inst: Instrument, t: int) -> float:
        """Funding rate in percent per funding interval (e.g. 0.0075 = 0.0075 %)."""
        lvl = series.level(self.key("funding", inst.exchange, inst.instrument_id), t)
        rate = (0.0068 + 0.0045 * lvl) * inst.funding_interval / 8
        return min(rate, 0.01 * max(1, inst.funding_interval) / 8)

    # -- per-bar flows -----------------------------------------------------------------------

    def liquidations(self, coin: Coin, t: int, step: int, now: int) -> tuple[float, float]:
        """(long, short) USD liquidated in the bar opening at t (a forming bar counts so far)."""
        key = self.key("liq", coin.code, str(step))
        n = t // step
        hours = step / HOUR_MS
        activity = 1.0 + 0.6 * series.level(self.key("liqact", coin.code), t)
        total = self.oi(coin, t) * LIQ_PER_HOUR * hours * activity * series.lognormal(key, n, 1.0)
        long_share = min(1.0, max(0.0, 0.5 + 0.45 * series.signed(key + 1, n)))
        if step <= 5 * 60_000 and series.unit(key + 2, n) < 0.15:
            long_share = 0.0 if long_share < 0.5 else 1.0  # quiet minutes: one side only
        total *= _elapsed(t, step, now)
        return round(total * long_share, 5), round(total * (1.0 - long_share), 5)

    def taker(self, coin: Coin, t: int, step: int, now: int) -> tuple[float, float]:
        """(buy, sell) taker volume in USD in the bar opening at t."""
        key = self.key("taker", coin.code, str(step))
        n = t // step
        activity = 1.0 + 0.5 * series.level(self.key("volact", coin.code), t)
        total = self.oi(coin, t) * VOLUME_PER_HOUR * (step / HOUR_MS) * activity
        total *= series.lognormal(key, n, 0.35) * _elapsed(t, step, now)
        buy_share = 0.5 + 0.08 * series.signed(key + 1, n)
        return round(total * buy_share, 4), round(total * (1.0 - buy_share), 4)

    def hourly_liquidations(self, coin: Coin, now: int, hours: int) -> list[tuple[int, float, float]]:
        """(hour open, long, short) for the last `hours` hourly bars, the forming one last."""
        current = now - now % HOUR_MS
        opens = range(current - (hours - 1) * HOUR_MS, current + 1, HOUR_MS)
        return [(t, *self.liquidations(coin, t, HOUR_MS, now)) for t in opens]

    def liquidations_by_exchange(self, coin: Coin, now: int, hours: int) -> dict[str, tuple[float, float]]:
        """exchange -> (long, short) USD liquidated over the last `hours` hours (rolling)."""
        bars = self.hourly_liquidations(coin, now, hours)
        out: dict[str, tuple[float, float]] = {}
        for ex in coin.venues:
            share = coin_share(coin, ex)
            key = self.key("liqx", coin.code, ex)
            longs = sum(lo * share * series.lognormal(key, t // HOUR_MS, 0.5) for t, lo, _ in bars)
            shorts = sum(sh * share * series.lognormal(key + 1, t // HOUR_MS, 0.5) for t, _, sh in bars)
            out[ex] = (round(longs, 5), round(shorts, 5))
        return out


def _elapsed(t: int, step: int, now: int) -> float:
    """1 for a closed bar; the elapsed fraction for the forming bar."""
    if t + step <= now:
        return 1.0
    return min(1.0, max(0.0, (now - t) / step))


def change_pct(new: float, old: float) -> float:
    """Percent change, rounded like the API (2 places)."""
    if old == 0:
        return 0.0
    return round((new / old - 1.0) * 100.0, 2)

