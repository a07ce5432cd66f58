"""One wall clock, injected: what a store stamps (run rows, recorded plans, retirements) comes from
the clock it was opened with, on both backends; the analyst's `read` counts `since` from its own.
Nothing here depends on when the test runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import cgpreset
from cgpreset.clock import wall_ms
from cgpreset.plans import DAY_MS, HOUR_MS
from cgpreset.store import open_store
from tests.fakes import FakeClient
from tests.test_series import NOW, configs

PINNED = 1_700_000_000_000  # 2023-11-14: years before any wall clock this test meets


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return str(request.getfixturevalue("pg_dsn"))


def test_the_store_stamps_with_the_clock_it_was_given(location: str) -> None:
    ticks = iter(range(PINNED, PINNED + 100))
    with open_store(location, clock=lambda: next(ticks)) as store:
        run = store.start_run(source="emulator")
        store.record_plan(run, "standard", max_limit=300)
        store.finish_run(run, exit_code=0, totals={}, outcomes={})
        (row,) = store.runs()
        known = store.known_plan()
    assert PINNED <= row["started_at"] <= row["ended_at"] < PINNED + 100
    assert known is not None and PINNED <= known.at_ms < PINNED + 100


def test_the_wall_clock_is_milliseconds_since_the_epoch() -> None:
    assert 1_700_000_000_000 < wall_ms() < 10_000_000_000_000  # ms, not seconds or ns


def test_read_counts_since_from_its_clock(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with open_store(db) as store:
        cgpreset.run_preset(configs("SOL"), FakeClient(NOW), store, now_ms=NOW)
    every = [r["time"] for r in cgpreset.read(db, "open_interest", coin="SOL")]
    for now in (NOW, NOW + 2 * HOUR_MS, NOW + DAY_MS):
        rows = cgpreset.read(db, "open_interest", coin="SOL", since="5h", clock=lambda now=now: now)
        recent = [r["time"] for r in rows]
        assert recent == [t for t in every if t >= now - 5 * HOUR_MS]
    assert len(every) > 5
