"""The stream core: subscribe, heartbeat, reconnect/backoff, auth, filters, stops, redaction.

Against tests/ws_fake.py's server in memory on a virtual-time event loop (tests/fakes.py), so
every ping, push, drop and heartbeat happens at an exact time and nothing waits for real; against
scripted connections with a fake clock for the backoff; and, for the handshake and the socket
(bad key, 1008, HTTP 401/403, the handshake log line), against the same server on a real socket,
asserting only counts and outcomes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from cgpreset.errors import AuthError, ConfigError, ExitCode, PlanError, UsageError
from cgpreset.models.config import CoinConfig
from cgpreset.store.stream_tables import StreamStore, latest_liveness
from cgpreset.stream.closing import default_jitter
from cgpreset.stream.events import StreamEvent, channel_problem
from cgpreset.stream.options import StreamOptions, format_event, format_summary, options_from_configs
from cgpreset.stream.session import run_stream
from tests.fakes import FakeClock, fake_time, run_virtual
from tests.ws_fake import KEY, FakeWS, liquidation_frame

FAST = dict(ping_interval=0.05, backoff_initial=0.02, backoff_max=0.1)


def _run(options: StreamOptions, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(run_stream(options, **kwargs))


def _mem(srv: FakeWS, options: StreamOptions, **kwargs: Any) -> dict[str, Any]:
    """The stream against `srv` in memory, on virtual time (clock and sleep are the loop's)."""
    return run_virtual(lambda clock: run_stream(options, clock=clock, connect=srv.connect, **kwargs))


def _now() -> float:
    """Now on the running loop (virtual under run_virtual; the FakeWS records are on it too)."""
    return asyncio.get_running_loop().time()


def _opts(url: str, key: str | None = KEY, **kw: Any) -> StreamOptions:
    return StreamOptions(url=url, key=key, **{**FAST, **kw})


# -- against the fake server ---------------------------------------------------------------------


def test_drops_reconnect_and_resubscribe_every_channel() -> None:
    channels = ["liquidation_orders", "futures_trades@OKX_SOL-USDT-SWAP@10000"]
    received: list[float] = []
    srv = FakeWS(drop_after=0.25, push_interval=0.02)
    summary = _mem(srv, _opts(srv.url, channels=channels, duration=1.0), on_event=lambda e: received.append(_now()))
    conns = list(srv.connections)
    assert len(conns) >= 3
    assert summary["reconnects"] == len(conns) - 1 == summary["connections"] - 1
    for conn in conns:  # a liquidation channel goes out under both documented names (spec §9)
        assert conn.subscribed() == {*channels, "liquidationOrders"}
    for conn in conns[:-1]:  # events kept arriving on every connection, not just the first
        assert conn.closed is not None and any(conn.opened <= t <= conn.closed for t in received)
        assert conn.close_code == 1011  # each was dropped by the server, none given up by the stream
    assert summary["stop_reason"] == "duration"
    assert summary["events"] == len(received) > 0
    assert summary["duration_s"] == pytest.approx(1.0)


def test_ping_cadence_matches_the_setting() -> None:
    srv = FakeWS(push_interval=None)
    summary = _mem(srv, _opts(srv.url, ping_interval=0.05, duration=0.6))
    (conn,) = srv.connections
    pings = conn.ping_times()
    gaps = [b - a for a, b in pairwise(pings)]
    assert len(pings) == 11  # at 0.05, 0.10, ... 0.55 s; --duration ends the run at 0.6 s
    assert gaps == pytest.approx([0.05] * 10)
    assert pings[0] - conn.opened == pytest.approx(0.05)
    assert summary["pings_sent"] == len(pings)
    assert summary["pongs_received"] in (len(pings), len(pings) - 1)  # the last pong may still be in flight
    assert summary["heartbeat_timeouts"] == 0


def test_dead_heartbeat_reconnects_and_resubscribes() -> None:
    srv = FakeWS(answer_pings=False, push_interval=None)
    summary = _mem(srv, _opts(srv.url, ping_interval=0.05, dead_after=0.12, duration=0.7))
    conns = list(srv.connections)
    assert summary["heartbeat_timeouts"] >= 3
    assert summary["pongs_received"] == 0
    assert len(conns) == summary["connections"] >= 4
    assert all(c.subscribed() == {"liquidation_orders", "liquidationOrders"} for c in conns)
    for conn in conns[:-1]:  # each dead connection was given up after dead_after, not later
        assert conn.closed is not None and conn.closed - conn.opened == pytest.approx(0.12)
        assert conn.close_code == 1000 and conn.ping_times() == pytest.approx([conn.opened + 0.05, conn.opened + 0.1])


def test_any_message_keeps_the_heartbeat_alive() -> None:
    srv = FakeWS(answer_pings=False, push_interval=0.02)
    summary = _mem(srv, _opts(srv.url, ping_interval=0.05, dead_after=0.12, duration=0.5))
    assert summary["heartbeat_timeouts"] == 0 and summary["connections"] == 1 and summary["events"] > 0


@pytest.mark.parametrize(("key", "msg"), [("wrong-key", "Invalid API key provided"), (None, "API key missing.")])
def test_bad_key_error_frame_is_auth_error_after_one_attempt(key: str | None, msg: str) -> None:
    with FakeWS() as srv:
        with pytest.raises(AuthError) as info:
            _run(_opts(srv.url, key=key, duration=5))
        assert srv.attempts == 1 and len(srv.connections) == 1
    assert info.value.exit_code == ExitCode.API
    assert msg in str(info.value) and "wrong-key" not in str(info.value)


def test_bare_close_1008_before_any_event_is_auth_error() -> None:
    with FakeWS(refuse_with_frame=False) as srv:
        with pytest.raises(AuthError, match="1008"):
            _run(_opts(srv.url, key="wrong-key", duration=5))
        assert srv.attempts == 1


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_handshake_is_auth_error(status: int) -> None:
    with FakeWS(reject_status=status) as srv:
        with pytest.raises(AuthError) as info:
            _run(_opts(srv.url, duration=5))
        assert srv.attempts == 1
    assert info.value.http_status == status and f"HTTP {status}" in str(info.value)


def test_plan_error_frame_is_plan_error() -> None:
    script = lambda i: [json.dumps({"code": "401", "msg": "Upgrade plan"})]  # noqa: E731
    srv = FakeWS(script=script, push_interval=None)
    with pytest.raises(PlanError, match="Upgrade plan"):
        _mem(srv, _opts(srv.url, duration=5))
    assert len(srv.connections) == 1


def test_unknown_frames_pong_and_junk_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    script = lambda i: ["hello", "[1]", '{"channel":"futures_ticker@X_Y","data":[]}',  # noqa: E731
                        '{"code":"400","msg":"unknown channel"}', "pong",
                        liquidation_frame("liquidation_orders", 1, n=3)]
    caplog.set_level(logging.WARNING, logger="cgpreset")
    srv = FakeWS(script=script, push_interval=None)
    summary = _mem(srv, _opts(srv.url, max_events=3, duration=5))
    assert summary["events"] == 3 and summary["stop_reason"] == "max_events"
    assert summary["unknown_frames"] == 3 and summary["error_frames"] == 1
    assert summary["pongs_received"] >= 1
    text = caplog.text
    assert "not JSON" in text and "unsupported channel" in text and "unknown channel" in text


def test_events_in_seconds_or_years_ahead_are_refused_counted_and_warned_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The stream stored events of January 1970 (seconds taken for ms) and of years ahead."""
    wall = 1_764_000_000.0  # the stream's clock: 2025-11-24

    def frame(times: list[int]) -> str:
        items = [{"base_asset": "BTC", "exchange": "OKX", "price": 1.0, "side": 1, "symbol": "BTC-USDT-SWAP",
                  "time": t, "volume_usd": 100.0 + i} for i, t in enumerate(times)]
        return json.dumps({"channel": "liquidation_orders", "data": items})

    now_ms = int(wall * 1000)
    script = lambda i: [frame([now_ms // 1000, now_ms - 1000, now_ms // 1000 + 1]),  # noqa: E731
                        frame([now_ms + 4 * 365 * 86_400_000, now_ms - 2000])]
    caplog.set_level(logging.DEBUG, logger="cgpreset")
    printed: list[StreamEvent] = []
    srv = FakeWS(script=script, push_interval=None)
    with StreamStore(tmp_path / "s.db") as store:
        summary = _mem(srv, _opts(srv.url, duration=0.5), store=store, on_event=printed.append, wall=lambda: wall)
        stored = store.count_events()
    assert [e.time for e in printed] == [now_ms - 1000, now_ms - 2000]
    assert stored == summary["events"] == 2
    assert summary["rejected"] == {"time in seconds, not milliseconds": 2, "time more than 5 min ahead of our clock": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "refusing" in r.getMessage()]
    assert warnings == [  # one warning per reason; the repeats go to the debug log
        "refusing event (time in seconds, not milliseconds): liquidation_orders data[0]: BTC-USDT-SWAP at "
        f"{now_ms // 1000}",
        "refusing event (time more than 5 min ahead of our clock): liquidation_orders data[0]: BTC-USDT-SWAP at "
        f"{now_ms + 4 * 365 * 86_400_000}",
    ]
    assert ": 2 events (240.0/min), 3 refused (2: time in seconds, not milliseconds; 1: time more than 5 min ahead " \
           "of our clock), last event" in format_summary(summary)


def test_coin_filter_min_volume_and_dedup_across_variants() -> None:
    # Each frame is sent in both variants; with both channels subscribed each event arrives twice.
    def script(i: int) -> list[str]:
        return [liquidation_frame(ch, 1, n=9) for ch in ("liquidation_orders", "liquidationOrders")]

    got: list[StreamEvent] = []
    srv = FakeWS(script=script, push_interval=None)
    summary = _mem(
        srv,
        _opts(srv.url, channels=["liquidation_orders", "liquidationOrders"], coins=frozenset({"sol", "ETH"}),
              coin_min_volume_usd={"ETH": 1004.5}, duration=0.3),
        on_event=got.append,
    )
    # seq 1..9 cycles ETH, SOL, BTC; volumes 1001..1009; ETH needs >= 1004.5
    assert [(e.base_asset, e.volume_usd) for e in got] == [
        ("SOL", 1002.0), ("SOL", 1005.0), ("ETH", 1007.0), ("SOL", 1008.0)]
    assert summary["duplicates"] == 9 and summary["filtered_out"] == 5  # each event counted once, then its twin
    assert summary["coins"] == ["ETH", "SOL"]


def test_max_events_stops_inside_a_multi_event_frame() -> None:
    got: list[StreamEvent] = []
    srv = FakeWS(script=lambda i: [liquidation_frame("liquidation_orders", 1, n=10)], push_interval=None)
    summary = _mem(srv, _opts(srv.url, max_events=4), on_event=got.append)
    assert len(got) == 4 and summary["events"] == 4 and summary["stop_reason"] == "max_events"


def test_stop_event_ends_the_run_cleanly_with_a_summary() -> None:
    srv = FakeWS(push_interval=0.01)

    async def main(clock: Callable[[], float]) -> dict[str, Any]:
        stop = asyncio.Event()
        seen: list[StreamEvent] = []

        def on_event(event: StreamEvent) -> None:
            seen.append(event)
            if len(seen) == 5:
                stop.set()

        return await run_stream(_opts(srv.url), on_event=on_event, stop=stop, clock=clock, connect=srv.connect)

    summary = run_virtual(main)
    assert summary["stop_reason"] == "interrupted" and summary["events"] == 5


def test_store_gets_events_and_liveness(tmp_path: Path) -> None:
    db = tmp_path / "cgpreset.db"
    srv = FakeWS(drop_after=0.2, push_interval=0.02)
    with StreamStore(db) as store:
        summary = _mem(srv, _opts(srv.url, duration=0.6, liveness_every=0.1), store=store)
        stored = store.count_events()
    assert stored == summary["stored"] == summary["events"] > 0
    live = latest_liveness(db)
    assert live is not None
    assert live["status"] == "stopped" and live["stop_reason"] == "duration"
    assert (live["events"], live["reconnects"], live["pings_sent"], live["pongs_received"]) == (
        summary["events"], summary["reconnects"], summary["pings_sent"], summary["pongs_received"])
    assert live["last_event_age_s"] is not None and live["last_event_age_s"] < 5
    assert KEY not in db.read_bytes().decode("latin-1")


def test_a_reader_gone_mid_batch_leaves_store_and_summary_agreeing(tmp_path: Path) -> None:
    """`stream --store | head -5`: the event whose write found the pipe closed is stored, so the
    summary counts it too (it used to store one event more than it counted)."""
    handed: list[StreamEvent] = []

    def on_event(event: StreamEvent) -> None:
        if len(handed) == 5:
            raise BrokenPipeError(32, "Broken pipe")
        handed.append(event)

    srv = FakeWS(push_interval=0.01)
    with StreamStore(tmp_path / "s.db") as store:
        summary = _mem(srv, _opts(srv.url, duration=5), store=store, on_event=on_event)
        stored = store.count_events()
    assert summary["stop_reason"] == "output_closed" and len(handed) == 5
    assert stored == summary["stored"] == summary["events"] == 6


def test_liveness_is_written_while_the_stream_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    seen: list[dict[str, Any] | None] = []
    srv = FakeWS(push_interval=0.02)

    def on_event(event: StreamEvent) -> None:
        if not seen and _now() - srv.connections[0].opened > 0.3:
            seen.append(latest_liveness(db))

    with StreamStore(db) as store:
        _mem(srv, _opts(srv.url, duration=0.5, liveness_every=0.1), store=store, on_event=on_event)
    (live,) = seen
    assert live is not None and live["status"] == "running" and live["events"] > 0 and live["pings_sent"] > 0


def test_a_hanging_handshake_does_not_delay_the_stop() -> None:
    async def connect(url: str, **kwargs: Any) -> Any:
        await asyncio.Event().wait()  # never answers

    summary = run_virtual(lambda clock: run_stream(_opts("ws://h/ws-api", duration=0.2, open_timeout=10.0),
                                                   connect=connect, clock=clock))
    assert summary["duration_s"] == pytest.approx(0.2)  # not the 10 s handshake timeout
    assert summary["stop_reason"] == "duration" and summary["connections"] == 0

def test_auth_error_is_recorded_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    srv = FakeWS()
    with StreamStore(db) as store, pytest.raises(AuthError):
        _mem(srv, _opts(srv.url, key="nope", duration=5), store=store)
    live = latest_liveness(db)
    assert live is not None and live["status"] == "auth_error"


def test_the_key_never_reaches_logs_or_results(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeWS(drop_after=0.15, push_interval=0.02) as srv:
        summary = _run(_opts(srv.url, duration=0.5))
        assert all(KEY in c.path for c in srv.connections)  # it did travel in the URL
    assert caplog.records
    assert any("cg-api-key=<redacted>" in r.getMessage() for r in caplog.records)  # the handshake line
    for record in caplog.records:
        assert KEY not in record.getMessage()
    assert KEY not in json.dumps(summary.as_dict())
    assert summary["url"].endswith("?cg-api-key=<redacted>")


def test_invalid_url_is_a_config_error_without_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        _run(_opts("http://example.invalid/ws-api", duration=1))
    assert KEY not in str(info.value) and "<redacted>" in str(info.value)


def test_connect_failures_are_logged_redacted_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    caplog.set_level(logging.DEBUG)
    summary = _run(_opts("ws://127.0.0.1:1/ws-api", duration=1.0, backoff_initial=0.25, backoff_max=0.25),
                   clock=clock, sleep=sleep, jitter=lambda d: d)
    # four attempts, none opened: failed attempts are not reconnects
    assert summary["connect_failures"] == 4 and summary["reconnects"] == 0 and summary["connections"] == 0
    assert "connect to ws://127.0.0.1:1/ws-api?cg-api-key=<redacted> failed" in caplog.text
    assert KEY not in caplog.text


# -- scripted connections and a fake clock: backoff ----------------------------------------------


class ScriptedConn:
    """A connection that yields `messages`, then closes with `code` (None = abnormal, 1006)."""

    def __init__(self, messages: list[str], code: int | None = None, reason: str = "bye") -> None:
        self.messages = list(messages)
        self.code = code
        self.reason = reason
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def recv(self) -> str:
        await asyncio.sleep(0)
        if self.messages:
            return self.messages.pop(0)
        raise ConnectionClosed(Close(self.code, self.reason) if self.code else None, None)

    async def close(self) -> None:
        pass


def _connect(plan: list[Any]) -> tuple[Callable[..., Any], list[str]]:
    urls: list[str] = []

    async def connect(url: str, **kwargs: Any) -> Any:
        urls.append(url)
        item = plan.pop(0) if plan else OSError("connection refused")
        if isinstance(item, BaseException):
            raise item
        return item

    return connect, urls


def test_backoff_doubles_to_the_cap_and_resets_after_a_healthy_connection() -> None:
    clock, sleep = fake_time()
    healthy = ScriptedConn(["pong", liquidation_frame("liquidation_orders", 1)])
    connect, urls = _connect([OSError("x"), OSError("x"), OSError("x"), healthy])
    summary = _run(
        StreamOptions(url="ws://h/ws-api", key=KEY, backoff_initial=1.0, backoff_max=3.0, duration=20.0),
        clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d,
    )
    assert clock.sleeps[:8] == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert sum(clock.sleeps) == pytest.approx(20.0)
    assert summary["connect_failures"] == len(urls) - 1 == len(clock.sleeps) - 1  # the last wait hit --duration
    assert summary["stop_reason"] == "duration" and summary["connections"] == 1 and summary["reconnects"] == 0
    assert json.loads(healthy.sent[0]) == {"method": "subscribe",
                                           "channels": ["liquidation_orders", "liquidationOrders"]}
    assert all(u == f"ws://h/ws-api?cg-api-key={KEY}" for u in urls)


def test_a_server_never_reached_stops_after_the_connect_attempts() -> None:
    clock, sleep = fake_time()
    connect, urls = _connect([])  # every attempt refused
    summary = _run(StreamOptions(url="ws://h/ws-api", key=KEY, connect_attempts=3),  # no --duration
                   clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d)
    assert len(urls) == 3 and summary["connect_failures"] == 3 and summary["connections"] == 0
    assert summary["stop_reason"] == "unreachable" and clock.sleeps == [1.0, 2.0]


def test_once_connected_the_stream_keeps_reconnecting_past_the_attempts() -> None:
    clock, sleep = fake_time()
    healthy = ScriptedConn(["pong", liquidation_frame("liquidation_orders", 1)])
    connect, urls = _connect([healthy])  # then refused, again and again
    summary = _run(StreamOptions(url="ws://h/ws-api", key=KEY, connect_attempts=2, duration=60.0,
                                 backoff_max=5.0), clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d)
    assert summary["stop_reason"] == "duration" and summary["connect_failures"] > 2


def test_an_unhealthy_connection_does_not_reset_the_backoff() -> None:
    clock, sleep = fake_time()
    connect, _ = _connect([OSError("x"), ScriptedConn([]), ScriptedConn(["junk"])])
    _run(StreamOptions(url="ws://h/ws-api", key=KEY, backoff_initial=1.0, backoff_max=100.0, duration=15.0),
         clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d)
    assert clock.sleeps[:4] == [1.0, 2.0, 4.0, 8.0]


def test_jitter_is_applied_and_bounded() -> None:
    clock, sleep = fake_time()
    connect, _ = _connect([])
    _run(StreamOptions(url="ws://h/ws-api", key=KEY, backoff_initial=1.0, backoff_max=4.0, duration=6.0),
         clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d / 2)
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 2.0]
    for delay in (0.1, 1.0, 30.0):
        assert all(delay / 2 <= default_jitter(delay) <= delay for _ in range(50))


def test_close_1008_after_events_reconnects_instead_of_failing() -> None:
    clock, sleep = fake_time()
    conn = ScriptedConn([liquidation_frame("liquidation_orders", 1)], code=1008)
    connect, urls = _connect([conn])
    summary = _run(StreamOptions(url="ws://h/ws-api", key=KEY, duration=3.0),
                   clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d)
    assert summary["events"] == 1 and len(urls) > 1


@pytest.mark.parametrize(("reason", "error"), [
    ("", AuthError), ("Invalid API key provided", AuthError), ("Upgrade plan", PlanError),
    ("unknown path", ConfigError),
])
def test_close_1008_before_events_is_final_and_not_retried(reason: str, error: type[Exception]) -> None:
    clock, sleep = fake_time()
    connect, urls = _connect([ScriptedConn(["pong"], code=1008, reason=reason)])
    with pytest.raises(error):
        _run(StreamOptions(url="ws://h/ws-api", key=KEY, duration=30.0),
             clock=clock, sleep=sleep, connect=connect)
    assert len(urls) == 1 and clock.sleeps == []


# -- options from configs, formatting ------------------------------------------------------------


def _config(coin: str, channels: list[str], min_volume: float = 0.0, funding: bool = True) -> CoinConfig:
    layers = {"funding": {"exchange": "OKX", "symbol": f"{coin}-USDT-SWAP"}} if funding else {
        "open_interest": {"symbol": coin}}
    return CoinConfig.model_validate({
        "coin": coin, "plan": "standard", "interval": "4h", "history_days": 30, "layers": layers,
        "stream": {"channels": channels, "min_volume_usd": min_volume},
    })


def test_options_from_configs() -> None:
    sol = _config("SOL", ["liquidation_orders", "futures_trades"], min_volume=10000)
    eth = _config("ETH", ["liquidation_orders", "futures_trades@Binance_ETHUSDT@5000"])
    opts = options_from_configs([sol, eth], url="ws://h/ws-api", key=None)
    assert opts.channels == ["liquidation_orders", "futures_trades@OKX_SOL-USDT-SWAP@10000",
                             "futures_trades@Binance_ETHUSDT@5000"]
    assert opts.coins == frozenset({"SOL", "ETH"})
    assert opts.coin_min_volume_usd == {"SOL": 10000.0, "ETH": 0.0}
    assert opts.channel_coins == {"futures_trades@OKX_SOL-USDT-SWAP@10000": "SOL",
                                  "futures_trades@Binance_ETHUSDT@5000": "ETH"}
    explicit = options_from_configs([sol], channels=["liquidationOrders"], url="ws://h/ws-api", key=None)
    assert explicit.channels == ["liquidationOrders"] and explicit.coins == frozenset({"SOL"})
    default = options_from_configs([], url="ws://h/ws-api", key=None)
    assert default.channels == ["liquidation_orders"] and default.coins is None
    with pytest.raises(ConfigError, match="needs a pair layer"):
        options_from_configs([_config("BTC", ["futures_trades"], funding=False)], url="u", key=None)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="longer than the ping interval"):
        StreamOptions(url="ws://h/ws-api", key=None, ping_interval=1.0, dead_after=1.0)
    with pytest.raises(ConfigError, match="no channels"):
        StreamOptions(url="ws://h/ws-api", key=None, channels=[])
    assert StreamOptions(url="ws://h/ws-api", key=None, ping_interval=3.0).heartbeat_deadline == 6.0


def test_connect_url_carries_the_key_and_display_url_hides_it() -> None:
    opts = StreamOptions(url="wss://open-ws.coinglass.com/ws-api", key="s3cr3t&x")
    assert opts.connect_url == "wss://open-ws.coinglass.com/ws-api?cg-api-key=s3cr3t%26x"
    assert opts.display_url == "wss://open-ws.coinglass.com/ws-api?cg-api-key=<redacted>"
    assert StreamOptions(url="ws://h/ws-api", key=None).connect_url == "ws://h/ws-api"


def test_format_event_is_one_compact_line() -> None:
    from cgpreset.stream.events import parse_frame

    frame = parse_frame(liquidation_frame("liquidation_orders", 2))
    line = format_event(frame.events[0])  # type: ignore[union-attr]
    assert line.split() == ["02:18:38.002", "LIQ", "SOL", "Binance", "SOLUSDT", "long", "$1,002", "@", "102"]


def test_reconnects_count_connections_that_opened_again_not_attempts() -> None:
    clock, sleep = fake_time()
    first = ScriptedConn([liquidation_frame("liquidation_orders", 1)])  # then an abnormal close
    second = ScriptedConn([liquidation_frame("liquidation_orders", 2)])
    connect, urls = _connect([first, OSError("x"), OSError("x"), second])  # then refused until --duration
    summary = _run(
        StreamOptions(url="ws://h/ws-api", key=KEY, backoff_initial=1.0, backoff_max=1.0, duration=10.0),
        clock=clock, sleep=sleep, connect=connect, jitter=lambda d: d,
    )
    assert summary["connections"] == 2 and summary["reconnects"] == 1
    assert summary["connect_failures"] == len(urls) - 2 >= 2
    line = format_summary(summary)
    assert f"1 reconnects ({summary['connect_failures']} failed connects)" in line


@pytest.mark.parametrize(("channel", "message"), [
    ("", "--channel: empty channel name"),
    ("nonsense@@", "--channel: unknown channel 'nonsense@@' (known: liquidation_orders, liquidationOrders, "),
    ("futures_trades", "--channel: 'futures_trades' is not futures_trades@{exchange}_{symbol}@{minVolUsd}"),
    ("futures_trades@OKX_SOL-USDT-SWAP", "is not futures_trades@{exchange}_{symbol}@{minVolUsd}"),
    ("spot_trades@Binance@10", "is not spot_trades@{exchange}_{symbol}@{minVolUsd}"),
    ("futures_ticker@OKX_SOL-USDT-SWAP", "futures_ticker channels are not supported by cgpreset stream"),
])
def test_a_bad_explicit_channel_is_a_usage_error(channel: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        options_from_configs([], channels=[channel], url="ws://h/ws-api", key=None)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("channel", [
    "liquidation_orders", "liquidationOrders", "futures_trades@OKX_SOL-USDT-SWAP@10000",
    "futures_trades@Gate_SOL_USDT@2500.5", "spot_trades@Binance_SOLUSDT@0",
])
def test_documented_channels_are_accepted(channel: str) -> None:
    assert channel_problem(channel) is None
    assert options_from_configs([], channels=[channel], url="ws://h/ws-api", key=None).channels == [channel]


def test_a_bad_config_channel_names_the_file_and_field() -> None:
    # The config model already refuses it on load (see test_stream_cli); this is the backstop for
    # configs built in Python without validation.
    good = _config("SOL", ["liquidation_orders"])
    stream = good.stream.model_construct(channels=["liquidation_orders", "liquidations"], min_volume_usd=0.0)
    bad = good.model_copy(update={"stream": stream})
    with pytest.raises(ConfigError, match=r"^deploy/sol\.yaml: stream\.channels\[1\]: unknown channel 'liquidations'"):
        options_from_configs([bad], sources=["deploy/sol.yaml"], url="ws://h/ws-api", key=None)
    with pytest.raises(ConfigError, match=r"^SOL: stream\.channels\[1\]: unknown channel"):  # no file: the coin
        options_from_configs([bad], url="ws://h/ws-api", key=None)
    with pytest.raises(ConfigError, match=r"^stream: channels\[0\]: empty channel name$"):
        StreamOptions(url="ws://h/ws-api", key=None, channels=[""])


def test_the_summary_is_typed_and_its_json_form_is_plain() -> None:
    from cgpreset.stream.options import StreamStats, StreamSummary

    stats = StreamStats(started=10.0, events=3, connections=2, reconnects=1, last_event_at=19.5,
                        served_channels={"liquidationOrders"})
    options = StreamOptions(url="ws://h/ws-api", key=KEY, coins=frozenset({"SOL", "BTC"}))
    summary = stats.summary(20.0, options=options, stop_reason="duration")
    assert isinstance(summary, StreamSummary)
    assert (summary.events, summary.duration_s, summary.last_event_age_s) == (3, 10.0, 0.5)
    assert summary.coins == ("BTC", "SOL") and summary.stored is None
    doc = summary.as_dict()
    assert json.loads(json.dumps(doc)) == doc and doc["coins"] == ["BTC", "SOL"]
    assert summary["served_channels"] == ["liquidationOrders"] and summary.get("nope", 7) == 7
    with pytest.raises(KeyError):
        summary["nope"]
    assert KEY not in json.dumps(doc)
