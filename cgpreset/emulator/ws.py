"""The emulator's WebSocket side, on the `websockets` asyncio server in a background thread.

Protocol as emulated:

* URL `ws://127.0.0.1:<port>/ws-api?cg-api-key=<KEY>`. Another path: close 1008 "unknown path".
* No key: a text frame `{"code":"401","msg":"API key missing."}`, then close 1008. A wrong key:
  `{"code":"400","msg":"Invalid API key provided"}`, then close 1008. A plan below Standard:
  `{"code":"401","msg":"Upgrade plan"}`, then close 1008. (Upstream documents none of this; these
  are the REST bodies, sent the way a WS server would.)
* Text `ping` -> text `pong`. `{"method":"subscribe","channels":[...]}` and `unsubscribe`: no ack.
* Pushes `{"channel": ..., "data": [events]}` for `liquidationOrders` (camelCase fields),
  `liquidation_orders` (snake_case fields), `futures_trades@{exchange}_{symbol}@{minVolUsd}` (a
  listed instrument id) and `spot_trades@{exchange}_{symbol}@{minVolUsd}` (a coin's USDT/USDC spot
  pair in any spelling: BTCUSDT, BTC-USDT, BTC_USDT). Liquidations come at `event_rate` per second
  across the universe (weighted by OI). `liquidation_channels` narrows which of the two
  liquidation names the server speaks (the docs do not settle it); the other is silently ignored,
  as an unknown channel is.
* `drop_after` seconds: the server aborts each connection (no close frame: the client sees 1006).
  `idle_timeout` seconds without any client frame: close 1001 "idle timeout".
* No protocol-level pings from the server; RFC 6455 pings from the client are answered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from cgpreset.emulator import bodies
from cgpreset.emulator.data import COINS, LIQ_CHANNELS, PAIRS, Coin, perp_symbol
from cgpreset.emulator.market import Market
from cgpreset.emulator.recorder import Recorder, WsConnection, WsFrame
from cgpreset.plans import Plan
from cgpreset.redact import RedactingLoggerAdapter

WS_PATH = "/ws-api"
#: websockets logs the request line (with `cg-api-key=`) at DEBUG: never the key.
_LOG = RedactingLoggerAdapter(logging.getLogger("cgpreset.emulator.ws"))
_TRADES = re.compile(r"^(?P<market>futures|spot)_trades@(?P<exchange>[^_]+)_(?P<symbol>.+)@(?P<min>\d+(?:\.\d+)?)$")
_SPOT_QUOTES = ("USDT", "USDC")
_TICK = 0.05  # seconds between push rounds and watchdog checks


class WsServer:
    """Runs the WebSocket endpoint on its own event loop thread.

    `clock` (monotonic seconds) dates the records and drives drop_after and idle_timeout, so that
    a test can move time instead of waiting for it.
    """

    def __init__(
        self,
        *,
        api_key: str,
        plan: Plan,
        seed: int,
        recorder: Recorder,
        now_ms: Callable[[], int],
        host: str = "127.0.0.1",
        port: int = 0,
        drop_after: float | None = None,
        idle_timeout: float | None = None,
        event_rate: float = 20.0,
        liquidation_channels: Sequence[str] = LIQ_CHANNELS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        unknown = set(liquidation_channels) - set(LIQ_CHANNELS)
        if unknown or not liquidation_channels:
            raise ValueError(f"liquidation_channels must be some of {', '.join(LIQ_CHANNELS)}")
        self.api_key = api_key
        self.plan = plan
        self.seed = seed
        self.recorder = recorder
        self.now_ms = now_ms
        self.host = host
        self.port = port
        self.drop_after = drop_after
        self.idle_timeout = idle_timeout
        self.event_rate = event_rate
        self.liquidation_channels = tuple(liquidation_channels)
        self.clock = clock
        self.market = Market(seed)
        self._ids = itertools.count(1)
        self._weights = [c.oi_usd for c in COINS]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._live: set[ServerConnection] = set()
        self._thread = threading.Thread(target=self._run, name="cg-emulator-ws", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, self.host, self.port, ping_interval=None, close_timeout=0.2,
                         compression=None, logger=_LOG) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            for ws in list(self._live):
                ws.transport.abort()

    # -- one connection ----------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request else "/")
        keys = parse_qs(url.query).get("cg-api-key", [])
        key = keys[0] if keys else ""
        conn = WsConnection(next(self._ids), url.path, bool(key), key == self.api_key, self.clock())
        self.recorder.add_ws(conn)
        self._live.add(ws)
        try:
            refusal = self._refusal(url.path, key)
            if refusal is not None:
                reason, body = refusal
                if body is not None:
                    await ws.send(json.dumps(body, separators=(",", ":")))
                self.recorder.ws_close(conn, self.clock(), reason)
                await ws.close(1008, body["msg"] if body else "unknown path")
                return
            await self._serve(ws, conn)
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            reason = "shutdown" if self._stop is not None and self._stop.is_set() else "client"
            self.recorder.ws_close(conn, self.clock(), reason)

    def _refusal(self, path: str, key: str) -> tuple[str, dict[str, str] | None] | None:
        if path.rstrip("/") != WS_PATH:
            return "bad_path", None
        if not key:
            return "auth", bodies.API_KEY_MISSING
        if key != self.api_key:
            return "auth", bodies.API_KEY_INVALID
        if not self.plan.at_least(Plan.STANDARD):
            return "plan", bodies.UPGRADE_PLAN
        return None

    async def _serve(self, ws: ServerConnection, conn: WsConnection) -> None:
        subs: set[str] = set()
        tasks = [
            asyncio.create_task(self._push(ws, conn, subs)),
            asyncio.create_task(self._watch(ws, conn)),
        ]
        try:
            async for message in ws:
                text = message if isinstance(message, str) else f"<binary {len(message)} bytes>"
                self.recorder.ws_frame(conn, WsFrame(self.clock(), text))
                if text == "ping":
                    await ws.send("pong")
                    continue
                self._apply(text, subs, conn)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _apply(self, text: str, subs: set[str], conn: WsConnection) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("channels"), list):
            return
        channels = [c for c in msg["channels"] if isinstance(c, str)]
        if msg.get("method") == "subscribe":
            subs.update(channels)
        elif msg.get("method") == "unsubscribe":
            subs.difference_update(channels)
        conn.subscriptions = sorted(subs)

    async def _watch(self, ws: ServerConnection, conn: WsConnection) -> None:
        """Apply drop_after (abrupt) and idle_timeout (close 1001)."""
        while True:
            await asyncio.sleep(_TICK / 2)
            now = self.clock()
            if self.drop_after is not None and now - conn.opened >= self.drop_after:
                self.recorder.ws_close(conn, now, "drop_after")
                ws.transport.abort()
                return
            last = conn.last_client_message or conn.opened
            if self.idle_timeout is not None and now - last >= self.idle_timeout:
                self.recorder.ws_close(conn, now, "idle_timeout")
                await ws.close(1001, "idle timeout")
                return

    # -- pushes ------------------------------------------------------------------------------------

    async def _push(self, ws: ServerConnection, conn: WsConnection, subs: set[str]) -> None:
        rng = random.Random(f"{self.seed}:ws:{conn.id}")
        while True:
            await asyncio.sleep(_TICK)
            if not subs:
                continue
            frames = self._frames(rng, subs)
            for frame in frames:
                await ws.send(json.dumps(frame, separators=(",", ":")))

    def _frames(self, rng: random.Random, subs: set[str]) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        now = self.now_ms()
        served = [ch for ch in self.liquidation_channels if ch in subs]
        if served:
            events = [self._liquidation(rng, now) for _ in range(_poisson(rng, self.event_rate * _TICK))]
            if events:
                if "liquidationOrders" in served:
                    frames.append({"channel": "liquidationOrders", "data": [_variant_a(e) for e in events]})
                if "liquidation_orders" in served:
                    frames.append({"channel": "liquidation_orders", "data": events})
        for ch in sorted(subs):
            m = _TRADES.match(ch)
            pair = _trade_pair(m) if m else None
            if m is None or pair is None:
                continue
            exchange, symbol, coin_code = pair
            trades = []
            for _ in range(_poisson(rng, self.event_rate * _TICK)):
                trade = self._trade(rng, exchange, symbol, coin_code, now)
                if trade["volume_usd"] >= float(m["min"]):
                    trades.append(trade)
            if trades:
                frames.append({"channel": ch, "data": trades})
        return frames

    def _liquidation(self, rng: random.Random, now: int) -> dict[str, Any]:
        coin: Coin = rng.choices(COINS, weights=self._weights)[0]
        exchange = rng.choice(coin.venues)
        price = self.market.price(coin, now) * (1 + rng.uniform(-0.001, 0.001))
        return {
            "base_asset": coin.code,
            "exchange": exchange,
            "price": float(f"{price:.6g}"),
            "side": rng.choice((1, 2)),
            "symbol": perp_symbol(coin, exchange),
            "time": now,
            "volume_usd": round(rng.lognormvariate(math.log(4000), 1.3), 5),
        }

    def _trade(self, rng: random.Random, exchange: str, symbol: str, coin_code: str, now: int) -> dict[str, Any]:
        coin = next(c for c in COINS if c.code == coin_code)
        price = self.market.price(coin, now) * (1 + rng.uniform(-0.0005, 0.0005))
        return {
            "exchange": exchange,
            "symbol": symbol,
            "base_asset": coin.code,
            "price": float(f"{price:.6g}"),
            "side": rng.choice((1, 2)),  # 1 = a long liquidated, 2 = a short (the WebSocket docs)
            "volume_usd": round(rng.lognormvariate(math.log(20000), 1.2), 4),
            "time": now,
        }


def _trade_pair(m: re.Match[str]) -> tuple[str, str, str] | None:
    """(exchange, symbol, coin code) of a trade channel the emulator can serve, else None."""
    exchange, symbol = m["exchange"], m["symbol"]
    if m["market"] == "futures":
        inst = PAIRS.get((exchange, symbol))
        return (inst.exchange, inst.instrument_id, inst.coin) if inst is not None else None
    flat = re.sub(r"[-_/]", "", symbol)
    for coin in COINS:
        if exchange in coin.venues and flat in {coin.code + q for q in _SPOT_QUOTES}:
            return exchange, symbol, coin.code
    return None


def _variant_a(event: dict[str, Any]) -> dict[str, Any]:
    """The docs-repo (camelCase) spelling of a liquidation event."""
    return {
        "baseAsset": event["base_asset"],
        "exName": event["exchange"],
        "price": event["price"],
        "side": event["side"],
        "symbol": event["symbol"],
        "time": event["time"],
        "volUsd": event["volume_usd"],
    }


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth); mean is small here."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
