"""WebSocket side of the emulator (spec §9): auth, ping/pong, both liquidation variants, trades,
drop_after and idle_timeout, and the records tests rely on."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cgpreset.emulator import serve

from .conftest import load_fixture
from .test_emulator_support import shape


def dial(emu: Any, key: str | None = "") -> ClientConnection:
    url = emu.ws_url if key is None else f"{emu.ws_url}?cg-api-key={key or emu.api_key}"
    return connect(url, open_timeout=2, close_timeout=0.5)


def next_json(ws: ClientConnection, channel: str, timeout: float = 2.0) -> dict[str, Any]:
    """The next push of `channel` (skipping `pong` and other channels)."""
    deadline = time.monotonic() + timeout
    while True:
        text = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if text == "pong":
            continue
        frame = json.loads(text)
        if frame["channel"] == channel:
            return frame


def wait_for(predicate: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def emu() -> Any:
    with serve(plan="standard", seed=7, ws_event_rate=100.0) as e:
        yield e


def test_ping_pong_and_records(emu: Any) -> None:
    with dial(emu) as ws:
        ws.send("ping")
        assert ws.recv(timeout=2) == "pong"
        ws.send("ping")
        assert ws.recv(timeout=2) == "pong"
    wait_for(lambda: emu.ws_recorded()[-1].closed is not None)
    conn = emu.ws_recorded()[-1]
    assert conn.key_present and conn.key_valid and conn.path == "/ws-api"
    assert len(conn.pings()) == 2 and conn.close_reason == "client"
    assert conn.last_client_message == conn.frames[-1].t
    assert emu.api_key not in repr(emu.ws_recorded())


@pytest.mark.parametrize("variant", ["variant_A_liquidationOrders_camelCase",
                                     "variant_B_liquidation_orders_snake_case"])
def test_subscribe_gets_liquidations_in_the_documented_shape(emu: Any, variant: str) -> None:
    sample = load_fixture("ws_liquidation-orders.docs-example.json")[variant]
    channel = sample["push"]["channel"]
    with dial(emu) as ws:
        ws.send(json.dumps(sample["subscribe"]))
        frame = next_json(ws, channel)
    assert list(frame) == ["channel", "data"] and frame["channel"] == channel
    assert frame["data"] and all(shape(e) == shape(sample["push"]["data"][0]) for e in frame["data"])
    side_key, symbol_key = "side", "symbol"
    for event in frame["data"]:
        assert event[side_key] in (1, 2)
        assert event[symbol_key].startswith(event.get("baseAsset", event.get("base_asset")))


def test_unsubscribe_stops_pushes_and_both_variants_share_a_connection(emu: Any) -> None:
    with dial(emu) as ws:
        ws.send(json.dumps({"method": "subscribe", "channels": ["liquidationOrders", "liquidation_orders"]}))
        next_json(ws, "liquidationOrders")
        next_json(ws, "liquidation_orders")
        ws.send(json.dumps({"method": "unsubscribe", "channels": ["liquidationOrders", "liquidation_orders"]}))
        time.sleep(0.15)
        while True:  # drain what was already in flight
            try:
                ws.recv(timeout=0.15)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
    conn = emu.ws_recorded()[-1]
    assert [json.loads(f.text)["method"] for f in conn.subscribes()] == ["subscribe"]
    assert len([f for f in conn.frames if "unsubscribe" in f.text]) == 1


def test_futures_trades_channel(emu: Any) -> None:
    channel = "futures_trades@Binance_SOLUSDT@1000"
    with dial(emu) as ws:
        ws.send(json.dumps({"method": "subscribe", "channels": [channel]}))
        frame = next_json(ws, channel)
    for trade in frame["data"]:
        assert (trade["exchange"], trade["symbol"], trade["base_asset"]) == ("Binance", "SOLUSDT", "SOL")
        assert trade["volume_usd"] >= 1000 and trade["side"] in (1, 2) and trade["price"] > 0


@pytest.mark.parametrize(("key", "message"), [(None, {"code": "401", "msg": "API key missing."}),
                                              ("wrong-key", {"code": "400", "msg": "Invalid API key provided"})])
def test_missing_or_bad_key_is_refused_with_1008(emu: Any, key: str | None, message: dict[str, str]) -> None:
    with dial(emu, key) as ws:
        assert json.loads(ws.recv(timeout=2)) == message
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=2)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    conn = emu.ws_recorded()[-1]
    assert conn.close_reason == "auth" and conn.key_valid is False and conn.key_present is (key is not None)
    assert "wrong-key" not in repr(conn)


def test_plan_below_standard_is_refused() -> None:
    with serve(plan="startup") as emu, dial(emu) as ws:
        assert json.loads(ws.recv(timeout=2)) == {"code": "401", "msg": "Upgrade plan"}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)


def test_drop_after_closes_abruptly() -> None:
    with serve(ws_drop_after=0.2) as emu, dial(emu) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.send("ping")
                ws.recv(timeout=1)
                time.sleep(0.02)
        assert 0.15 < time.monotonic() - started < 0.6
        assert info.value.rcvd is None  # no close frame: an abrupt drop (1006 on the client)
        conn = emu.ws_recorded()[-1]
    assert conn.close_reason == "drop_after"


def test_idle_timeout_spares_pinging_clients_and_closes_silent_ones() -> None:
    with serve(ws_idle_timeout=0.25) as emu, dial(emu) as busy, dial(emu) as silent:
        for _ in range(8):  # 0.4 s of pings every 0.05 s
            busy.send("ping")
            assert busy.recv(timeout=1) == "pong"
            time.sleep(0.05)
        with pytest.raises(ConnectionClosed) as info:
            silent.recv(timeout=1)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        by_reason = {c.close_reason: c for c in emu.ws_recorded()}
        alive = [c for c in emu.ws_recorded() if c.closed is None]
    assert "idle_timeout" in by_reason
    assert len(alive) == 1 and alive[0].max_silence(time.monotonic()) < 0.25
    assert len(alive[0].pings()) == 8
