"""The emulator's universe: coins, exchanges and instruments, as readable data.

The table is fixed; the seed only moves the values generated from it (see series.py).

Top-10 coins by open interest (base OI, USD; the market cycle scales all coins alike, and each
coin's own drift stays within a few percent, so this ranking holds at any time):

    1 BTC 60e9 · 2 ETH 32e9 · 3 SOL 5.0e9 · 4 XRP 4.2e9 · 5 HYPE 2.6e9 · 6 DOGE 2.1e9 ·
    7 SUI 1.3e9 · 8 BNB 1.15e9 · 9 ADA 0.95e9 · 10 LINK 0.8e9   (11th: ENA 0.6e9)

Gaps a resolver must handle among them: HYPE is not on OKX nor dYdX; BNB is not on Bybit nor
dYdX; SUI is not on dYdX. Small coins sit on one or two venues (kPEPE: Hyperliquid only;
FARTCOIN: Bybit + Hyperliquid; TAO: Binance + Hyperliquid; ZKJ: Bitget + Gate). PEPE has three
codes: `1000PEPE` (Binance, Bybit: `1000PEPEUSDT`), `PEPE` (OKX, Bitget, Gate) and `kPEPE`
(Hyperliquid). `supported-coins` lists coins in the sample's order, which is NOT the OI order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Exchanges with instruments in the emulator, and each one's usual share of a coin's OI.
EXCHANGE_WEIGHT: dict[str, float] = {
    "Binance": 0.30,
    "Bybit": 0.17,
    "OKX": 0.15,
    "Bitget": 0.12,
    "Gate": 0.09,
    "Hyperliquid": 0.13,
    "dYdX": 0.04,
}
EXCHANGES: tuple[str, ...] = tuple(EXCHANGE_WEIGHT)

#: What /api/futures/supported-exchanges lists (the 2026 docs example: more than we serve pairs for).
SUPPORTED_EXCHANGES: tuple[str, ...] = (
    "OKX", "Binance", "HTX", "Bitmex", "Bitfinex", "Bybit", "Deribit", "Gate", "Kraken", "KuCoin",
    "CME", "Bitget", "dYdX", "CoinEx", "BingX", "Coinbase", "Gemini", "Crypto.com", "Hyperliquid",
    "Bitunix", "MEXC", "WhiteBIT", "Aster", "Lighter", "EdgeX", "Drift", "Paradex", "Extended",
    "ApeX Omni",
)

#: The expiry of the dated futures listed for the biggest coins (Binance, OKX).
DATED_SUFFIX = "261225"

_ALL = "Binance OKX Bybit Bitget Gate Hyperliquid dYdX"
_CEX = "Binance OKX Bybit Bitget Gate"


@dataclass(frozen=True)
class Coin:
    """One CoinGlass coin code with its base price, open interest, market cap and venues."""

    code: str
    price: float  # USD, base level
    oi_usd: float  # total open interest across venues, base level
    market_cap_usd: float
    listed: str  # first day CoinGlass has data for it ("all" history starts here)
    venues: tuple[str, ...]
    inverse: bool = False  # coin-margined perps on Binance / OKX / Bybit
    dated: bool = False  # dated futures on Binance / OKX


def _coin(code: str, price: float, oi: float, mcap: float, listed: str, venues: str, flags: str = "") -> Coin:
    return Coin(code, price, oi, mcap, listed, tuple(venues.split()), "inverse" in flags, "dated" in flags)


#: code, price, OI, market cap, listed, venues, flags. Order = supported-coins order (as the sample).
COINS: tuple[Coin, ...] = (
    _coin("BTC", 95_000, 60.0e9, 1.88e12, "2020-01-01", _ALL, "inverse dated"),
    _coin("ETH", 3_300, 32.0e9, 3.98e11, "2020-01-01", _ALL, "inverse dated"),
    _coin("SOL", 180, 5.0e9, 8.6e10, "2020-09-01", _ALL, "inverse dated"),
    _coin("XRP", 2.3, 4.2e9, 1.32e11, "2020-01-01", _ALL, "inverse"),
    _coin("DOGE", 0.32, 2.1e9, 4.7e10, "2020-07-01", _ALL, "inverse"),
    _coin("SUI", 3.6, 1.3e9, 1.2e10, "2023-05-03", "Binance OKX Bybit Bitget Gate Hyperliquid"),
    _coin("HYPE", 32, 2.6e9, 1.07e10, "2024-11-29", "Binance Bybit Bitget Gate Hyperliquid"),
    _coin("ADA", 0.85, 0.95e9, 3.0e10, "2020-01-01", _ALL, "inverse"),
    _coin("BNB", 680, 1.15e9, 9.8e10, "2020-02-10", "Binance OKX Bitget Gate Hyperliquid", "inverse"),
    _coin("TRUMP", 11, 0.45e9, 2.2e9, "2025-01-18", "Binance OKX Bybit Bitget Gate Hyperliquid"),
    _coin("LINK", 19, 0.8e9, 1.2e10, "2020-01-17", _ALL, "inverse"),
    _coin("LTC", 105, 0.42e9, 7.9e9, "2020-01-09", _ALL, "inverse"),
    _coin("FARTCOIN", 1.1, 0.32e9, 1.1e9, "2024-12-02", "Bybit Hyperliquid"),
    _coin("1000PEPE", 0.0125, 0.58e9, 5.3e9, "2023-05-05", "Binance Bybit"),
    _coin("PEPE", 0.0000125, 0.18e9, 5.3e9, "2023-05-05", "OKX Bitget Gate"),
    _coin("AVAX", 28, 0.5e9, 1.15e10, "2020-09-23", _ALL),
    _coin("AAVE", 260, 0.55e9, 3.9e9, "2020-10-15", _ALL),
    _coin("ENA", 0.7, 0.6e9, 4.2e9, "2024-04-02", "Binance OKX Bybit Bitget Gate Hyperliquid"),
    _coin("ONDO", 1.1, 0.28e9, 3.4e9, "2024-01-18", _CEX),
    _coin("WIF", 1.2, 0.33e9, 1.2e9, "2024-01-19", "Binance OKX Bybit Bitget Gate Hyperliquid"),
    _coin("UNI", 9.5, 0.3e9, 5.7e9, "2020-09-18", _ALL),
    _coin("DOT", 5.2, 0.27e9, 8.0e9, "2020-08-21", _ALL, "inverse"),
    _coin("HBAR", 0.25, 0.24e9, 1.05e10, "2020-07-21", _CEX),
    _coin("TRX", 0.24, 0.31e9, 2.1e10, "2020-01-15", "Binance OKX Bybit Bitget Gate Hyperliquid", "inverse"),
    _coin("BCH", 440, 0.4e9, 8.7e9, "2020-01-01", _ALL, "inverse"),
    _coin("NEAR", 3.1, 0.21e9, 3.8e9, "2020-10-14", _ALL),
    _coin("1000BONK", 0.024, 0.15e9, 1.8e9, "2023-11-21", "Binance Bybit"),
    _coin("WLD", 1.6, 0.2e9, 1.5e9, "2023-07-24", "Binance OKX Bybit Bitget Hyperliquid"),
    _coin("TAO", 420, 0.19e9, 3.6e9, "2024-04-11", "Binance Hyperliquid"),
    _coin("FIL", 3.8, 0.12e9, 2.3e9, "2020-10-15", "Binance OKX Bybit Gate"),
    _coin("ZKJ", 0.35, 0.02e9, 0.1e9, "2024-06-20", "Bitget Gate"),
    _coin("kPEPE", 0.0125, 0.09e9, 5.3e9, "2023-05-06", "Hyperliquid"),
)

COIN_BY_CODE: dict[str, Coin] = {c.code: c for c in COINS}

#: The top-10 by base OI (see the module docstring); tests check the generated data agrees.
TOP10_BY_OI: tuple[str, ...] = tuple(c.code for c in sorted(COINS, key=lambda c: -c.oi_usd)[:10])


@dataclass(frozen=True)
class Instrument:
    """One exchange instrument, as /api/futures/supported-exchange-pairs lists it."""

    exchange: str
    instrument_id: str
    coin: str  # CoinGlass coin code
    quote_asset: str
    settlement_currency: str
    kind: str  # "perp" | "inverse" | "dated"
    max_leverage: int
    funding_interval: int  # hours
    price_tick_size: float

    def as_row(self) -> dict[str, Any]:
        """The row in the API's field order."""
        return {
            "instrument_id": self.instrument_id,
            "base_asset": self.coin,
            "quote_asset": self.quote_asset,
            "settlement_currency": self.settlement_currency,
            "max_leverage": self.max_leverage,
            "funding_interval": self.funding_interval,
            "price_tick_size": self.price_tick_size,
        }


