"""The emulator computes a closed history window once: it answers it again from memory, byte for byte."""

from __future__ import annotations

from typing import Any

from cgpreset.emulator.api import ApiModel
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
    assert len(calls) == 3  # the forming bar changes with the clock: computed each time
    now[0] += HOUR_MS  # the next bar: the plan's depth moved, the window is computed again
    assert model.answer(PATH, closed) == first and len(calls) == 4
