"""The emulator's HTTP side: a threading server that checks the key, the rate budget and the
scripted faults, then answers from api.ApiModel with compact JSON, as CoinGlass does.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cgpreset.emulator import api, bodies
from cgpreset.emulator.faults import ROW_SHAPING, SHAPING, FaultPlan, FaultRule, shape_body
from cgpreset.emulator.keybudget import SlidingWindow
from cgpreset.emulator.recorder import RecordedRequest, Recorder
from cgpreset.plans import Plan

log = logging.getLogger("cgpreset.emulator")

#: Query names never recorded (a key must never end up in the records).
_SECRET_PARAMS = frozenset({"cg-api-key", "cg_api_key", "api_key", "apikey"})

_BAD_GATEWAY = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_CLOUDFLARE_PAGE = (
    "<!DOCTYPE html>\n<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n"
    "<html lang=\"en-US\">\n<head>\n<title>Attention Required! | Cloudflare</title>\n"
    "<meta charset=\"UTF-8\" />\n</head>\n<body>\n<div id=\"cf-wrapper\">\n"
    "<h1 data-translate=\"block_headline\">Sorry, you have been blocked</h1>\n"
    "<h2 class=\"cf-subheadline\">You are unable to access coinglass.com</h2>\n"
    "<p>Cloudflare Ray ID: <strong class=\"font-semibold\">8f3a1c2b9d4e5f60</strong></p>\n"
    "</div>\n</body>\n</html>\n"
)
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
            504: "Gateway Time-out", 429: "Too Many Requests", 200: "OK"}


@dataclass
class Reply:
    """What to send back: status, body bytes, content type, and how to misbehave."""

    status: int
    body: bytes
    content_type: str = "application/json"
    code: str | None = None
    fault: str | None = None
    reset: bool = False  # drop the connection, send nothing
    declared_length: int | None = None  # Content-Length when it differs from len(body)
    trickle: float | None = None  # send the body at this many bytes a second
    location: str | None = None  # a redirect's Location header


def dumps(body: dict[str, Any]) -> bytes:
    """Compact JSON, key order kept: how the samples compare byte for byte."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class RestCore:
    """Everything a request needs: the key, the model, the budget, faults, records, switches."""

    api_key: str
    plan: Plan
    model: api.ApiModel
    window: SlidingWindow
    recorder: Recorder
    faults: FaultPlan
    latency_ms: float = 0.0
    rate_limit_status: int = 200
    stopping: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)  # tracebacks of emulator bugs (answered as 500)

    def wait(self, seconds: float) -> None:
        """Sleep that ends early when the server shuts down."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def handle(self, raw_path: str, key: str | None) -> Reply:
        """Answer one GET (faults, key, budget, then the model)."""
        url = urlsplit(raw_path)
        path = url.path
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        fired = self.faults.decide(path)
        clean = {k: v for k, v in params.items() if k.lower() not in _SECRET_PARAMS}
        ticket = self.recorder.add_request(RecordedRequest(path, clean, bool(key), 0, None, time.monotonic()))
        self.wait((self.latency_ms + sum(r.ms for r in fired if r.kind == "latency")) / 1000.0)
        for rule in fired:
            if rule.kind == "hang":
                self.wait(rule.seconds)
        replaced = next((r for r in fired if r.kind not in SHAPING), None)
        reply = self._fault_reply(replaced, raw_path) if replaced else self._normal(path, params, key, fired)
        if reply.fault is None:
            reply.fault = next((r.kind for r in fired), None)
        self.recorder.complete_request(ticket, http_status=0 if reply.reset else reply.status, code=reply.code,
                                       fault=reply.fault)
        return reply

    def _normal(self, path: str, params: dict[str, str], key: str | None, fired: list[FaultRule]) -> Reply:
        status = 200
        if not key:
            body = bodies.API_KEY_MISSING
        elif key != self.api_key:
            body = bodies.API_KEY_INVALID
        else:
            admitted, _ = self.window.admit()
            if not admitted:
                body, status = bodies.TOO_MANY_REQUESTS, self.rate_limit_status
            else:
                try:
                    body = self.model.answer(path, params)
                except Exception:  # an emulator bug: answer like the real server, keep the trace
                    self.errors.append(traceback.format_exc())
                    log.exception("emulator failed on %s", path)
                    body = bodies.SERVER_ERROR
        for rule in fired:
            if rule.kind in ROW_SHAPING:
                body = shape_body(body, rule, key, self.model.clock(path))
        raw = self.model.encode(body, dumps)
        reply = Reply(status, raw, code=str(body.get("code")))
        slow = next((r for r in fired if r.kind == "trickle"), None)
        if slow is not None:
            reply.trickle = slow.rate
        cut = next((r for r in fired if r.kind == "truncated"), None)
        if cut is not None:
            reply.body = raw[: max(1, len(raw) // 2)]
            reply.declared_length = len(raw) if cut.declared == "full" else None
            reply.fault, reply.code = "truncated", None
        return reply

    def _fault_reply(self, rule: FaultRule, raw_path: str) -> Reply:
        kind = rule.kind
        if kind == "reset":
            return Reply(0, b"", reset=True, fault=kind)
        if kind == "redirect":
            return Reply(rule.status or 302, b"", "text/html", fault=kind, location=rule.location + raw_path)
        if kind == "code_500":
            return Reply(200, dumps(bodies.SERVER_ERROR), code="500", fault=kind)
        if kind == "rate_limit":
            status = rule.status or self.rate_limit_status
            return Reply(status, dumps(bodies.TOO_MANY_REQUESTS), code="400", fault=kind)
        if kind == "body":
            return Reply(rule.status or 200, dumps({"code": rule.code, "msg": rule.msg}), code=rule.code, fault=kind)
        if kind == "html":
            return Reply(rule.status or 200, _CLOUDFLARE_PAGE.encode(), "text/html; charset=UTF-8", fault=kind)
        status = rule.status or 503  # http_5xx
        reason = _REASONS.get(status, "Server Error")
        if status == 500:
            return Reply(500, b"Internal Server Error", "text/plain; charset=utf-8", fault=kind)
        page = _BAD_GATEWAY.format(status=status, reason=reason).encode()
        return Reply(status, page, "text/html", fault=kind)


class _Handler(BaseHTTPRequestHandler):
    """Thin glue: parse, ask RestCore, write. HTTP/1.1 keep-alive so clients reuse connections."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without NODELAY, Nagle plus the client's delayed
        # ACK adds ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        core = self.server.core
        reply = core.handle(self.path, self.headers.get("CG-API-KEY"))
        if reply.reset:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            return
        self._write(reply, core)

    def _not_allowed(self) -> None:
        core = self.server.core
        body = {"code": "405", "msg": f"Request method '{self.command}' not supported"}
        self._write(Reply(200, dumps(body), code="405"), core)

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

    def _write(self, reply: Reply, core: RestCore) -> None:
        try:
            self.send_response(reply.status, _REASONS.get(reply.status))
            self.send_header("Content-Type", reply.content_type)
            length = reply.declared_length if reply.declared_length is not None else len(reply.body)
            self.send_header("Content-Length", str(length))
            self.send_header("API-KEY-MAX-LIMIT", str(core.window.limit))
            self.send_header("API-KEY-USE-LIMIT", str(core.window.used()))
            if reply.location is not None:
                self.send_header("Location", reply.location)
            if reply.declared_length is not None or reply.fault == "truncated":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if reply.trickle is not None:
                self._trickle(reply.body, reply.trickle, core)
            else:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it timed out during a hang)
            self.close_connection = True


    def _trickle(self, body: bytes, rate: float, core: RestCore) -> None:
        """The body a few bytes at a time, `rate` bytes a second (until the server stops)."""
        step = max(1, int(rate / 4))
        for start in range(0, len(body), step):
            if core.stopping.is_set():
                return
            self.wfile.write(body[start:start + step])
            self.wfile.flush()
            core.wait(step / rate)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], core: RestCore) -> None:
        self.core = core
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client resets and timeouts are normal here


class RestServer:
    """The HTTP server in a background thread; `stop` returns in well under 0.5 s."""

    def __init__(self, core: RestCore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core = core
        self._server = _Server((host, port), core)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"cg-emulator-rest-{self.port}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.core.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


