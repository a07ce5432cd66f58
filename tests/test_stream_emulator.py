"""`stream` against the emulator's WebSocket side: drops, resubscribes, heartbeat, idle timeout, auth."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.emulator import serve
from cgpreset.errors import AuthError, PlanError
from cgpreset.store.stream_tables import latest_liveness
from cgpreset.stream.events import StreamEvent
from cgpreset.stream.session import StreamOptions, run_stream

CHANNELS = ["liquidation_orders", "liquidationOrders", "futures_trades@OKX_SOL-USDT-SWAP@10000"]
PING = 0.1
# The emulator's own websockets server logs "< GET /ws-api?cg-api-key=<key>" at DEBUG under this
# name; that is the server side, not the stream (reported to the emulator's owner).
IDLE = 0.35  # the emulator's idle timeout; pings every PING keep the connection under it
CONNECTIONS = 4  # the drop test runs until the fourth connection delivers


def test_drops_every_0_3_s_the_stream_keeps_running(caplog: pytest.LogCaptureFixture,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A genuine integration test against the emulator's WebSocket server, on real time: what it
    asserts is counts and orders (connections, subscribes, which connection each event came on,
    pings counted), never how long something took (the exact cadences: tests/test_stream.py)."""
    caplog.set_level(logging.DEBUG)
    arrivals: list[tuple[int, StreamEvent]] = []  # (how many connections the server had seen, event)
    with serve(plan="standard", seed=7, ws_drop_after=0.3, ws_idle_timeout=IDLE, ws_event_rate=40.0) as emu:
        options = StreamOptions(url=emu.ws_url, key=emu.api_key, channels=CHANNELS, ping_interval=PING,
                                duration=60.0, backoff_initial=0.02, backoff_max=0.2)

        async def main() -> dict[str, Any]:
            stop = asyncio.Event()  # set once the fourth connection delivered an event: three drops survived

            def on_event(event: StreamEvent) -> None:
                arrivals.append((len(emu.ws_recorded()), event))
                if arrivals[-1][0] >= CONNECTIONS:
                    stop.set()

            return await run_stream(options, on_event=on_event, stop=stop)

        summary = asyncio.run(main())
        key = emu.api_key
        conns = emu.ws_recorded()
        assert emu.errors == []

    # it kept running through the drops (stopped by the test, not by --duration or an error)
    assert summary["stop_reason"] == "interrupted"
    assert len(conns) == CONNECTIONS
    assert summary["connections"] == len(conns) and summary["reconnects"] == len(conns) - 1
    assert [c.close_reason for c in conns[:-1]] == ["drop_after"] * (len(conns) - 1)

    # every connection got a subscribe for every channel, and events kept arriving after each reconnect
    for conn in conns:
        subscribed = {ch for f in conn.subscribes() for ch in json.loads(f.text)["channels"]}
        assert subscribed == set(CHANNELS)
        assert conn.subscriptions == sorted(CHANNELS)
    assert {n for n, _ in arrivals} == set(range(1, CONNECTIONS + 1)), "a connection delivered no event"
    assert [n for n, _ in arrivals] == sorted(n for n, _ in arrivals)  # never an old connection's event late
    kinds = {e.kind for _, e in arrivals}
    assert kinds == {"liquidation", "trade"}
    assert summary["duplicates"] > 0  # each liquidation came on both channel variants, delivered once

    # pings go out after the subscribe, every one counted; no connection was closed as idle
    for conn in conns:
        texts = conn.texts()
        assert texts and '"subscribe"' in texts[0]
        assert all(t == "ping" or '"subscribe"' in t for t in texts)
        assert conn.close_reason != "idle_timeout"
    assert summary["pings_sent"] == sum(len(c.pings()) for c in conns)

    # the key is nowhere: not in any log record, not on stdout/stderr, not in the summary
    out = capsys.readouterr()
    assert any(r.name == "cgpreset.stream.ws" for r in caplog.records)  # DEBUG handshake lines were captured
    assert any(r.name == "cgpreset.emulator.ws" for r in caplog.records)  # the server's lines too
    for record in caplog.records:
        assert key not in record.getMessage(), record.name
    assert key not in out.out + out.err + json.dumps(summary.as_dict())


def test_stream_without_pings_is_closed_idle_by_the_emulator() -> None:
    """Control for the idle assertion above: with pings slower than the timeout it does close."""
    with serve(plan="standard", seed=7, ws_idle_timeout=0.2, ws_event_rate=0.0) as emu:
        options = StreamOptions(url=emu.ws_url, key=emu.api_key, ping_interval=5.0, duration=1.5,
                                backoff_initial=0.02)  # (idle closes at 0.2 s: 1.5 s leaves a wide margin)
        summary = asyncio.run(run_stream(options))
        conns = emu.ws_recorded()
    assert conns[0].close_reason == "idle_timeout"
    assert summary["connections"] >= 2  # and the stream reconnected


