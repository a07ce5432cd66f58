"""Parse CoinGlass WebSocket text frames into events (spec §9).

Both documented liquidation variants parse into one `LiquidationEvent`:

* `liquidationOrders`  with baseAsset, exName, price, side, symbol, time, volUsd
* `liquidation_orders` with base_asset, exchange, price, side, symbol, time, volume_usd

Trade channels (`futures_trades@{exchange}_{symbol}@{minVolUsd}`, `spot_trades@...`) parse into
`TradeEvent`. Parsing never raises: anything unexpected becomes an `UnknownFrame` with a reason,
which the stream logs and skips.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

LIQUIDATION_CHANNELS = ("liquidation_orders", "liquidationOrders")
DEFAULT_CHANNEL = "liquidation_orders"
TRADE_PREFIXES = ("futures_trades@", "spot_trades@")
#: Trade channels a coin config may name bare: the stream fills in its funding pair and minimum.
BARE_TRADE_CHANNELS = ("futures_trades", "spot_trades")

# The documented channel names (spec §9): {exchange}_{symbol}, the symbol may itself contain "_".
_PAIR = r"[^_@\s]+_[^@\s]+"
_TRADE_CHANNEL = re.compile(rf"^(?:futures|spot)_trades@{_PAIR}@\d+(?:\.\d+)?$")
_PATTERNS = {  # channel head -> (documented pattern, an example)
    "futures_trades": ("futures_trades@{exchange}_{symbol}@{minVolUsd}", "futures_trades@OKX_SOL-USDT-SWAP@10000"),
    "spot_trades": ("spot_trades@{exchange}_{symbol}@{minVolUsd}", "spot_trades@Binance_SOLUSDT@10000"),
}
CHANNEL_HELP = ", ".join([*LIQUIDATION_CHANNELS, *(pattern for pattern, _ in _PATTERNS.values())])

LIQUIDATION_SIDES = {1: "long", 2: "short"}  # WS docs: 1 = long liquidated, 2 = short liquidated
TRADE_SIDES = {1: "sell", 2: "buy"}  # WS docs for futures_trades
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD")
_SUFFIXES = ("SWAP", "PERP", "PERPETUAL", "FUTURES")


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


@dataclass(frozen=True)
class Events:
    """A push frame: the events it carried and the reasons any items in it were skipped."""

    channel: str
    events: list[StreamEvent]
    skipped: list[str]


@dataclass(frozen=True)
class Pong:
    """The server's answer to our text `ping`."""


@dataclass(frozen=True)
class ErrorFrame:
    """A JSON frame with a non-zero `code`, e.g. {"code":"401","msg":"API key missing."}."""

    code: str
    msg: str

    @property
    def is_auth(self) -> bool:
        text = self.msg.lower()
        return self.code in ("401", "403") or "key" in text or "auth" in text or self.is_plan

    @property
    def is_plan(self) -> bool:
        text = self.msg.lower()
        return any(word in text for word in ("plan", "upgrade", "permission", "subscription"))


@dataclass(frozen=True)
class UnknownFrame:
    """Anything else; `reason` says why it was not understood."""

    reason: str
    text: str


