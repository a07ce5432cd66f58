"""A local, faithful emulator of the CoinGlass v4 API (REST + WebSocket) for the demo, tests and benchmarks.

    from cgpreset.emulator import serve

    with serve(plan="standard", seed=7) as emu:
        emu.base_url   # "http://127.0.0.1:<port>"     (REST; paths /api/...)
        emu.ws_url     # "ws://127.0.0.1:<port>/ws-api"
        emu.api_key    # the one key it accepts
        emu.recorded() # every REST request (never the key)

Same paths, parameters, envelopes, error bodies, headers, field names and value types as the
CoinGlass v4 docs and the real answers (tests/fixtures/); data is deterministic from the seed;
faults are scripted per path (see faults.py). Every layer of the catalogue in effect is served:
the shipped ones by hand-written answers, any other from its definition (read per request, so
`cgpreset.layers.use(...)` adds a path at once). Module map: data.py (universe), bars.py and
market.py (generated values), api.py (answers), layered.py and synth.py (answers and rows from a
layer's definition), bodies.py (errors, envelope), rows.py (windows, row shapes), rest.py (HTTP),
ws.py (WebSocket), faults.py, keybudget.py, recorder.py.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cgpreset.clock import wall_ms
from cgpreset.emulator.api import ApiModel
from cgpreset.emulator.data import LIQ_CHANNELS
from cgpreset.emulator.faults import FaultPlan, FaultRule, load_faults, parse_faults
from cgpreset.emulator.keybudget import SlidingWindow
from cgpreset.emulator.recorder import RecordedRequest, Recorder, WsConnection, WsFrame
from cgpreset.emulator.rest import RestCore, RestServer
from cgpreset.plans import Plan

__all__ = [
    "Emulator",
    "FaultPlan",
    "FaultRule",
    "RecordedRequest",
    "WsConnection",
    "WsFrame",
    "load_faults",
    "parse_faults",
    "serve",
]


class Emulator:
    """A running emulator: URLs, key, plan, records and runtime switches. Built by `serve`."""

    def __init__(
        self,
        *,
        plan: str = "standard",
        seed: int = 7,
        latency_ms: float = 0,
        faults: Any = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ws_port: int = 0,
        rate_limit_status: int = 200,
        ws_drop_after: float | None = None,
        ws_idle_timeout: float | None = None,
        ws_event_rate: float = 20.0,
        ws_liquidation_channels: Sequence[str] = LIQ_CHANNELS,
        markets_page_cap: int | None = None,
        now_ms: Callable[[], int] | None = None,
        key_budget: int | None = None,
        ws_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit_status not in (200, 429):
            raise ValueError("rate_limit_status must be 200 or 429")
        self._plan = Plan(plan.lower())
        self.seed = seed
        self.api_key = api_key or "cg-emu-" + secrets.token_hex(16)
        self._now_ms = now_ms or wall_ms
        self._recorder = Recorder()
        self._core = RestCore(
            api_key=self.api_key,
            plan=self._plan,
            model=ApiModel(self._plan, seed, self._now_ms, markets_page_cap=markets_page_cap),
            window=SlidingWindow(key_budget or self._plan.rate_per_minute),
            recorder=self._recorder,
            faults=parse_faults(faults, default_seed=seed),
            latency_ms=latency_ms,
            rate_limit_status=rate_limit_status,
        )
        self._rest = RestServer(self._core, host, port)
        from cgpreset.emulator.ws import WsServer  # imported here: websockets is only needed once a server starts

        self._ws = WsServer(
            api_key=self.api_key, plan=self._plan, seed=seed, recorder=self._recorder, now_ms=self._now_ms,
            host=host, port=ws_port, drop_after=ws_drop_after, idle_timeout=ws_idle_timeout,
            event_rate=ws_event_rate, liquidation_channels=ws_liquidation_channels, clock=ws_clock,
        )
        self._host = host

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Emulator:
        self._rest.start()
        try:
            self._ws.start()
        except BaseException:
            self._rest.stop()
            raise
        return self

    def stop(self) -> None:
        self._ws.stop()
        self._rest.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Emulator(plan={self.plan!r}, base_url={self.base_url!r}, ws_url={self.ws_url!r}, key=<set>)"

    # -- public surface ----------------------------------------------------------------------------

    @property
    def plan(self) -> str:
        return self._plan.value

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._rest.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self._ws.port}/ws-api"

    @property
    def errors(self) -> list[str]:
        """Tracebacks of emulator bugs (each was answered as code 500); empty in a healthy run."""
        return list(self._core.errors)

    def recorded(self) -> list[RecordedRequest]:
        """Every REST request so far, oldest first."""
        return self._recorder.requests()

    def ws_recorded(self) -> list[WsConnection]:
        """Every WebSocket connection so far (snapshots), with its frames and close reason."""
        return self._recorder.ws()

    def set_faults(self, faults: Any) -> None:
        """Replace the fault rules (a list of FaultRule/dicts, or {"seed":..,"rules":[..]}); counters restart."""
        self._core.faults = parse_faults(faults, default_seed=self.seed)

    def reset_records(self) -> None:
        """Forget recorded requests and closed WS connections; the rate window restarts too."""
        self._recorder.reset()
        self._core.window.reset()


@contextmanager
def serve(
    plan: str = "standard",
    seed: int = 7,
    latency_ms: float = 0,
    faults: Any = None,
    api_key: str | None = None,
    port: int = 0,
    ws_port: int = 0,
    rate_limit_status: int = 200,
    ws_drop_after: float | None = None,
    ws_idle_timeout: float | None = None,
    ws_event_rate: float = 20.0,
    ws_liquidation_channels: Sequence[str] = LIQ_CHANNELS,
    markets_page_cap: int | None = None,
    now_ms: Callable[[], int] | None = None,
    host: str = "127.0.0.1",
    key_budget: int | None = None,
    ws_clock: Callable[[], float] = time.monotonic,
) -> Iterator[Emulator]:
    """Run the emulator (REST + WebSocket) in background threads for the `with` block.

    `ws_clock` (monotonic seconds) times the WebSocket side's drop_after, idle_timeout and records.
    """
    emu = Emulator(
        plan=plan, seed=seed, latency_ms=latency_ms, faults=faults, api_key=api_key, host=host, port=port,
        ws_port=ws_port, rate_limit_status=rate_limit_status, ws_drop_after=ws_drop_after,
        ws_idle_timeout=ws_idle_timeout, ws_event_rate=ws_event_rate,
        ws_liquidation_channels=ws_liquidation_channels, markets_page_cap=markets_page_cap, now_ms=now_ms,
        key_budget=key_budget, ws_clock=ws_clock,
    )
    with emu:
        yield emu
