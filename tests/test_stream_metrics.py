"""`stream --metrics-port N`: the stream's metrics served on /metrics, scraped over HTTP and read with
prometheus_client's parser. The session runs against tests/ws_fake.py in memory on virtual time
(no real waits); the command line runs as a process against the same server on a socket."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from cgpreset.cli import cli
from cgpreset.store.stream_tables import StreamStore
from cgpreset.stream.events import StreamEvent
from cgpreset.stream.metrics import MetricsServer, StreamMetrics
from cgpreset.stream.options import StreamOptions
from cgpreset.stream.session import run_stream
from tests.fakes import FakeClock, run_virtual
from tests.ws_fake import KEY, FakeWS

T0 = 1_725_416_318.0


def item(exchange: str, k: int, **over: Any) -> dict[str, Any]:
    return {"base_asset": "BTC", "exchange": exchange, "price": 100.0 + k, "side": 1, "symbol": "BTCUSDT",
            "time": 1_725_416_318_000 + k, "volume_usd": 1000.0 + k, **over}


#: What each connection gets right after subscribing: 5 events over 3 exchanges and one item that
#: does not parse (no price) on the first; 2 more on the second; nothing after that.
SENT = [[item("Binance", 1), item("OKX", 2), item("Binance", 3), {**item("Bybit", 4), "price": None}],
        [item("Bybit", 5), item("OKX", 6)]]


def frames(index: int) -> list[str]:
    return [json.dumps({"channel": "liquidation_orders", "data": SENT[index]})] if index < len(SENT) else []


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode("utf-8")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def by_exchange(samples: dict[Any, float]) -> dict[str, float]:
    return {dict(ls)["exchange"]: v for (n, ls), v in samples.items() if n == "cgpreset_stream_events_total"}


class LaggingStore(StreamStore):
    """The SQLite stream store on a wall clock that a commit moves by 0.25 s."""

    def __init__(self, path: Path, wall: FakeClock) -> None:
        super().__init__(path)
        self.wall = wall

    def add_events(self, events: Any, *, now: float) -> int:
        stored = super().add_events(events, now=now)
        self.wall.sleep(0.25)
        return stored


def test_the_sessions_metrics_over_http_count_what_was_sent(tmp_path: Path) -> None:
    metrics, wall = StreamMetrics(), FakeClock(T0)
    store = LaggingStore(tmp_path / "s.db", wall)
    server = MetricsServer(metrics.registry, "127.0.0.1", 0)
    during: list[dict[Any, float]] = []

    def on_event(event: StreamEvent) -> None:
        if not during:  # a scrape while the stream runs (the server answers from its own thread)
            during.append(scrape(server.url))

    srv = FakeWS(push_interval=None, script=frames, drop_after=0.5)
    options = StreamOptions(url=srv.url, key=KEY, ping_interval=0.05, backoff_initial=0.02, backoff_max=0.1,
                            duration=1.3)
    try:
        summary = run_virtual(lambda clock: run_stream(options, clock=clock, connect=srv.connect, on_event=on_event,
                                                       wall=wall, store=store, metrics=metrics))
        after = scrape(server.url)
    finally:
        server.close()
        store.close()
    sent = Counter(i["exchange"] for conn in SENT for i in conn if i["price"] is not None)
    assert by_exchange(after) == sent == {"Binance": 2, "OKX": 2, "Bybit": 1}
    assert summary.events == sum(sent.values())
    assert after[("cgpreset_stream_rejected_events_total", frozenset({("reason", "malformed")}))] == 1
    assert summary.reconnects >= 1
    assert after[("cgpreset_stream_reconnects_total", frozenset())] == summary.reconnects
    assert after[("cgpreset_stream_connected", frozenset())] == 0  # the stream has stopped
    assert after[("cgpreset_stream_up", frozenset())] == 1
    # two batches stored, each commit 0.25 s after its receipt on the wall clock
    assert after[("cgpreset_stream_last_event_timestamp_seconds", frozenset())] == T0 + 0.25
    assert after[("cgpreset_stream_store_lag_seconds", frozenset())] == 0.25
    (first,) = during
    assert first[("cgpreset_stream_connected", frozenset())] == 1
    assert by_exchange(first) == {"Binance": 1}  # counted before it is handed out
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass  # closed: the port is free again


def test_without_a_store_the_lag_is_zero_and_nothing_is_left_behind() -> None:
    metrics = StreamMetrics()
    srv = FakeWS(push_interval=None, script=frames)
    options = StreamOptions(url=srv.url, key=KEY, ping_interval=0.05, duration=0.3)
    run_virtual(lambda clock: run_stream(options, clock=clock, connect=srv.connect, metrics=metrics))
    server = MetricsServer(metrics.registry, "127.0.0.1", 0)
    try:
        samples = scrape(server.url)
    finally:
        server.close()
    assert samples[("cgpreset_stream_store_lag_seconds", frozenset())] == 0
    assert by_exchange(samples) == {"Binance": 2, "OKX": 1}
    assert samples[("cgpreset_stream_reconnects_total", frozenset())] == 0
    assert StreamMetrics().registry.get_sample_value("cgpreset_stream_events_total", {"exchange": "OKX"}) is None


def test_stream_serves_metrics_until_it_stops() -> None:
    """The command as a process: the port it chose is on stderr, /metrics counts the events it
    printed, and SIGTERM stops it cleanly with the server closed."""
    with FakeWS(push_interval=None, script=lambda i: frames(0) if i == 0 else []) as srv:
        env = {**os.environ, "CGPRESET_WS_URL": srv.url, "COINGLASS_API_KEY": KEY}
        env.pop("CGPRESET_STORE", None)
        proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "stream", "--json", "--metrics-port", "0",
                                 "--metrics-host", "127.0.0.1"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stderr.readline()
            m = re.fullmatch(r"serving metrics on (http://127\.0\.0\.1:(\d+)/metrics)\n", line)
            assert m, line
            printed = Counter(json.loads(proc.stdout.readline())["exchange"] for _ in range(3))
            samples = scrape(m.group(1))
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert by_exchange(samples) == printed == {"Binance": 2, "OKX": 1}
    assert samples[("cgpreset_stream_connected", frozenset())] == 1
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["summary"]["stop_reason"] == "interrupted"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(m.group(2))), timeout=5):
        pass
    assert KEY not in out + err


def test_the_streams_metrics_pass_promtool() -> None:
    from tests.prom_tools import check_metrics

    metrics = StreamMetrics()
    srv = FakeWS(push_interval=None, script=frames)
    run_virtual(lambda clock: run_stream(StreamOptions(url=srv.url, key=KEY, ping_interval=0.05, duration=0.3),
                                         clock=clock, connect=srv.connect, metrics=metrics))
    from prometheus_client import generate_latest

    assert check_metrics(generate_latest(metrics.registry).decode()) == ""


def test_a_port_that_is_taken_or_a_host_alone_exits_2() -> None:
    env = {"CGPRESET_WS_URL": "ws://127.0.0.1:9/ws-api", "COINGLASS_API_KEY": KEY}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["stream", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
                                    env=env)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"Error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"]
    alone = CliRunner().invoke(cli, ["stream", "--metrics-host", "127.0.0.1"], env=env)
    assert alone.exit_code == 2
    assert alone.stderr.splitlines() == ["Error: --metrics-host needs --metrics-port"]