Frame = Events | Pong | ErrorFrame | UnknownFrame


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
    under both documented names (spec §9 cannot say which one the server speaks; the events of
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


def parse_frame(message: str | bytes) -> Frame:
    """Classify one text frame; never raises."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            return UnknownFrame("binary frame that is not UTF-8", repr(message[:80]))
    text = message.strip()
    if text.lower() == "pong":
        return Pong()
    try:
        obj = json.loads(text)
    except ValueError:
        return UnknownFrame("not JSON", _clip(text))
    if not isinstance(obj, dict):
        return UnknownFrame("JSON but not an object", _clip(text))
    if "channel" not in obj and "code" in obj:
        if str(obj["code"]) != "0":
            return ErrorFrame(str(obj["code"]), str(obj.get("msg") or obj.get("message") or ""))
        return UnknownFrame("acknowledgement", _clip(text))
    channel = obj.get("channel")
    if not isinstance(channel, str):
        return UnknownFrame("no channel", _clip(text))
    kind = channel_kind(channel)
    if kind is None:
        return UnknownFrame(f"unsupported channel {channel!r}", _clip(text))
    data = obj.get("data")
    if isinstance(data, dict):  # be lenient: a single object instead of the documented array
        data = [data]
    if not isinstance(data, list):
        return UnknownFrame(f"{channel}: data is not an array", _clip(text))
    events: list[StreamEvent] = []
    skipped: list[str] = []
    for i, item in enumerate(data):
        try:
            events.append(_parse_item(kind, channel, item))
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{channel} data[{i}]: {exc}")
    return Events(channel, events, skipped)


def _parse_item(kind: str, channel: str, item: Any) -> StreamEvent:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    exchange = _first(item, "exchange", "exName", "ex", "exchangeName")
    symbol = _first(item, "symbol", "pair")
    if kind == "trade" and (exchange is None or symbol is None):
        ch_exchange, ch_symbol = _trade_channel_pair(channel)
        exchange = exchange if exchange is not None else ch_exchange
        symbol = symbol if symbol is not None else ch_symbol
    if exchange is None:
        raise KeyError("exchange")
    if symbol is None:
        raise KeyError("symbol")
    base = _first(item, "base_asset", "baseAsset", "base") or guess_base_asset(str(symbol))
    side_raw = _first(item, "side")
    if side_raw is None:
        raise KeyError("side")
    sides = LIQUIDATION_SIDES if kind == "liquidation" else TRADE_SIDES
    side = _side_label(side_raw, sides)
    price = _number(_required(item, "price"), "price")
    volume = _number(_required(item, "volume_usd", "volUsd", "vol_usd", "volumeUsd"), "volume_usd")
    time_ms = _required(item, "time", "ts", "timestamp")
    if isinstance(time_ms, bool) or not isinstance(time_ms, (int, float, str)):
        raise TypeError(f"time: {time_ms!r}")
    cls = LiquidationEvent if kind == "liquidation" else TradeEvent
    return cls(
        channel=channel,
        exchange=str(exchange),
        symbol=str(symbol),
        base_asset=str(base).upper(),
        price=price,
        side=side,
        side_raw=side_raw,
        volume_usd=volume,
        time=int(float(time_ms)),
    )


def guess_base_asset(symbol: str) -> str:
    """Best-effort base asset of an exchange instrument id: BTCUSDT → BTC, SOL-USDT-SWAP → SOL."""
    s = symbol.upper()
    for sep in ("-", "_", "/"):
        if sep in s:
            return s.split(sep, 1)[0]
    for suffix in _SUFFIXES:
        s = s.removesuffix(suffix)
    for quote in _QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return s


def _trade_channel_pair(channel: str) -> tuple[str | None, str | None]:
    # futures_trades@{exchange}_{symbol}@{minVolUsd}; the symbol may itself contain "_".
    parts = channel.split("@")
    if len(parts) < 2 or "_" not in parts[1]:
        return None, None
    exchange, symbol = parts[1].split("_", 1)
    return exchange, symbol


def _first(item: dict[str, Any], *names: str) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _required(item: dict[str, Any], *names: str) -> Any:
    value = _first(item, *names)
    if value is None:
        raise KeyError(names[0])
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name}: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: {value!r}")
    return number


def _side_label(raw: Any, sides: dict[int, str]) -> str:
    if isinstance(raw, bool):
        raise TypeError(f"side: {raw!r}")
    if isinstance(raw, (int, float)) or (isinstance(raw, str) and raw.strip().isdigit()):
        label = sides.get(int(raw))
        if label is None:
            raise ValueError(f"side: {raw!r}")
        return label
    if isinstance(raw, str) and raw.lower() in sides.values():
        return raw.lower()
    raise ValueError(f"side: {raw!r}")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
