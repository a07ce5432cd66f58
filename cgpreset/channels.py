"""The WebSocket vocabulary: channel names and their checks, and the typed events.

Pure (no I/O). Foundation: the config model checks a coin's channels here and the store saves
these events, neither importing the stream (stream/events.py parses frames into them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

LIQUIDATION_CHANNELS = ("liquidation_orders", "liquidationOrders")
DEFAULT_CHANNEL = "liquidation_orders"
TRADE_PREFIXES = ("futures_trades@", "spot_trades@")
#: Trade channels a coin config may name bare: the stream fills in its funding pair and minimum.
BARE_TRADE_CHANNELS = ("futures_trades", "spot_trades")

# The documented channel names: {exchange}_{symbol}, the symbol may itself contain "_".
_PAIR = r"[^_@\s]+_[^@\s]+"
_TRADE_CHANNEL = re.compile(rf"^(?:futures|spot)_trades@{_PAIR}@\d+(?:\.\d+)?$")
_PATTERNS = {  # channel head -> (documented pattern, an example)
    "futures_trades": ("futures_trades@{exchange}_{symbol}@{minVolUsd}", "futures_trades@OKX_SOL-USDT-SWAP@10000"),
    "spot_trades": ("spot_trades@{exchange}_{symbol}@{minVolUsd}", "spot_trades@Binance_SOLUSDT@10000"),
}
CHANNEL_HELP = ", ".join([*LIQUIDATION_CHANNELS, *(pattern for pattern, _ in _PATTERNS.values())])

LIQUIDATION_SIDES = {1: "long", 2: "short"}  # WS docs: 1 = long liquidated, 2 = short liquidated
TRADE_SIDES = {1: "sell", 2: "buy"}  # WS docs for futures_trades

@dataclass(frozen=True)
class StreamEvent:
    """Fields shared by every pushed event; `side` is the label, `side_raw` what the server sent."""

    kind: ClassVar[str] = "event"

    channel: str
    exchange: str
    symbol: str
    base_asset: str
    price: float
    side: str
    side_raw: int | str
    volume_usd: float
    time: int  # ms since the epoch

    @property
    def key(self) -> tuple[str, str, str, int, str, float, float]:
        """Natural key for de-duplication; the channel name is not part of it (both variants match)."""
        return (self.kind, self.exchange, self.symbol, self.time, str(self.side_raw), self.price, self.volume_usd)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-line form: `type` first, then the fields."""
        return {"type": self.kind, **asdict(self)}


@dataclass(frozen=True)
class LiquidationEvent(StreamEvent):
    """One liquidation order; side "long" (raw 1) or "short" (raw 2)."""

    kind: ClassVar[str] = "liquidation"


@dataclass(frozen=True)
class TradeEvent(StreamEvent):
    """One large trade on a pair channel; side "sell" (raw 1) or "buy" (raw 2)."""

    kind: ClassVar[str] = "trade"


def channel_problem(name: str, *, bare_ok: bool = False) -> str | None:
    """Why `name` is not a channel CoinGlass documents, or None when it is one.

    Known: liquidation_orders, liquidationOrders, futures_trades@{exchange}_{symbol}@{minVolUsd},
    spot_trades@{exchange}_{symbol}@{minVolUsd} (futures_ticker is documented but not parsed: refused). With
    `bare_ok` (a coin config's stream.channels) a bare futures_trades / spot_trades is fine too.
    """
    if not name.strip():
        return "empty channel name"
    if name in LIQUIDATION_CHANNELS:
        return None
    if bare_ok and name in BARE_TRADE_CHANNELS:
        return None
    if _TRADE_CHANNEL.match(name):
        return None
    if name.startswith("futures_ticker@"):
        # Documented upstream (SDK-only payload, unverified): not parsed here, so never subscribed.
        return f"{name!r}: futures_ticker channels are not supported by cgpreset stream"
    head = name.split("@", 1)[0]
    if head in _PATTERNS:
        pattern, example = _PATTERNS[head]
        return f"{name!r} is not {pattern} (e.g. {example})"
    return f"unknown channel {name!r} (known: {CHANNEL_HELP})"


def subscriptions(channels: Iterable[str]) -> list[str]:
    """The channel names to send in `subscribe`: each asked channel, and a liquidation channel
    under both documented names (the docs cannot say which one the server speaks; the events of
    both parse alike and de-duplicate on their natural key, so a server that speaks both costs
    nothing but the duplicates counted)."""
    out: list[str] = []
    for name in channels:
        if name in LIQUIDATION_CHANNELS:
            out += [name, *(other for other in LIQUIDATION_CHANNELS if other != name)]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def channel_kind(channel: str) -> str | None:
    """"liquidation", "trade" or None for channels this parser does not understand."""
    if channel in LIQUIDATION_CHANNELS:
        return "liquidation"
    if channel.startswith(TRADE_PREFIXES):
        return "trade"
    return None
