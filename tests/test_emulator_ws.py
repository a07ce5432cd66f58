"""WebSocket side of the emulator (spec §9): auth, ping/pong, both liquidation variants, trades,
drop_after and idle_timeout, and the records tests rely on.

Nothing here measures or waits out real time: drop_after and idle_timeout run on a FakeClock the
test moves (`serve(ws_clock=...)`), and every wait is for a frame, a close or a recorded close,
bounded by PATIENCE only so that a broken server fails instead of hanging.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cgpreset.emulator import serve
from cgpreset.emulator.recorder import Recorder, WsConnection
from tests.fakes import FakeClock

from .conftest import load_fixture
from .test_emulator_support import shape

#: Seconds a test waits for a frame or a close that must come: a bound on a failure, never a measurement.
PATIENCE = 30.0
TRADES = "futures_trades@Binance_SOLUSDT@1000"


def dial(emu: Any, key: str | None = "") -> ClientConnection:
    url = emu.ws_url if key is None else f"{emu.ws_url}?cg-api-key={key or emu.api_key}"
    return connect(url, open_timeout=PATIENCE, close_timeout=PATIENCE)


def frames(ws: ClientConnection) -> Iterator[dict[str, Any]]:
    """The pushes as they come (`pong` skipped)."""
    while True:
        text = ws.recv(timeout=PATIENCE)
        if text != "pong":
            yield json.loads(text)


def next_json(ws: ClientConnection, channel: str) -> dict[str, Any]:
    """The next push of `channel` (other channels skipped)."""
    return next(f for f in frames(ws) if f["channel"] == channel)


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> dict[int, threading.Event]:
    """Set, per connection id, once the emulator has recorded that connection's close: a client
    close is recorded by the server after the client has already returned."""
    recorded: defaultdict[int, threading.Event] = defaultdict(threading.Event)
    real = Recorder.ws_close

    def ws_close(self: Recorder, conn: WsConnection, t: float, reason: str) -> None:
        real(self, conn, t, reason)
        recorded[conn.id].set()

    monkeypatch.setattr(Recorder, "ws_close", ws_close)
    return recorded


@pytest.fixture(scope="module")
def emu() -> Any:
    with serve(plan="standard", seed=7, ws_event_rate=100.0) as e:
        yield e


def test_ping_pong_and_records(emu: Any, closes: dict[int, threading.Event]) -> None:
    with dial(emu) as ws:
        ws.send("ping")
        assert ws.recv(timeout=PATIENCE) == "pong"
        ws.send("ping")
        assert ws.recv(timeout=PATIENCE) == "pong"
        closed = closes[emu.ws_recorded()[-1].id]  # taken before the close: the server sets this one
    assert closed.wait(PATIENCE)
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
    liquidations = ["liquidationOrders", "liquidation_orders"]
    with dial(emu) as ws:
        ws.send(json.dumps({"method": "subscribe", "channels": liquidations}))
        next_json(ws, "liquidationOrders")
        next_json(ws, "liquidation_orders")
        ws.send(json.dumps({"method": "unsubscribe", "channels": liquidations}))
        # applied in order: every push round from the first one carrying trades on has no liquidations
        ws.send(json.dumps({"method": "subscribe", "channels": [TRADES]}))
        pushes = frames(ws)
        next(f for f in pushes if f["channel"] == TRADES)
        later = [next(pushes)["channel"] for _ in range(5)]  # at 100 events/s nearly every round has some
    assert later == [TRADES] * 5
    conn = emu.ws_recorded()[-1]
    assert [json.loads(f.text)["channels"] for f in conn.subscribes()] == [liquidations, [TRADES]]
    assert len([f for f in conn.frames if "unsubscribe" in f.text]) == 1 and conn.subscriptions == [TRADES]


def test_futures_trades_channel(emu: Any) -> None:
    with dial(emu) as ws:
        ws.send(json.dumps({"method": "subscribe", "channels": [TRADES]}))
        frame = next_json(ws, TRADES)
    for trade in frame["data"]:
        assert (trade["exchange"], trade["symbol"], trade["base_asset"]) == ("Binance", "SOLUSDT", "SOL")
        assert trade["volume_usd"] >= 1000 and trade["side"] in (1, 2) and trade["price"] > 0


@pytest.mark.parametrize(("key", "message"), [(None, {"code": "401", "msg": "API key missing."}),
                                              ("wrong-key", {"code": "400", "msg": "Invalid API key provided"})])
def test_missing_or_bad_key_is_refused_with_1008(emu: Any, key: str | None, message: dict[str, str]) -> None:
    with dial(emu, key) as ws:
        assert json.loads(ws.recv(timeout=PATIENCE)) == message
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=PATIENCE)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    conn = emu.ws_recorded()[-1]
    assert conn.close_reason == "auth" and conn.key_valid is False and conn.key_present is (key is not None)
    assert "wrong-key" not in repr(conn)


def test_plan_below_standard_is_refused() -> None:
    with serve(plan="startup") as emu, dial(emu) as ws:
        assert json.loads(ws.recv(timeout=PATIENCE)) == {"code": "401", "msg": "Upgrade plan"}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=PATIENCE)


class WatchedClock(FakeClock):
    """A FakeClock that counts its reads, so that a test can wait until the server has looked at
    the time it was moved to (its watchdog reads the clock once per connection per check)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self._read = threading.Condition()

    def __call__(self) -> float:
        now = super().__call__()
        with self._read:
            self.reads += 1
            self._read.notify_all()
        return now

    def looked_at(self, times: int) -> bool:
        """Wait for `times` more reads (True), or PATIENCE (False)."""
        with self._read:
            mark = self.reads
            return self._read.wait_for(lambda: self.reads >= mark + times, PATIENCE)


