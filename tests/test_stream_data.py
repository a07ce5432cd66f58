"""The stream's data with a life cycle, on both backends: the analyst's `liquidation_events` view,
and `stream --retention-days N` (stored events older than N days go, in short transactions, and
nothing else), with the clock injected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.store import Page, StreamSink, open_store
from cgpreset.stream.events import LiquidationEvent, TradeEvent
from cgpreset.stream.retention import Retention
from tests.fakes import FakeClock
from tests.test_store_conformance import OI, location, view_rows  # noqa: F401 - location: the backends fixture
from tests.test_store_layers import tables

NOW = 1_800_000_000.0  # unix seconds: 2027-01-15T08:00Z
DAY_MS = 86_400_000


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


def _counting(sink: Any) -> list[int]:
    """Count the sink's write transactions (each retention batch is one)."""
    calls: list[int] = []
    real: Callable[[], Any] = sink._tx

    def tx() -> Any:
        calls.append(1)
        return real()

    sink._tx = tx
    return calls


def test_retention_deletes_only_events_older_than_n_days_in_short_batches(location: str) -> None:  # noqa: F811
    now_ms = int(NOW * 1000)
    ages_days = {"BTC": [10, 5, 3, 1], "SOL": [4, 2.5, 0.5], "ETH": [0.1]}
    with open_store(location) as store:
        store.write(Page(OI, [(0, 1.0, 2.0, 0.5, 1.5, 1)], closed_upto=0))  # a run's rows: never touched
    with sink_of(location) as sink:
        sink.start_run(url="ws://x/ws-api", channels=["liquidation_orders"], coins=None, now=NOW - 20 * 86_400)
        sink.add_events([liquidation(c, now_ms - int(a * DAY_MS)) for c, ages in ages_days.items() for a in ages],
                        now=NOW)
        batches = _counting(sink)
        assert sink.forget_events(2, now=NOW, batch=2, max_rows=3) == 3  # a pass stops at its share
        assert sink.forget_events(2, now=NOW, batch=2) == 2
        assert sink.forget_events(2, now=NOW, batch=2) == 0
        assert len(batches) >= 5  # 5 old events, at most 2 per transaction
        assert sink.count_events() == 3
    kept = sorted((r[0], r[6]) for r in view_rows(location, "liquidation_events"))
    assert kept == sorted((c, now_ms - int(a * DAY_MS)) for c, ages in ages_days.items() for a in ages if a <= 2)
    with open_store(location, readonly=True) as store:  # its runs and the run's rows stay
        assert store.count() == 1 and store.stream_liveness(now=NOW) is not None


class _Sink:
    """What Retention asks of a sink, recorded: (days, now, max_rows) per pass."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.calls: list[tuple[float, float, int | None]] = []

    def forget_events(self, days: float, *, now: float, max_rows: int | None = None) -> int:
        self.calls.append((days, now, max_rows))
        return self.answers.pop(0)


def test_retention_runs_at_once_then_hourly_and_goes_on_while_a_pass_finds_more() -> None:
    clock = FakeClock(start=0.0)
    keep = Retention(30, clock, lambda: NOW + clock(), every_s=3600, pass_rows=100)
    sink = _Sink([100, 40, 0])
    assert keep.run(sink) == 100  # due at once; a full pass: more is left
    clock.sleep(10)
    assert keep.run(sink) == 40  # so the next liveness write goes on
    clock.sleep(10)
    assert keep.run(sink) == 0 and len(sink.calls) == 2  # then not before the hour
    clock.sleep(3600)
    assert keep.run(sink) == 0 and sink.calls[-1] == (30, NOW + 3620, 100)
    assert keep.forgotten == 140
    assert Retention(None, clock, clock).run(sink) == 0 and len(sink.calls) == 3  # no --retention-days
    assert Retention(30, clock, clock).run(None) == 0  # no --store


def test_a_stream_with_retention_days_forgets_old_events_while_it_runs(tmp_path: Any) -> None:
    from tests.test_stream import _mem, _opts
    from tests.ws_fake import FakeWS

    wall = 1_725_416_318.0 + 60  # the fake server's events are a minute old
    db = tmp_path / "s.db"
    with open_store(db) as store:
        sink = store.stream_sink()
        sink.add_events([liquidation("BTC", int((wall - 3 * 86_400) * 1000))], now=wall)
        srv = FakeWS(push_interval=0.02)
        summary = _mem(srv, _opts(srv.url, duration=0.5, liveness_every=0.1, retention_days=2), store=sink,
                       wall=lambda: wall)
        assert sink.count_events() == summary["stored"] > 0  # the old event went, the new ones stay


def test_retention_days_needs_a_store() -> None:
    result = CliRunner().invoke(cli, ["--emulator", "stream", "--retention-days", "7", "--duration", "1"])
    assert result.exit_code == 2
    assert result.stderr == "Error: --retention-days needs --store (it deletes stored events)\n"


@pytest.mark.parametrize("days", ["0", "-1", "nan"])
def test_retention_days_is_a_positive_number(days: str) -> None:
    result = CliRunner().invoke(cli, ["stream", "--store", "s.db", "--retention-days", days])
    assert result.exit_code == 2 and "--retention-days" in result.stderr
