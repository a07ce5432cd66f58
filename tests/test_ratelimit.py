"""The proactive limiter: never more than the budget in any window, from many threads, on a fake clock."""

from __future__ import annotations

import threading
from bisect import bisect_left

import pytest

from cgpreset.api.ratelimit import RateLimiter
from tests.conftest import FakeClock


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    for i, t in enumerate(times):
        # requests in [t, t + window)
        j = bisect_left(times, t + window)
        best = max(best, j - i)
    return best


@pytest.mark.parametrize("budget", [30, 80, 300])
def test_many_threads_never_exceed_the_budget_in_any_60s_window(budget: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(budget, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(budget // 2):
            limiter.acquire()
            with lock:
                stamps.append(clock())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 4 * budget
    assert max_in_any_window(stamps, 60.0) <= budget


def test_sequential_use_runs_at_the_budget_not_below_it() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(30, clock=clock, sleep=clock.sleep)
    for _ in range(91):
        limiter.acquire()
    # 91 requests at 30/min take three full windows: the rate stays within 5% of the budget.
    rate_per_min = 90 / (clock() / 60)
    assert 30 * 0.95 <= rate_per_min <= 30
    assert limiter.waited_seconds == pytest.approx(clock())


def test_block_for_holds_everyone_back() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.block_for(10)
    assert limiter.acquire() == pytest.approx(10)


def test_observe_books_foreign_usage_and_resizes() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep)
    limiter.observe(max_limit=30, used=30)
    assert limiter.limit == 30
    assert limiter.acquire() == pytest.approx(limiter.span)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_a_long_wait_is_announced_once_short_ones_stay_quiet(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    caplog.set_level("WARNING", logger="cgpreset.ratelimit")
    limiter.acquire()
    clock.sleep(55.0)
    limiter.acquire()
    limiter.acquire()  # the first start leaves the window at 61 s: a 6 s wait, not announced
    assert caplog.records == []
    limiter.observe(used=30)  # another process spent the budget
    limiter.acquire()
    assert [r.getMessage() for r in caplog.records] == [
        "rate budget spent: 2 of 2 requests in the last minute (2 by this process, 0 by others on the key); "
        "waiting 55 s"]