@pytest.mark.parametrize(("key", "message"), [("wrong", "Invalid API key provided"), ("", "API key missing.")])
def test_bad_key_is_one_attempt_and_auth_error(key: str, message: str) -> None:
    with serve(plan="standard", seed=7) as emu:
        options = StreamOptions(url=emu.ws_url, key=key or None, duration=5.0, backoff_initial=0.01)
        with pytest.raises(AuthError, match=message):
            asyncio.run(run_stream(options))
        conns = emu.ws_recorded()
    assert len(conns) == 1 and conns[0].close_reason == "auth"


def test_plan_below_standard_is_plan_error() -> None:
    with serve(plan="hobbyist", seed=7) as emu:
        options = StreamOptions(url=emu.ws_url, key=emu.api_key, duration=5.0, backoff_initial=0.01)
        with pytest.raises(PlanError, match="Upgrade plan"):
            asyncio.run(run_stream(options))
        assert len(emu.ws_recorded()) == 1


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["stream", *args], env=env)


def test_cli_bad_key_exits_3_with_one_line(emulator: Any) -> None:
    env = {"CGPRESET_WS_URL": emulator.ws_url, "COINGLASS_API_KEY": "not-the-key",
           "CGPRESET_BASE_URL": emulator.base_url}
    result = _cli(env, "--duration", "5", "--json")
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: auth: WebSocket refused the API key: Invalid API key provided (code 400)")
    assert result.stdout == ""
    assert len(emulator.ws_recorded()) == 1
    assert "not-the-key" not in result.output


def test_cli_config_filters_to_its_coin_with_trades_and_store(emu_env: dict[str, str], emulator: Any,
                                                              tmp_path: Path) -> None:
    cfg = tmp_path / "sol.yaml"
    cfg.write_text(
        "coin: SOL\nplan: standard\ninterval: 4h\nhistory_days: 30\n"
        "layers:\n  funding: {exchange: OKX, symbol: SOL-USDT-SWAP}\n"
        "stream:\n  channels: [liquidation_orders, futures_trades]\n  min_volume_usd: 5000\n",
        encoding="utf-8",
    )
    db = tmp_path / "cgpreset.db"
    result = _cli(emu_env, "--config", str(cfg), "--duration", "1.0", "--ping-interval", "0.1",
                  "--json", "--store", str(db))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *events, last = lines
    summary = last["summary"]
    assert events and all(e["base_asset"] == "SOL" and e["volume_usd"] >= 5000 for e in events)
    assert {e["type"] for e in events} == {"liquidation", "trade"}
    assert {e["channel"] for e in events} - {"liquidationOrders"} == {"liquidation_orders",
                                                                   "futures_trades@OKX_SOL-USDT-SWAP@5000"}
    assert summary["channels"] == ["liquidation_orders", "futures_trades@OKX_SOL-USDT-SWAP@5000"]
    assert summary["coins"] == ["SOL"] and summary["events"] == len(events) == summary["stored"]
    assert summary["stop_reason"] == "duration"
    assert summary["pings_sent"] >= 1  # --ping-interval 0.1 took effect (the default, 20 s, sends none in 1 s)
    live = latest_liveness(db)
    assert live is not None and live["events"] == len(events) and live["status"] == "stopped"
    assert emu_env["COINGLASS_API_KEY"] not in result.output


@pytest.mark.parametrize("served", ["liquidationOrders", "liquidation_orders"])
@pytest.mark.parametrize("asked", ["liquidation_orders", "liquidationOrders"])
def test_liquidations_arrive_whichever_name_the_server_speaks(served: str, asked: str) -> None:
    """Spec §9 cannot say which liquidation channel name the server speaks: both are subscribed,
    events arrive under the asked name, and the summary says which name the server used."""
    with serve(plan="standard", seed=7, ws_event_rate=60.0, ws_liquidation_channels=[served]) as emu:
        options = StreamOptions(url=emu.ws_url, key=emu.api_key, channels=[asked], ping_interval=PING,
                                max_events=5, duration=3.0)
        events: list[StreamEvent] = []
        summary = asyncio.run(run_stream(options, on_event=events.append))
    assert summary["stop_reason"] == "max_events" and len(events) == 5
    assert {e.channel for e in events} == {asked}
    assert summary["served_channels"] == [served]
    assert summary["subscribed"] == [asked, *(c for c in ("liquidation_orders", "liquidationOrders") if c != asked)]
    assert summary["duplicates"] == 0


def test_spot_trade_channels_are_served(emulator: Any) -> None:
    channel = "spot_trades@Binance_SOLUSDT@0"
    options = StreamOptions(url=emulator.ws_url, key=emulator.api_key, channels=[channel], ping_interval=PING,
                            max_events=3, duration=3.0)
    events: list[StreamEvent] = []
    summary = asyncio.run(run_stream(options, on_event=events.append))
    assert summary["stop_reason"] == "max_events"
    assert {(e.kind, e.channel, e.exchange, e.symbol, e.base_asset) for e in events} == {
        ("trade", channel, "Binance", "SOLUSDT", "SOL")}
