"""A small CoinGlass-like WebSocket server for stream tests.

It checks `cg-api-key` in the URL, answers text `ping` with `pong` (unless told not to), pushes
liquidation frames after a subscribe, can drop connections after a while, and records every
connection with the frames it received (times on the serving event loop's clock).

Two ways to reach it, with the same behaviour:
* `with FakeWS() as srv:` a real websockets server in a thread on 127.0.0.1 (`srv.url`): for the
  tests of the handshake, the socket and the command line;
* `run_stream(..., connect=srv.connect)` without starting it: in-memory connections served on
  the caller's event loop, so on tests/fakes.VirtualTimeLoop every ping, push, drop and
  heartbeat happens at an exact virtual time and no test waits for real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

KEY = "test-key-0123456789abcdef"
COINS = ("BTC", "ETH", "SOL")
_QUIET = logging.Logger("ws_fake", level=logging.CRITICAL)  # detached: logs nothing, anywhere


@dataclass
class ConnRecord:
    """One accepted connection as the server saw it."""

    opened: float
    path: str
    closed: float | None = None
    close_code: int | None = None
    received: list[tuple[float, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [text for _, text in self.received]

    def subscribed(self) -> set[str]:
        """Every channel named in a subscribe frame on this connection."""
        out: set[str] = set()
        for text in self.texts():
            if text.startswith("{"):
                msg = json.loads(text)
                if msg.get("method") == "subscribe":
                    out.update(msg["channels"])
        return out

    def ping_times(self) -> list[float]:
        return [t for t, text in self.received if text == "ping"]


def liquidation_frame(channel: str, seq: int, *, coin: str | None = None, n: int = 1) -> str:
    """A push frame with `n` liquidation events, in the field set that matches `channel`."""
    items = []
    for i in range(n):
        k = seq + i
        base = coin or COINS[k % len(COINS)]
        row = {"base": base, "ex": "Binance", "price": 100.0 + k, "side": 1 + k % 2,
               "symbol": f"{base}USDT", "time": 1_725_416_318_000 + k, "vol": 1000.0 + k}
        if channel == "liquidationOrders":
            items.append({"baseAsset": row["base"], "exName": row["ex"], "price": row["price"],
                          "side": row["side"], "symbol": row["symbol"], "time": row["time"],
                          "volUsd": row["vol"]})
        else:
            items.append({"base_asset": row["base"], "exchange": row["ex"], "price": row["price"],
                          "side": row["side"], "symbol": row["symbol"], "time": row["time"],
                          "volume_usd": row["vol"]})
    return json.dumps({"channel": channel, "data": items})


def _now() -> float:
    return asyncio.get_running_loop().time()


_END = object()  # the close, queued behind the frames sent before it


class _Link:
    """Both directions of one in-memory connection and how it closed."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[Any] = asyncio.Queue()
        self.to_client: asyncio.Queue[Any] = asyncio.Queue()
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def shut(self, code: int, reason: str) -> None:
        if not self.closed:
            self.close_code, self.close_reason = code, reason
            self.to_server.put_nowait(_END)
            self.to_client.put_nowait(_END)

    def error(self) -> ConnectionClosed:
        return ConnectionClosed(Close(self.close_code or 1006, self.close_reason), None)