def ping(ws: ClientConnection) -> None:
    """A ping answered: the server's handler runs (it opened the connection's record at the time then)."""
    ws.send("ping")
    assert ws.recv(timeout=PATIENCE) == "pong"


def test_drop_after_closes_abruptly_when_its_time_is_up() -> None:
    clock = WatchedClock()
    with serve(ws_drop_after=10.0, ws_clock=clock) as emu, dial(emu) as ws:
        ping(ws)  # opened at 0 s, before the clock moves
        clock.sleep(9.5)
        assert clock.looked_at(2)  # the watchdog has checked 9.5 s (at least once, whole)
        ping(ws)  # still open before its time
        clock.sleep(0.5)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=PATIENCE)
        assert info.value.rcvd is None  # no close frame: an abrupt drop (1006 on the client)
        conn = emu.ws_recorded()[-1]
    assert conn.close_reason == "drop_after"
    assert conn.closed is not None and conn.closed - conn.opened == 10.0  # at its time


def test_idle_timeout_spares_pinging_clients_and_closes_silent_ones() -> None:
    clock = WatchedClock()
    with serve(ws_idle_timeout=10.0, ws_clock=clock) as emu, dial(emu) as busy, dial(emu) as silent:
        ping(busy)
        ping(silent)  # at 0 s, then never again
        for step in (3.0, 3.0, 3.0, 0.5):  # busy pings at 3, 6, 9 and 9.5 s: never 10 s quiet
            clock.sleep(step)
            ping(busy)
        assert clock.looked_at(6)  # both watchdogs have checked 9.5 s
        assert [c.closed for c in emu.ws_recorded()] == [None, None]  # silent for 9.5 s: still open
        clock.sleep(0.5)
        with pytest.raises(ConnectionClosed) as info:
            silent.recv(timeout=PATIENCE)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        records = emu.ws_recorded()
    idle = next(c for c in records if c.close_reason == "idle_timeout")
    assert idle.closed is not None and idle.closed - idle.opened == 10.0  # its 10 s quiet, not later
    (alive,) = [c for c in records if c.closed is None]
    assert alive.max_silence(clock()) == 3.0 and len(alive.pings()) == 5
