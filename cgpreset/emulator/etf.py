"""US spot Bitcoin ETF daily flows since launch (2024-01-11), one row per US trading day."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cgpreset.emulator import bars as series
from cgpreset.emulator.data import COIN_BY_CODE
from cgpreset.emulator.market import Market
from cgpreset.plans import DAY_MS

LAUNCH_MS = 1704931200000  # 2024-01-11 00:00 UTC
GRAYSCALE_MINI_MS = 1722384000000  # 2024-07-31: the `BTC` ticker starts

#: ticker -> typical daily net flow in USD (sign and size), for the generated days.
TICKERS: dict[str, float] = {
    "GBTC": -60e6, "IBIT": 150e6, "FBTC": 40e6, "ARKB": 8e6, "BITB": 6e6, "BTCO": 1e6,
    "HODL": 2e6, "BRRR": 0.5e6, "EZBC": 0.8e6, "BTCW": 0.3e6, "DEFI": 0.0, "BTC": 5e6,
}

#: The first day as the real capture shows it (tests/fixtures/etf_bitcoin_flow-history.json), plus
#: the tickers that capture left out (values made up so that flow_usd is their sum, as on every day).
FIRST_DAY: dict[str, Any] = {
    "timestamp": LAUNCH_MS,
    "flow_usd": 655300000,
    "price_usd": 46663,
    "etf_flows": [
        {"etf_ticker": "GBTC", "flow_usd": -95100000},
        {"etf_ticker": "IBIT", "flow_usd": 111700000},
        {"etf_ticker": "FBTC", "flow_usd": 227000000},
        {"etf_ticker": "ARKB", "flow_usd": 65300000},
        {"etf_ticker": "BITB", "flow_usd": 237900000},
        {"etf_ticker": "BTCO", "flow_usd": 17400000},
        {"etf_ticker": "HODL", "flow_usd": 10600000},
        {"etf_ticker": "BRRR", "flow_usd": 28700000},
        {"etf_ticker": "EZBC", "flow_usd": 50100000},
        {"etf_ticker": "BTCW", "flow_usd": 1700000},
        {"etf_ticker": "DEFI", "flow_usd": 0},
    ],
}


def etf_rows(market: Market, now: int) -> list[dict[str, Any]]:
    """Every trading day from launch to today (weekends skipped), oldest first."""
    today = now - now % DAY_MS
    return [_day(market.seed, t) for t in range(LAUNCH_MS, today + 1, DAY_MS) if _is_weekday(t)]


def _is_weekday(t: int) -> bool:
    return (t // DAY_MS + 3) % 7 < 5  # 1970-01-01 was a Thursday (index 3 from Monday)


@lru_cache(maxsize=8192)
def _day(seed: int, t: int) -> dict[str, Any]:
    if t == LAUNCH_MS:
        return FIRST_DAY
    key = series.stream_key(seed, "etf")
    n = t // DAY_MS
    mood = series.smooth(key, t, 9 * DAY_MS) + 0.5 * series.signed(key + 1, n)
    flows = []
    for i, (ticker, typical) in enumerate(TICKERS.items()):
        if ticker == "BTC" and t < GRAYSCALE_MINI_MS:
            continue
        noise = series.signed(key + 10 + i, n)
        value = typical * (1.0 + 1.5 * mood) + abs(typical or 1e6) * 1.2 * noise
        if series.unit(key + 40 + i, n) < 0.35:
            value = 0.0  # quiet days: many small funds report no flow
        flows.append({"etf_ticker": ticker, "flow_usd": int(round(value / 1e5) * 1e5)})
    price = Market(seed).price(COIN_BY_CODE["BTC"], t)
    return {
        "timestamp": t,
        "flow_usd": sum(f["flow_usd"] for f in flows),
        "price_usd": round(price),
        "etf_flows": flows,
    }