def _ids(exchange: str, coin: Coin) -> list[tuple[str, str, str, str]]:
    """(instrument_id, quote, settlement, kind) for one coin on one venue: each venue's own style."""
    b = coin.code
    perp = {
        "Binance": (f"{b}USDT", "USDT", "USDT"),
        "OKX": (f"{b}-USDT-SWAP", "USDT", "USDT"),
        "Bybit": (f"{b}USDT", "USDT", "USDT"),
        "Bitget": (f"{b}USDT_UMCBL", "USDT", "USDT"),
        "Gate": (f"{b}_USDT", "USDT", "USDT"),
        "Hyperliquid": (b, "USD", "USDC"),
        "dYdX": (f"{b}-USD", "USD", "USDC"),
    }[exchange]
    out = [(*perp, "perp")]
    if coin.inverse:
        inverse = {"Binance": f"{b}USD_PERP", "OKX": f"{b}-USD-SWAP", "Bybit": f"{b}USD"}.get(exchange)
        if inverse:
            out.append((inverse, "USD", b, "inverse"))
    if coin.dated and exchange == "Binance":
        out.append((f"{b}USDT_{DATED_SUFFIX}", "USDT", "USDT", "dated"))
        out.append((f"{b}USD_{DATED_SUFFIX}", "USD", b, "dated"))
    if coin.dated and exchange == "OKX":
        out.append((f"{b}-USDT-{DATED_SUFFIX}", "USDT", "USDT", "dated"))
    return out