class MemoryClient:
    """The stream's side of an in-memory connection (what `websockets.connect` would return)."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    async def send(self, text: str) -> None:
        if self._link.closed:
            raise self._link.error()
        self._link.to_server.put_nowait(text)

    async def recv(self) -> str:
        item = await self._link.to_client.get()
        if item is _END:
            self._link.to_client.put_nowait(_END)  # closed stays closed
            raise self._link.error()
        return str(item)

    async def close(self) -> None:
        self._link.shut(1000, "")


class MemoryServerSide:
    """The server's side, as FakeWS's handler uses a websockets ServerConnection."""

    def __init__(self, link: _Link, path: str) -> None:
        self._link = link
        self.request = SimpleNamespace(path=path)

    @property
    def close_code(self) -> int | None:
        return self._link.close_code

    async def __aiter__(self) -> AsyncIterator[str]:
        while (item := await self._link.to_server.get()) is not _END:
            yield str(item)
        self._link.to_server.put_nowait(_END)

    async def send(self, text: str) -> None:
        if not self._link.closed:  # a frame sent after the close is lost, as on a dead socket
            self._link.to_client.put_nowait(text)
        await asyncio.sleep(0)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._link.shut(code, reason)


class FakeWS:
    """The server; use as a context manager. Settings may be changed between connections."""

    def __init__(
        self,
        *,
        api_key: str = KEY,
        answer_pings: bool = True,
        reject_status: int | None = None,
        push_interval: float | None = 0.02,
        script: Callable[[int], list[str]] | None = None,
        drop_after: float | None = None,
        refuse_with_frame: bool = True,
    ) -> None:
        self.api_key = api_key
        self.answer_pings = answer_pings
        self.reject_status = reject_status
        self.push_interval = push_interval  # seconds between generated frames; None = none
        self.script = script  # connection index -> frames sent right after the subscribe
        self.drop_after = drop_after
        self.refuse_with_frame = refuse_with_frame  # False: a bad key gets a bare close 1008
        self.connections: list[ConnRecord] = []
        self.attempts = 0
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._handlers: set[asyncio.Future[Any]] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws-api"

    def __enter__(self) -> FakeWS:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fake WS server did not start")
        return self

    async def connect(self, url: str, **kwargs: Any) -> MemoryClient:
        """An in-memory connection to this server, served on the running loop (see the module doc)."""
        self.attempts += 1
        if self.reject_status is not None:
            raise InvalidStatus(Response(self.reject_status, HTTPStatus(self.reject_status).phrase, Headers(), b""))
        parts = urlsplit(url)
        link = _Link()
        server = MemoryServerSide(link, parts.path + (f"?{parts.query}" if parts.query else ""))
        handler = asyncio.ensure_future(self._handler(server))  # type: ignore[arg-type]
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        await asyncio.sleep(0)  # the server has recorded the connection
        return MemoryClient(link)

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        assert self._thread is not None
        self._thread.join(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                         ping_interval=None, logger=_QUIET) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        self.attempts += 1
        if self.reject_status is not None:
            return connection.respond(HTTPStatus(self.reject_status), "Unauthorized\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        rec = ConnRecord(opened=_now(), path=path)
        self.connections.append(rec)
        index = len(self.connections) - 1
        key = parse_qs(urlsplit(path).query).get("cg-api-key", [None])[0]
        try:
            if key is None:
                await self._refuse(ws, rec, {"code": "401", "msg": "API key missing."})
                return
            if key != self.api_key:
                await self._refuse(ws, rec, {"code": "400", "msg": "Invalid API key provided"})
                return
            tasks: list[asyncio.Task[Any]] = []
            if self.drop_after is not None:
                tasks.append(asyncio.ensure_future(self._drop_later(ws, self.drop_after)))
            try:
                async for message in ws:
                    text = message if isinstance(message, str) else message.decode()
                    rec.received.append((_now(), text))
                    if text == "ping":
                        if self.answer_pings:
                            await self._send(ws, rec, "pong")
                        continue
                    msg = json.loads(text)
                    if msg.get("method") == "subscribe":
                        for frame in self.script(index) if self.script else []:
                            await self._send(ws, rec, frame)
                        if self.push_interval is not None:
                            tasks.append(asyncio.ensure_future(self._push(ws, rec, msg["channels"])))
            finally:
                for task in tasks:
                    task.cancel()
        finally:
            rec.closed = _now()
            rec.close_code = ws.close_code

    async def _refuse(self, ws: ServerConnection, rec: ConnRecord, body: dict[str, str]) -> None:
        if self.refuse_with_frame:
            await self._send(ws, rec, json.dumps(body))
        await ws.close(1008, body["msg"])

    async def _send(self, ws: ServerConnection, rec: ConnRecord, text: str) -> None:
        rec.sent.append(text)
        await ws.send(text)

    async def _push(self, ws: ServerConnection, rec: ConnRecord, channels: list[str]) -> None:
        liq = [c for c in channels if c in ("liquidation_orders", "liquidationOrders")]
        while liq:
            for channel in liq:
                self._seq += 1
                await self._send(ws, rec, liquidation_frame(channel, self._seq))
            await asyncio.sleep(self.push_interval or 0.02)

    async def _drop_later(self, ws: ServerConnection, after: float) -> None:
        await asyncio.sleep(after)
        await ws.close(1011, "dropped by the fake server")
