"""Stream CoinGlass WebSocket events: subscribe, heartbeat, reconnect with backoff, liveness.

`run_stream(options, ...)` is the asyncio core; stream/runner.py runs it as a process (signals),
and `cgpreset stream` is a thin wrapper around that.

* Heartbeat: a text `ping` every `ping_interval` seconds. When nothing at all (no `pong`, no
  event) arrives for `dead_after` seconds (default 2 × interval), the connection is dead.
* Reconnect: after a drop, an error or a dead heartbeat, wait `backoff_initial · 2**n` seconds
  (capped at `backoff_max`, jittered) and connect again, then resubscribe every channel. `n` goes
  back to 0 after a healthy connection (one that delivered an event or a pong). `reconnects`
  counts connections that succeeded after the first; failed attempts are `connect_failures`.
* Auth: HTTP 401/403 on the handshake, an error frame about the key or plan, or a close with
  1008 (policy violation) before any event on that connection raise AuthError / PlanError at
  once; there is no reconnect loop on a bad key.
* The key only ever travels in the URL handed to `connect`; all else uses the redacted URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from cgpreset.errors import AuthError, ConfigError, OutputError, PlanError
from cgpreset.redact import RedactingLoggerAdapter, redact
from cgpreset.store import StreamSink
from cgpreset.stream import closing
from cgpreset.stream.closing import POLICY_VIOLATION, HeartbeatTimeout, close_info, default_jitter, policy_error
from cgpreset.stream.events import (
    LIQUIDATION_CHANNELS,
    ErrorFrame,
    Events,
    Pong,
    StreamEvent,
    TradeEvent,
    UnknownFrame,
    parse_frame,
)
from cgpreset.stream.metrics import MALFORMED, StreamMetrics
from cgpreset.stream.options import StreamOptions, StreamStats, StreamSummary
from cgpreset.stream.retention import Retention

log = logging.getLogger(__name__)

_DEDUP_WINDOW = 10_000  # recent event keys remembered to drop repeats (both channel variants, replays)


Connect = Callable[..., Awaitable[Any]]
OnEvent = Callable[[StreamEvent], None]


async def run_stream(
    options: StreamOptions,
    *,
    on_event: OnEvent | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    connect: Connect = websockets.connect,
    jitter: Callable[[float], float] = default_jitter,
    wall: Callable[[], float] = time.time,
    store: StreamSink | None = None,
    stop: asyncio.Event | None = None,
    metrics: StreamMetrics | None = None,
    on_liveness: Callable[[StreamSummary], None] | None = None,
) -> StreamSummary:
    """Stream until `duration`, `max_events` or `stop` is set; return the summary.

    `clock` must be monotonic and, with a real connection, real time (the heartbeat waits on it);
    `sleep` is only used for the backoff between connections. `metrics` are updated as frames
    arrive (stream/metrics.py). `on_liveness` gets the figures at each liveness point (every
    `liveness_every` s while connected, after each connection; stream/digest.py logs from them).
    Raises AuthError / PlanError when the server refuses the key, ConfigError for an unusable URL.
    """
    return await _Session(options, on_event, clock, sleep, connect, jitter, wall, store, stop, metrics,
                          on_liveness).run()


class _Session:
    """One `run_stream` call: the reconnect loop, one connection at a time."""

    def __init__(
        self,
        options: StreamOptions,
        on_event: OnEvent | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
        connect: Connect,
        jitter: Callable[[float], float],
        wall: Callable[[], float],
        store: StreamSink | None,
        stop: asyncio.Event | None,
        metrics: StreamMetrics | None,
        on_liveness: Callable[[StreamSummary], None] | None = None,
    ) -> None:
        self.o = options
        self.on_event = on_event
        self.clock = clock
        self.sleep = sleep
        self.connect = connect
        self.jitter = jitter
        self.wall = wall
        self.store = store
        self.stop = stop or asyncio.Event()
        self.metrics = metrics or StreamMetrics()  # kept even when nobody serves them: no branches
        self.on_liveness = on_liveness
        self.stats = StreamStats(started=clock())
        self.stop_at = None if options.duration is None else self.stats.started + options.duration
        self.stop_reason: str | None = None
        self.recent: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        #: The liquidation channel as asked: events pushed under the other documented name carry it.
        self.liquidation_label = next((c for c in options.channels if c in LIQUIDATION_CHANNELS), None)
        self.ws_logger = RedactingLoggerAdapter(logging.getLogger("cgpreset.stream.ws"), options.key)
        self.logged_reasons: set[str] = set()
        self.last_liveness_write = self.stats.started
        self.retention = Retention(options.retention_days, clock, wall)  # --retention-days
        self._stop_waiter: asyncio.Future[Any] | None = None
        self.conn_healthy = False  # the current connection delivered an event or a pong
        self.conn_events = 0  # events (before filtering) on the current connection

    # -- the reconnect loop ------------------------------------------------------------------

    async def run(self) -> StreamSummary:
        if self.store is not None:
            self.store.start_run(
                url=self.o.display_url,
                channels=list(self.o.channels),
                coins=None if self.o.coins is None else sorted(self.o.coins),
                now=self.wall(),
            )
        self._stop_waiter = asyncio.ensure_future(self.stop.wait())
        status = "failed"
        try:
            await self._loop()
            status = "stopped"
        except (AuthError, PlanError):
            status = "auth_error"
            raise
        finally:
            self._stop_waiter.cancel()
            self._write_liveness(status=status)
        return self.summary()

    def summary(self) -> StreamSummary:
        return self.stats.summary(
            self.clock(), options=self.o, stop_reason=self.stop_reason, stored=self.store is not None
        )

    async def _loop(self) -> None:
        failures = 0
        first = True
        while not self._check_stop():
            if not first:
                delay = self.jitter(min(self.o.backoff_max, self.o.backoff_initial * 2**failures))
                failures = min(failures + 1, 30)
                log.info("reconnecting to %s in %.2f s", self.o.display_url, delay)
                if not await self._pause(delay):
                    break
            first = False
            healthy = await self._connection()
            self._write_liveness()
            if healthy:
                failures = 0
            limit = self.o.connect_attempts
            if limit is not None and not self.stats.connections and self.stats.connect_failures >= limit:
                self.stop_reason = "unreachable"  # never connected: the caller exits 3, not a reconnect loop
                log.warning("%s not reached in %d attempt(s); giving up", self.o.display_url, limit)
                break

    def _check_stop(self) -> bool:
        if self.stop_reason is None:
            if self.stop.is_set():
                self.stop_reason = "interrupted"
            elif self.stop_at is not None and self.clock() >= self.stop_at:
                self.stop_reason = "duration"
        return self.stop_reason is not None

    async def _pause(self, delay: float) -> bool:
        """Back off for `delay` seconds unless the run is told to stop first; False = stop."""
        if self.stop_at is not None:
            delay = min(delay, self.stop_at - self.clock())
        if delay > 0:
            assert self._stop_waiter is not None
            sleeper = asyncio.ensure_future(self.sleep(delay))
            await asyncio.wait({sleeper, self._stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
        return not self._check_stop()

    # -- one connection ----------------------------------------------------------------------

    async def _connection(self) -> bool:
        """Connect, subscribe and read until the connection ends or the run stops.

        Returns whether the connection was healthy (delivered an event or a pong).
        """
        url = self.o.display_url
        assert self._stop_waiter is not None

        async def open_connection() -> Any:
            return await self.connect(
                self.o.connect_url,
                ping_interval=None,  # our own text-ping heartbeat replaces protocol pings
                open_timeout=self.o.open_timeout,
                close_timeout=min(2.0, self.o.heartbeat_deadline),
                logger=self.ws_logger,
            )

        opening = asyncio.ensure_future(open_connection())
        # Ctrl-C or --duration must not wait for a slow handshake (open_timeout is 10 s).
        left = None if self.stop_at is None else max(0.0, self.stop_at - self.clock())
        await asyncio.wait({opening, self._stop_waiter}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        if not opening.done():
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            self._check_stop()
            return False
        try:
            ws = opening.result()
        except InvalidStatus as exc:
            closing.raise_for_status(exc.response.status_code)
            self.stats.connect_failures += 1
            log.warning("connect to %s refused: HTTP %s", url, exc.response.status_code)
            return False
        except InvalidURI:
            raise ConfigError(f"invalid WebSocket URL: {url}") from None
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            self.stats.connect_failures += 1
            log.warning("connect to %s failed: %s", url, self._safe(exc))
            return False

        self.stats.connections += 1
        if self.stats.connections > 1:  # a re-connection; failed attempts are connect_failures
            self.stats.reconnects += 1
        self.metrics.connected(reconnect=self.stats.connections > 1)
        self.conn_healthy = False
        self.conn_events = 0
        log.info("connected to %s (connection %d)", url, self.stats.connections)
        try:
            await ws.send(json.dumps({"method": "subscribe", "channels": self.o.subscriptions}))
            log.info("subscribed to %s", ", ".join(self.o.subscriptions))
            await self._read(ws)
        except ConnectionClosed as exc:
            await self._drain(ws)  # an error frame sent just before the close explains it
            code, reason = close_info(exc)
            if code == POLICY_VIOLATION and self.conn_events == 0:
                raise policy_error(reason) from None
            log.warning("connection closed (code %s%s); reconnecting", code, f": {reason}" if reason else "")
        except HeartbeatTimeout as exc:
            self.stats.heartbeat_timeouts += 1
            log.warning("%s; reconnecting", exc)
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            log.warning("connection error: %s; reconnecting", self._safe(exc))
        finally:
            self.metrics.disconnected()
            await self._close(ws)
        return self.conn_healthy

    async def _drain(self, ws: Any) -> None:
        """Handle frames still buffered on a closed connection (raises AuthError on an auth frame)."""
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except (ConnectionClosed, TimeoutError, OSError):
                return
            if self._handle(message):
                self.conn_healthy = True

    async def _read(self, ws: Any) -> None:
        """The message loop with heartbeat; returns when the run stops, raises when the connection ends."""
        assert self._stop_waiter is not None
        interval = self.o.ping_interval
        deadline = self.o.heartbeat_deadline
        last_rx = self.clock()
        next_ping = last_rx + interval
        recv: asyncio.Future[Any] | None = None
        try:
            while True:
                if self._check_stop():
                    return
                now = self.clock()
                if now >= self.last_liveness_write + self.o.liveness_every:  # the wake-up's sum: no spin
                    self._write_liveness()
                if now >= last_rx + deadline:  # the same sum as the wake-up below: no spin at the edge
                    raise HeartbeatTimeout(f"no pong or message for {now - last_rx:.2f} s: connection dead")
                if now >= next_ping:
                    await ws.send("ping")
                    self.stats.pings_sent += 1
                    next_ping += interval
                    if next_ping <= now:  # fell behind (slow loop): do not burst
                        next_ping = now + interval
                wake = min(next_ping, last_rx + deadline, self.last_liveness_write + self.o.liveness_every,
                           self.stop_at if self.stop_at is not None else math.inf)
                if recv is None:
                    recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait(
                    {recv, self._stop_waiter},
                    timeout=max(0.0, wake - now),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if recv not in done:
                    continue
                message, recv = recv.result(), None
                last_rx = self.clock()
                if self._handle(message):
                    self.conn_healthy = True
        finally:
            if recv is not None:
                recv.cancel()

    def _handle(self, message: str | bytes) -> bool:
        """Count and dispatch one frame; returns whether it was a sign of life (a pong or events)."""
        self.stats.frames += 1
        frame = parse_frame(message, now_ms=int(self.wall() * 1000))
        if isinstance(frame, Pong):
            self.stats.pongs_received += 1
            return True
        if isinstance(frame, ErrorFrame):
            self.stats.error_frames += 1
            if frame.is_plan:
                raise PlanError(f"WebSocket refused: {frame.msg}", code=frame.code)
            if frame.is_auth:
                raise AuthError(f"WebSocket refused the API key: {frame.msg}", code=frame.code)
            log.warning("server error frame (code %s): %s", frame.code, redact(frame.msg, self.o.key))
            return False
        if isinstance(frame, UnknownFrame):
            self.stats.unknown_frames += 1
            self._log_once(frame.reason, "skipping frame (%s): %s", frame.reason, redact(frame.text, self.o.key))
            return False
        assert isinstance(frame, Events)
        for reason in frame.skipped:
            self.stats.skipped_items += 1
            self.metrics.rejected(MALFORMED)
            self._log_once(reason.split(":", 1)[-1], "skipping item: %s", reason)
        for reason, item in frame.rejected:  # not stored nor printed; the first of each reason is a warning
            self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
            self._log_once(reason, "refusing event (%s): %s", reason, item)
        if frame.events:
            self.stats.served_channels.add(frame.channel)
        self.conn_events += len(frame.events)
        self._deliver(frame.events)
        return True

    def _deliver(self, events: Iterable[StreamEvent]) -> None:
        """De-duplicate (first: the same event on both liquidation names counts once, kept or
        filtered), filter, hand out and store. Events that passed the filter are stored even when
        handing them out fails, so the store and the liveness figures never lose one."""
        kept: list[StreamEvent] = []
        received = self.wall()
        try:
            for event in events:
                event = self._with_coin(event)
                if event.key in self.recent:
                    self.stats.duplicates += 1
                    continue
                self.recent[event.key] = None
                if len(self.recent) > _DEDUP_WINDOW:
                    self.recent.popitem(last=False)
                if not self._wanted(event):
                    self.stats.filtered_out += 1
                    continue
                kept.append(event)
                self.stats.events += 1  # counted as it is stored (below), even if handing it out fails
                self.metrics.accepted(event.exchange)
                if self.on_event is not None and not self._emit(event):
                    break
                if self.o.max_events is not None and self.stats.events >= self.o.max_events:
                    self.stop_reason = "max_events"
                    break
        finally:
            if kept:
                self.stats.last_event_at = self.clock()
                self.stats.last_event_wall = self.wall()
                self.stats.last_event_time = kept[-1].time
                if self.store is not None:
                    self.stats.stored += self.store.add_events(kept, now=self.stats.last_event_wall)
                self.metrics.batch(received, self.wall() if self.store is not None else received)

    def _emit(self, event: StreamEvent) -> bool:
        """Hand one event to on_event; False when its reader has gone (`| head`): the run stops
        as cleanly as on --max-events. Any other output failure is an error, not a dropped
        connection (it must not send the stream into a reconnect loop)."""
        assert self.on_event is not None
        try:
            self.on_event(event)
        except BrokenPipeError:
            self.stop_reason = "output_closed"
            return False
        except OSError as exc:
            raise OutputError(f"cannot write events: {exc.strerror or exc}") from None
        return True

    def _with_coin(self, event: StreamEvent) -> StreamEvent:
        """The event as the user asked for it: under the asked liquidation channel name, and a
        trade on a config's pair channel under that config's coin."""
        if self.liquidation_label and event.channel in LIQUIDATION_CHANNELS and event.channel != self.liquidation_label:
            return replace(event, channel=self.liquidation_label)
        coin = self.o.channel_coins.get(event.channel)
        if coin and isinstance(event, TradeEvent) and event.base_asset != coin.upper():
            return replace(event, base_asset=coin.upper())
        return event

    def _wanted(self, event: StreamEvent) -> bool:
        if self.o.coins is not None and event.base_asset not in self.o.coins:
            return False
        floor = self.o.coin_min_volume_usd.get(event.base_asset, self.o.min_volume_usd)
        return event.volume_usd >= floor

    # -- helpers -----------------------------------------------------------------------------

    async def _close(self, ws: Any) -> None:
        try:
            await asyncio.wait_for(ws.close(), timeout=min(2.0, self.o.heartbeat_deadline) + 0.5)
        except Exception as exc:  # closing a dead connection may fail in many ways; it is gone anyway
            log.debug("close: %s", self._safe(exc))

    def _write_liveness(self, *, status: str = "running") -> None:
        self.last_liveness_write = self.clock()
        if self.on_liveness is not None and status == "running":
            self.on_liveness(self.summary())
        if self.store is not None:
            if status == "running":  # not on the way out: a stop ends within its 2 s
                self.retention.run(self.store)
            self.store.update_run(
                self.summary().as_dict(),
                now=self.wall(),
                last_event_at=self.stats.last_event_wall,
                status=status,
                stop_reason=self.stop_reason,
            )

    def _log_once(self, reason: str, msg: str, *args: object) -> None:
        level = logging.DEBUG if reason in self.logged_reasons else logging.WARNING
        self.logged_reasons.add(reason)
        log.log(level, msg, *args)

    def _safe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", self.o.key)

