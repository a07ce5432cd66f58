"""The stream's live metrics, in a prometheus_client registry of their own, and the `/metrics` server.

`cgpreset stream --metrics-port N` serves them; the names are stable and this is their list (the
README points here; the generated alert rules use them):

    cgpreset_stream_events_total{exchange}         counter: events accepted (printed or stored), by the
                                                   exchange that reported them
    cgpreset_stream_rejected_events_total{reason}  counter: items refused; reason "malformed" (an item
                                                   of a push frame that did not parse); may stay 0
    cgpreset_stream_last_event_timestamp_seconds   wall time the newest accepted event arrived
    cgpreset_stream_reconnects_total               counter: connections opened after the first
    cgpreset_stream_connected                      1 while a connection is open, else 0
    cgpreset_stream_store_lag_seconds              seconds from the receipt of the latest batch to its
                                                   commit in the store (0 without --store)
    cgpreset_stream_up                             1 from the start (a scrape that fails is "down")

Counters also carry prometheus_client's `_created` samples. The session updates the metrics on
the event loop as frames arrive; the server answers scrapes from its own thread (prometheus_client's
metrics are thread-safe). Alert examples: `cgpreset_stream_connected == 0` for some minutes,
`time() - cgpreset_stream_last_event_timestamp_seconds > 600`, `cgpreset_stream_store_lag_seconds > 5`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from cgpreset.errors import ConfigError

#: The rejection reason of an item that did not parse.
MALFORMED = "malformed"


class StreamMetrics:
    """One stream's metrics (a fresh registry each: two streams in one process never mix)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._events = Counter("cgpreset_stream_events", "Events accepted (printed or stored), by exchange.",
                               ["exchange"], registry=r)
        self._rejected = Counter("cgpreset_stream_rejected_events", "Event items refused, by reason.",
                                 ["reason"], registry=r)
        self._rejected.labels(reason=MALFORMED)  # exported as 0 before the first
        self._last = Gauge("cgpreset_stream_last_event_timestamp_seconds",
                           "When the newest accepted event arrived (Unix seconds).", registry=r)
        self._reconnects = Counter("cgpreset_stream_reconnects", "Connections opened after the first.",
                                   registry=r)
        self._connected = Gauge("cgpreset_stream_connected", "1 while a connection is open.", registry=r)
        self._lag = Gauge("cgpreset_stream_store_lag_seconds",
                          "Seconds from the receipt of the latest batch to its store commit.", registry=r)
        Gauge("cgpreset_stream_up", "1 while the stream runs.", registry=r).set(1)

    def connected(self, *, reconnect: bool) -> None:
        self._connected.set(1)
        if reconnect:
            self._reconnects.inc()

    def disconnected(self) -> None:
        self._connected.set(0)

    def accepted(self, exchange: str) -> None:
        self._events.labels(exchange=exchange).inc()

    def rejected(self, reason: str) -> None:
        self._rejected.labels(reason=reason).inc()

    def batch(self, received: float, committed: float) -> None:
        """A batch of accepted events that arrived at `received` and was stored at `committed`
        (the same time when nothing stores them), both wall-clock seconds."""
        self._last.set(received)
        self._lag.set(max(0.0, committed - received))


class MetricsServer:
    """`/metrics` of a registry over HTTP, answered on a thread of its own until `close()`."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except (OSError, ValueError) as exc:  # the port is taken, the host is not this machine's
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {reason}") from None
        self.host = host

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose, for port 0)."""
        address: Any = self._server.server_address
        return int(address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