def _tick(price: float) -> float:
    return float(f"{10 ** (math.floor(math.log10(price)) - 5):.10g}")


def _build_instruments() -> dict[str, list[Instrument]]:
    table: dict[str, list[Instrument]] = {ex: [] for ex in EXCHANGES}
    for coin in COINS:
        big = coin.oi_usd >= 1e9
        for ex in coin.venues:
            for inst_id, quote, settle, kind in _ids(ex, coin):
                leverage = {"Hyperliquid": 40 if big else 10, "dYdX": 20 if big else 10}.get(ex, 100 if big else 50)
                funding = 1 if ex in ("Hyperliquid", "dYdX") else (8 if big or kind != "perp" else 4)
                table[ex].append(
                    Instrument(ex, inst_id, coin.code, quote, settle, kind, leverage, funding, _tick(coin.price))
                )
    return table


#: exchange -> instruments, in the order supported-exchange-pairs lists them.
INSTRUMENTS: dict[str, list[Instrument]] = _build_instruments()
PAIRS: dict[tuple[str, str], Instrument] = {
    (i.exchange, i.instrument_id): i for rows in INSTRUMENTS.values() for i in rows
}


def coin_share(coin: Coin, exchange: str) -> float:
    """The exchange's usual share of the coin's OI (0 when it does not list the coin)."""
    if exchange not in coin.venues:
        return 0.0
    weights = {ex: EXCHANGE_WEIGHT[ex] * (4.0 if coin.code == "HYPE" and ex == "Hyperliquid" else 1.0)
               for ex in coin.venues}
    return weights[exchange] / sum(weights.values())


def perp_symbol(coin: Coin, exchange: str) -> str:
    """The venue's main (USDT or USD) perpetual id for the coin, e.g. SOLUSDT, SOL-USDT-SWAP."""
    return _ids(exchange, coin)[0][0]

#: The two documented names of the WebSocket liquidation channel (the docs give both over time;
#: which one the server speaks is unknown); the emulator serves both unless told to serve one.
LIQ_CHANNELS: tuple[str, ...] = ("liquidationOrders", "liquidation_orders")
