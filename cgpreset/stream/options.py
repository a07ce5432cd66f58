"""Stream options and counters: what to subscribe and filter, built from coin configs; output lines."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cgpreset.errors import ConfigError, UsageError
from cgpreset.models.config import CoinConfig
from cgpreset.redact import redact_url
from cgpreset.stream.events import (
    BARE_TRADE_CHANNELS,
    DEFAULT_CHANNEL,
    StreamEvent,
    channel_kind,
    channel_problem,
    subscriptions,
)

KEY_PARAM = "cg-api-key"


@dataclass
class StreamOptions:
    """What to stream and how; durations are seconds."""

    url: str  # the WebSocket URL without the key, e.g. wss://open-ws.coinglass.com/ws-api
    key: str | None
    channels: list[str] = field(default_factory=lambda: [DEFAULT_CHANNEL])
    coins: frozenset[str] | None = None  # keep events whose base asset is in here; None = all
    min_volume_usd: float = 0.0
    coin_min_volume_usd: dict[str, float] = field(default_factory=dict)  # per coin, wins over the above
    channel_coins: dict[str, str] = field(default_factory=dict)  # trade channel -> coin it belongs to
    ping_interval: float = 20.0
    dead_after: float | None = None  # None = 2 × ping_interval
    duration: float | None = None
    max_events: int | None = None
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    open_timeout: float = 10.0
    connect_attempts: int | None = None  # never connected after this many failed attempts: stop (None: never)
    liveness_every: float = 10.0  # seconds between liveness rows written to the store
    retention_days: float | None = None  # stored events older than this many days are deleted

    def __post_init__(self) -> None:
        if not self.channels:
            raise ConfigError("stream: no channels to subscribe")
        for i, name in enumerate(self.channels):
            problem = channel_problem(name)
            if problem:
                raise ConfigError(f"stream: channels[{i}]: {problem}")
        if self.ping_interval <= 0:
            raise ConfigError("stream: the ping interval must be positive")
        if self.dead_after is not None and self.dead_after <= self.ping_interval:
            raise ConfigError(
                f"stream: --dead-after ({self.dead_after:g} s) must be longer than the ping interval "
                f"({self.ping_interval:g} s), or no pong can ever arrive in time"
            )
        if self.coins is not None:
            self.coins = frozenset(c.upper() for c in self.coins)

    @property
    def subscriptions(self) -> list[str]:
        """What `subscribe` names: the channels, a liquidation one under both documented names."""
        return subscriptions(self.channels)

    @property
    def heartbeat_deadline(self) -> float:
        return self.dead_after if self.dead_after is not None else 2 * self.ping_interval

    @property
    def connect_url(self) -> str:
        """The URL with the key in its query: for `connect` only, never for display."""
        if not self.key:
            return self.url
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != KEY_PARAM]
        query.append((KEY_PARAM, self.key))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def display_url(self) -> str:
        return redact_url(self.connect_url)


@dataclass
class StreamStats:
    """Counters behind the liveness figures."""

    started: float
    frames: int = 0
    events: int = 0
    filtered_out: int = 0
    duplicates: int = 0
    skipped_items: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # events refused for their time, by reason
    unknown_frames: int = 0
    error_frames: int = 0
    connections: int = 0  # connections that opened (handshake done)
    connect_failures: int = 0  # attempts that did not open
    reconnects: int = 0  # connections that opened after the first one
    heartbeat_timeouts: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    stored: int = 0
    served_channels: set[str] = field(default_factory=set)  # channel names events actually came on
    last_event_at: float | None = None  # clock() when the last event arrived
    last_event_wall: float | None = None  # wall time of the same, for the store
    last_event_time: int | None = None  # the event's own `time` (ms)

    def summary(
        self, now: float, *, options: StreamOptions, stop_reason: str | None, stored: bool = False
    ) -> StreamSummary:
        """The liveness figures at `now` (the `--json` summary is its `as_dict()`)."""
        elapsed = max(0.0, now - self.started)
        per_minute = self.events / (elapsed / 60) if elapsed > 0 else 0.0
        age = None if self.last_event_at is None else round(max(0.0, now - self.last_event_at), 3)
        return StreamSummary(
            stop_reason=stop_reason, duration_s=round(elapsed, 3), url=options.display_url,
            channels=tuple(options.channels), subscribed=tuple(options.subscriptions),
            served_channels=tuple(sorted(self.served_channels)),
            coins=None if options.coins is None else tuple(sorted(options.coins)),
            events=self.events, events_per_minute=round(per_minute, 2), last_event_age_s=age,
            last_event_time=self.last_event_time, connections=self.connections, reconnects=self.reconnects,
            connect_failures=self.connect_failures, heartbeat_timeouts=self.heartbeat_timeouts,
            pings_sent=self.pings_sent, pongs_received=self.pongs_received, frames=self.frames,
            filtered_out=self.filtered_out, duplicates=self.duplicates, skipped_items=self.skipped_items,
            rejected=dict(sorted(self.rejected.items())), unknown_frames=self.unknown_frames,
            error_frames=self.error_frames,
            stored=self.stored if stored else None,
        )


@dataclass(frozen=True)
class StreamSummary:
    """How a stream run went: why it stopped, its events and its liveness figures.

    Read it by attribute (`summary.events`); `as_dict()` is the JSON document (`--json`'s last line,
    the store's stream_runs.summary); `summary["events"]` reads the same figure by its JSON name.
    """

    stop_reason: str | None  # duration, max_events, interrupted, terminated, output_closed, unreachable, ...
    duration_s: float
    url: str  # the key redacted
    channels: tuple[str, ...]
    subscribed: tuple[str, ...]
    served_channels: tuple[str, ...]  # the channel names events actually came on
    coins: tuple[str, ...] | None
    events: int
    events_per_minute: float
    last_event_age_s: float | None
    last_event_time: int | None  # the last event's own time (ms)
    connections: int
    reconnects: int
    connect_failures: int
    heartbeat_timeouts: int
    pings_sent: int
    pongs_received: int
    frames: int
    filtered_out: int
    duplicates: int
    skipped_items: int
    rejected: dict[str, int]  # events refused for an implausible time, by reason
    unknown_frames: int
    error_frames: int
    stored: int | None  # None without --store

    def as_dict(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return self.as_dict()[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self.__dataclass_fields__ else default


def options_from_configs(
    configs: Iterable[CoinConfig],
    *,
    channels: Iterable[str] = (),
    sources: Sequence[str] | None = None,
    channels_source: str = "--channel",
    **kwargs: Any,
) -> StreamOptions:
    """Stream options for a set of coin configs.

    Coins filter the events. Channels: the explicit `channels` if any, else the union of the
    configs' `stream.channels` (in order), else `liquidation_orders`. A bare `futures_trades` or
    `spot_trades` entry in a config asks for that coin's pair channel, built from
    `layers.funding` and `stream.min_volume_usd`: `futures_trades@OKX_SOL-USDT-SWAP@10000`.

    Every channel must be one CoinGlass documents: a bad explicit one is a UsageError naming
    `channels_source` (the CLI option), a bad config one a ConfigError naming the config (its
    entry in `sources`, else its coin) and `stream.channels[i]`.
    """
    configs = list(configs)
    explicit = list(channels)
    for i, name in enumerate(explicit):
        problem = channel_problem(name)
        if problem:
            where = channels_source if len(explicit) == 1 else f"{channels_source} #{i + 1}"
            raise UsageError(f"{where}: {problem}")
    wanted: list[str] = []
    channel_coins: dict[str, str] = {}
    for n, cfg in enumerate(configs):
        source = sources[n] if sources is not None else cfg.coin
        for i, name in enumerate(cfg.stream.channels):
            problem = channel_problem(name, bare_ok=True)
            full = _expand_channel(name, cfg, source) if problem is None else name
            problem = problem or channel_problem(full)
            if problem:
                raise ConfigError(f"{source}: stream.channels[{i}]: {problem}")
            if channel_kind(full) == "trade":
                channel_coins[full] = cfg.coin.upper()
            wanted.append(full)
    chosen = explicit or wanted or [DEFAULT_CHANNEL]
    coin_min: dict[str, float] = {}
    for cfg in configs:
        coin = cfg.coin.upper()
        coin_min[coin] = min(coin_min.get(coin, math.inf), cfg.stream.min_volume_usd)
    return StreamOptions(
        channels=list(dict.fromkeys(chosen)),
        coins=frozenset(coin_min) if configs else None,
        coin_min_volume_usd=coin_min,
        channel_coins=channel_coins,
        **kwargs,
    )


def _expand_channel(name: str, cfg: CoinConfig, source: str) -> str:
    if name not in BARE_TRADE_CHANNELS:
        return name
    primary = cfg.layers.primary_pair()
    if primary is None:
        raise ConfigError(f"{source}: stream channel {name!r} needs a pair layer (e.g. funding: exchange and "
                          "symbol) to take the pair from")
    pair = primary[1]
    return f"{name}@{pair.exchange}_{pair.symbol}@{int(cfg.stream.min_volume_usd)}"


def format_event(event: StreamEvent) -> str:
    """The compact live line: time (UTC), kind, coin, exchange, symbol, side, USD value, price."""
    stamp = time.strftime("%H:%M:%S", time.gmtime(event.time / 1000)) + f".{event.time % 1000:03d}"
    usd = f"${event.volume_usd:,.0f}"
    kind = "LIQ" if event.kind == "liquidation" else "TRADE"
    return (
        f"{stamp}  {kind:<5} {event.base_asset:<8} {event.exchange:<10} {event.symbol:<18} "
        f"{event.side:<5} {usd:>13} @ {event.price:g}"
    )


def format_summary(summary: StreamSummary) -> str:
    """One human line for stderr at the end of a run."""
    age = summary.last_event_age_s
    last = "no events" if age is None else f"last event {age:.1f} s ago"
    failed = summary.connect_failures
    refused = sum(summary.rejected.values())
    return (
        f"stream stopped ({summary.stop_reason}) after {summary.duration_s:.1f} s: "
        f"{summary.events} events ({summary.events_per_minute:.1f}/min)"
        + (f", {refused} refused ({'; '.join(f'{n}: {why}' for why, n in summary.rejected.items())})"
           if refused else "") + f", {last}, "
        f"{summary.reconnects} reconnects" + (f" ({failed} failed connects)" if failed else "") + ", "
        f"{summary.pings_sent} pings / {summary.pongs_received} pongs"
    )
