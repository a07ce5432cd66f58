"""Parse CoinGlass WebSocket text frames into events.

Both documented liquidation variants parse into one `LiquidationEvent`:

* `liquidationOrders`  with baseAsset, exName, price, side, symbol, time, volUsd
* `liquidation_orders` with base_asset, exchange, price, side, symbol, time, volume_usd

Trade channels (`futures_trades@{exchange}_{symbol}@{minVolUsd}`, `spot_trades@...`) parse into
`TradeEvent`. Parsing never raises: anything unexpected becomes an `UnknownFrame` with a reason,
which the stream logs and skips.

Event times are epoch milliseconds, as in REST. Given the stream's clock, an event whose time
cannot be that (before 2015: seconds read as milliseconds are January 1970; more than 5 minutes
ahead, or micro- or nanoseconds) is refused: never stored, printed or counted as an event.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# The vocabulary lives in channels.py (foundation); re-exported here, where the stream finds it.
from cgpreset.channels import BARE_TRADE_CHANNELS as BARE_TRADE_CHANNELS
from cgpreset.channels import CHANNEL_HELP as CHANNEL_HELP
from cgpreset.channels import DEFAULT_CHANNEL as DEFAULT_CHANNEL
from cgpreset.channels import LIQUIDATION_CHANNELS as LIQUIDATION_CHANNELS
from cgpreset.channels import LIQUIDATION_SIDES as LIQUIDATION_SIDES
from cgpreset.channels import TRADE_PREFIXES as TRADE_PREFIXES
from cgpreset.channels import TRADE_SIDES as TRADE_SIDES
from cgpreset.channels import LiquidationEvent as LiquidationEvent
from cgpreset.channels import StreamEvent as StreamEvent
from cgpreset.channels import TradeEvent as TradeEvent
from cgpreset.channels import channel_kind as channel_kind
from cgpreset.channels import channel_problem as channel_problem
from cgpreset.channels import subscriptions as subscriptions

#: The earliest event time taken (2015-01-01T00:00:00Z, ms): CoinGlass has nothing older.
EARLIEST_MS = 1_420_070_400_000
#: How far an event's time may run ahead of our clock (clocks on both sides drift a little).
MAX_AHEAD_MS = 5 * 60_000
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD")
_SUFFIXES = ("SWAP", "PERP", "PERPETUAL", "FUTURES")


@dataclass(frozen=True)
class Events:
    """A push frame: the events it carried and the reasons any items in it were skipped."""

    channel: str
    events: list[StreamEvent]
    skipped: list[str]
    #: (reason, which item) for events refused for their time (see time_problem)
    rejected: list[tuple[str, str]] = field(default_factory=list)


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


def time_problem(time_ms: int, now_ms: int) -> str | None:
    """Why an event time is not plausible epoch milliseconds at `now_ms` (None if it is). Pure."""
    if time_ms < EARLIEST_MS:
        return "time in seconds, not milliseconds" if time_ms < 10**11 else "time before 2015"
    if time_ms > 10**14:  # the year 5138
        return "time in micro- or nanoseconds, not milliseconds"
    if time_ms > now_ms + MAX_AHEAD_MS:
        return "time more than 5 min ahead of our clock"
    return None


def parse_frame(message: str | bytes, now_ms: int | None = None) -> Frame:
    """Classify one text frame; never raises. With `now_ms` (the stream's clock), events whose
    time is not plausible go to `Events.rejected` instead of `events`."""
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
    rejected: list[tuple[str, str]] = []
    for i, item in enumerate(data):
        try:
            event = _parse_item(kind, channel, item)
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{channel} data[{i}]: {exc}")
            continue
        why = None if now_ms is None else time_problem(event.time, now_ms)
        if why is None:
            events.append(event)
        else:
            rejected.append((why, f"{channel} data[{i}]: {event.symbol} at {event.time}"))
    return Events(channel, events, skipped, rejected)


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
