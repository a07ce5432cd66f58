"""The stream's data with a life cycle, on both backends: the analyst's `liquidation_events` view."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cgpreset.store import StreamSink, open_store
from cgpreset.stream.events import LiquidationEvent, TradeEvent
from tests.test_store_conformance import location, view_rows  # noqa: F401 - location: the backends fixture
from tests.test_store_layers import tables

NOW = 1_800_000_000.0  # unix seconds: 2027-01-15T08:00Z


def liquidation(coin: str, time_ms: int, *, side: str = "long", usd: float = 1000.0) -> LiquidationEvent:
    return LiquidationEvent(channel="liquidation_orders", exchange="Binance", symbol=f"{coin}USDT", base_asset=coin,
                            price=100.5, side=side, side_raw=1 if side == "long" else 2, volume_usd=usd, time=time_ms)


@contextmanager
def sink_of(where: str) -> Iterator[StreamSink]:
    with open_store(where) as store:
        sink = store.stream_sink()
        try:
            yield sink
        finally:
            sink.close()


def test_liquidation_events_has_one_row_per_stored_liquidation(location: str) -> None:  # noqa: F811
    trade = TradeEvent(channel="futures_trades@Binance_BTCUSDT@0", exchange="Binance", symbol="BTCUSDT",
                       base_asset="BTC", price=50_000.0, side="buy", side_raw=2, volume_usd=9e5, time=1_790_000_000_000)
    with sink_of(location) as sink:
        sink.start_run(url="ws://x/ws-api", channels=["liquidation_orders"], coins=None, now=NOW)
        sink.add_events([liquidation("BTC", 1_790_000_000_000), liquidation("SOL", 1_790_000_000_500, side="short",
                                                                            usd=2500.25), trade], now=NOW)
    assert tables(location)["liquidation_events"] == ("coin", "exchange", "symbol", "side", "usd", "price", "time",
                                                      "ts")
    assert view_rows(location, "liquidation_events") == [
        ("BTC", "Binance", "BTCUSDT", "long", 1000.0, 100.5, 1_790_000_000_000, "2026-09-21T14:13:20Z"),
        ("SOL", "Binance", "SOLUSDT", "short", 2500.25, 100.5, 1_790_000_000_500, "2026-09-21T14:13:20Z")]
