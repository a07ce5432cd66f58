"""An incremental run costs at most one request per series, the plan lookup included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgpreset.plans import DAY_MS, HOUR_MS, Plan
from cgpreset.run.engine import run_preset
from cgpreset.store.sqlite import SQLiteStore
from tests.fakes import FakeClient
from tests.test_series import NOW, configs


class Key(FakeClient):
    """A client that must look its plan up (one call) unless told it, and sends API-KEY-MAX-LIMIT."""

    def __init__(self, now_ms: int = NOW, rate_max: int | None = 300) -> None:
        super().__init__(now_ms)
        self.known: Plan | None = None
        self.rate_max = rate_max
        self.lookups = 0

    def assume_plan(self, plan: Plan) -> Plan:
        self.known = self.known or plan
        return self.known

    def plan(self, **kw: Any) -> Plan:
        if self.known is None:
            self.lookups += 1
            self.stats.add(requests=1)
            self.known = Plan.STANDARD
        return self.known


def _run(db: Path, client: Key) -> Any:
    with SQLiteStore(db) as store:
        return run_preset(configs("SOL", "BTC"), client, store, now_ms=client.now_ms)


def test_second_run_reuses_the_recorded_plan_one_request_per_series(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    first = Key()
    _run(db, first)
    assert first.lookups == 1
    second = Key(NOW + HOUR_MS)
    result = _run(db, second)
    assert second.lookups == 0 and second.known == Plan.STANDARD
    assert len(second.calls) + second.lookups <= len(result.results)  # everything counted
    assert result.stats["requests"] == len(result.results)


def test_the_plan_is_asked_again_when_stale_or_when_the_header_disagrees(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    _run(db, Key(rate_max=None))  # looked up; nothing to confirm it later
    quiet = Key(NOW + HOUR_MS, rate_max=None)
    _run(db, quiet)
    assert quiet.lookups == 0
    late = Key(NOW + 2 * DAY_MS)  # past the reuse window: asked again
    _run(db, late)
    assert late.lookups == 1
    moved = Key(NOW + 2 * DAY_MS + HOUR_MS, rate_max=1200)  # the header says the key is Professional now
    _run(db, moved)
    with SQLiteStore(db) as store:
        assert store.known_plan().plan == "professional"  # type: ignore[union-attr]
