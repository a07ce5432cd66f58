"""Test fakes shared across the suite: a clock that moves only when slept on, an async sleep on
it, an event loop on virtual time, and a CoinGlass client that answers from generated data (for
the run engine and health).

Beside conftest.py, which re-exports FakeClock (older tests import it from there).
"""

from __future__ import annotations

import asyncio
import math
import selectors
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from cgpreset.api.catalogue import Endpoint, endpoint
from cgpreset.api.deadline import Deadline
from cgpreset.api.session import Response
from cgpreset.api.stats import ClientStats
from cgpreset.errors import ApiError, DeadlineExceededError
from cgpreset.plans import DAY_MS, Plan, bar_open, interval_ms
from cgpreset.redact import redact_key

T = TypeVar("T")

#: The runner tests' "now": 25 minutes into an hour (the same as tests/test_series.py's NOW).
NOW = 1_764_000_000_000 + 25 * 60_000


class FakeClock:
    """A monotonic clock that only moves when someone sleeps; thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)


def fake_time() -> tuple[FakeClock, Callable[[float], Any]]:
    """A fake clock and an async sleep that moves it: backoff and pauses take no real time."""
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    return clock, sleep


def fake_rows(ep: Endpoint, params: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    """Consistent data shaped like the API's (numbers as strings where the API sends strings)."""
    if ep.id == "liquidation-exchange-list":
        parts = [("Binance", 30.0, 10.0), ("OKX", 20.0, 5.0), ("Bybit", 10.0, 1.0), ("HTX", 4.0, 0.0)]
        long_all, short_all = sum(p[1] for p in parts), sum(p[2] for p in parts)
        return [{"exchange": n, "liquidation_usd": lo + sh, "longLiquidation_usd": lo, "shortLiquidation_usd": sh}
                for n, lo, sh in [("All", long_all, short_all), *parts]]
    if ep.id == "etf-bitcoin-flow-history":
        days = range(bar_open(now_ms, "1d") - 40 * DAY_MS, bar_open(now_ms, "1d"), DAY_MS)
        return [{"timestamp": d, "flow_usd": 3.0e6 + d % 7, "price_usd": 90000,
                 "etf_flows": [{"etf_ticker": "IBIT", "flow_usd": 2.0e6},
                               {"etf_ticker": "FBTC", "flow_usd": 1.0e6 + d % 7}]}
                for d in days]
    times = _bar_times(params, now_ms)
    if ep.id in ("funding-rate-history", "open-interest-aggregated-history"):
        step = interval_ms(params["interval"])
        return [{"time": t, "open": "1.0", "high": "2.0", "low": "0.5", "close": str(1 + (t // step) % 5 / 10)}
                for t in times]
    if ep.id == "liquidation-aggregated-history":
        return [{"time": t, "aggregated_long_liquidation_usd": 5.0 + t % 3,
                 "aggregated_short_liquidation_usd": 1.0} for t in times]
    if ep.id == "aggregated-taker-buy-sell-volume-history":
        return [{"time": t, "aggregated_buy_volume_usd": 7.0, "aggregated_sell_volume_usd": 6.0 + t % 2}
                for t in times]
    return typed_rows(ep, times)


def _bar_times(params: dict[str, Any], now_ms: int) -> list[int]:
    """The bar opens of the window asked for, up to now (at most `limit`); the last 40 days
    without a window."""
    if "start_time" not in params:
        return list(range(bar_open(now_ms, "1d") - 40 * DAY_MS, bar_open(now_ms, "1d"), DAY_MS))
    step = interval_ms(params["interval"])
    last = min(params["end_time"] - 1, now_ms)
    times = range(bar_open(params["start_time"], params["interval"]), bar_open(last, params["interval"]) + 1, step)
    return list(times)[: params.get("limit", 1000)]


def typed_rows(ep: Endpoint, times: list[int]) -> list[dict[str, Any]]:
    """Rows of any other layer, from its field types: numbers as strings (low 0.5 <= 1.x <= high
    2, so OHLC holds), the time in the unit its definition names."""
    scale = 1000 if ep.time_unit == "s" else 1
    values = {"number": lambda name, i: {"low": "0.5", "high": "2"}.get(name, f"1.{i % 5}"),
              "int": lambda name, i: i, "str": lambda name, i: "x", "bool": lambda name, i: True,
              "list": lambda name, i: []}
    return [{**({ep.time_field: t // scale} if ep.time_field else {}),
             **{f.name: values[f.type](f.name, i) for f in ep.fields if f.name != ep.time_field}}
            for i, t in enumerate(times)]


class FakeLimiter:
    """The limiter as a run's stats and progress read it: nobody ever waits."""

    wall_waited_seconds = 0.0
    own_limit = 300

    def wall_waited(self) -> float:
        return self.wall_waited_seconds

    def seconds_for(self, n: int) -> float:
        return 0.0


class FakeClient:
    """Answers like CoinGlass from generated data; `fail` maps endpoint id -> exception to raise.

    A `Client` (cgpreset.api.protocol) like CoinGlassClient: a call past its `deadline` raises
    DeadlineExceededError before anything is sent; the plan is like one fixed by the settings
    (`assume_plan` keeps it), unless it is an ApiError (a lookup that fails), which a plan known
    from before replaces, as the real client's unknown plan is.
    """

    def __init__(self, now_ms: int = NOW, *, fail: dict[str, ApiError] | None = None,
                 empty: set[str] | None = None, plan: Plan | ApiError = Plan.STANDARD,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.now_ms = now_ms
        self.fail = fail or {}
        self.empty = empty or set()
        self._plan = plan
        self._clock = clock
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.deadlines_seen: list[float | None] = []  # each call's deadline, as it was when the call came
        self.stats = ClientStats()
        self.limiter = FakeLimiter()
        self.rate_max: int | None = None
        self.rate_used: int | None = None
        self._lock = threading.Lock()

    @property
    def clock(self) -> float:
        return self._clock()

    def plan(self, *, deadline: Deadline | None = None) -> Plan:
        if isinstance(self._plan, ApiError):
            raise self._plan
        return self._plan

    def assume_plan(self, plan: Plan) -> Plan:
        with self._lock:
            if isinstance(self._plan, ApiError):
                self._plan = plan
            return self._plan

    def redact(self, text: str) -> str:
        return redact_key(text, None)  # the fake holds no key: only `cg-api-key=`-like values go

    def request(self, key: str | Endpoint, params: Mapping[str, Any] | None = None, *,
                deadline: Deadline | None = None) -> Response:
        ep = key if isinstance(key, Endpoint) else endpoint(key)
        params = dict(params or {})
        at = None if deadline is None else deadline.at
        with self._lock:
            self.deadlines_seen.append(at)
        if at is not None and self._clock() >= at:
            raise DeadlineExceededError("deadline reached before the request could start", path=ep.path)
        with self._lock:
            self.calls.append((ep.id, params))
        self.stats.add(requests=1)
        if ep.id in self.fail:
            raise self.fail[ep.id]
        data = [] if ep.id in self.empty else fake_rows(ep, params, self.now_ms)
        self.stats.add(calls=1)
        return Response(ep.path, params, data, 0.05, 1)


class _IdleJumpSelector(selectors.BaseSelector):
    """A selector that never blocks on a timeout: with nothing ready, virtual time jumps to the
    loop's next timer instead (real waits only with no timer at all: another thread may call in)."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.now = 0.0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return self._real.select(None)
        # a timer a rounding error away still moves time on (else the loop could spin on it forever)
        self.now = max(self.now + timeout, math.nextafter(self.now, math.inf))
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: whenever nothing is ready to run, time jumps to the next
    timer, so `asyncio.sleep`, `wait_for` and `wait(timeout=)` take no real time and happen in a
    fixed order. Only for in-memory peers (tests/ws_fake.FakeWS.connect): a real socket's answer
    would arrive "late" because time jumps while the loop waits for it."""

    def __init__(self) -> None:
        self._virtual = _IdleJumpSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


def run_virtual(main: Callable[[Callable[[], float]], Awaitable[T]]) -> T:
    """Run `main(clock)` on a VirtualTimeLoop; `clock` is the loop's (virtual) time."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop.time))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
