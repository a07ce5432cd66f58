"""The emulator computes a closed history window once: it answers it again from memory, byte for byte."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset.api.catalogue import layer_endpoint
from cgpreset.emulator.api import HANDWRITTEN, ApiModel
from cgpreset.layers import catalogue, spec
from cgpreset.plans import HOUR_MS, Plan, bar_open

NOW = 1_764_000_000_000 + 25 * 60_000
PATH = "/api/futures/open-interest/aggregated-history"


def _params(start: int, end: int) -> dict[str, str]:
    return {"symbol": "SOL", "interval": "1h", "start_time": str(start), "end_time": str(end), "limit": "1000"}


def test_closed_windows_are_kept_and_the_forming_one_is_not(monkeypatch: Any) -> None:
    now = [NOW]
    model = ApiModel(Plan.STANDARD, 7, lambda: now[0])
    current = bar_open(NOW, "1h")
    closed = _params(current - 100 * HOUR_MS, current)
    calls: list[Any] = []
    real = model._open_interest_aggregated_history
    monkeypatch.setattr(model, "_open_interest_aggregated_history", lambda p: calls.append(p) or real(p))
    first = model.answer(PATH, closed)
    assert model.answer(PATH, closed) is first and len(calls) == 1  # from memory
    assert model.encode(first, lambda b: b"x") == b"x" and model.encode(first, lambda b: b"y") == b"x"
    forming = _params(current - 2 * HOUR_MS, current + HOUR_MS)
    model.answer(PATH, forming)
    model.answer(PATH, forming)
    # the forming bar changes with the clock: computed each time; the window's closed bars once
    assert [(int(p["start_time"]), int(p["end_time"])) for p in calls[1:]] == [
        (current - 2 * HOUR_MS, current), (current, current + HOUR_MS), (current, current + HOUR_MS)]
    now[0] += HOUR_MS  # the next bar: the plan's depth moved, the window is computed again
    assert model.answer(PATH, closed) == first and len(calls) == 5


#: A request's own parameters by layer kind (beyond interval and the window).
KIND_PARAMS = {"pair": {"exchange": "Binance", "symbol": "SOLUSDT"}, "coin": {"symbol": "SOL"},
               "coin_exchanges": {"symbol": "SOL", "exchange_list": "Binance,OKX"}, "macro": {}}


def _direct(model: ApiModel, path: str, params: dict[str, str]) -> Any:
    """The whole window computed at once, as before the split: what a split answer must equal."""
    ls = next(s for s in catalogue().values() if s.path == path)
    if path in HANDWRITTEN:
        return getattr(model, "_" + layer_endpoint(ls).id.replace("-", "_"))(params)
    return model.layers.windowed(ls, params, model.layers.subject(ls, params))


WINDOWED = sorted(s.id for s in catalogue().values() if s.windowed and s.kind in KIND_PARAMS and not s.settings)


@given(layer=st.sampled_from(WINDOWED), minute=st.integers(0, 59), back=st.integers(0, 1200),
       span=st.integers(1, 1100), interval=st.sampled_from(["1h", "4h"]))
@settings(max_examples=80, deadline=None)
def test_a_window_with_the_forming_bar_is_its_kept_closed_bars_and_the_forming_one(
        layer: str, minute: int, back: int, span: int, interval: str) -> None:
    """Whatever the window, the interval and the minute of the hour: the answer built from the kept
    closed part and the forming part is the answer computed whole, row for row."""
    ls = spec(layer)
    now = bar_open(NOW, "1h") + minute * 60_000
    step = 4 * HOUR_MS if interval == "4h" else HOUR_MS
    current = bar_open(now, interval)
    start = current - back * step
    params = {**KIND_PARAMS[ls.kind], "interval": interval, "start_time": str(start),
              "end_time": str(start + span * step), "limit": "1000"}
    model = ApiModel(Plan.STANDARD, 7, lambda: now)
    answer = model.answer(ls.path, params)
    assert answer == _direct(model, ls.path, params)
    assert model.answer(ls.path, params) == answer  # and again, from the kept part
