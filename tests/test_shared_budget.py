"""One rate budget for every process on the key: server headers win, probe, share, jitter, short 429 waits."""

from __future__ import annotations

import logging
import random
import time

import pytest
import responses

from cgpreset.api.client import CoinGlassClient
from cgpreset.api.ratelimit import PROBE_POLL, SPURIOUS_WAIT, RateLimiter
from cgpreset.emulator.keybudget import SlidingWindow
from cgpreset.plans import Plan
from cgpreset.settings import Settings
from tests.conftest import FakeClock
from tests.test_client import BASE, COINS, KEY, load_fixture, make_client, ok


def test_the_advertised_limit_wins_over_the_plans_table() -> None:
    limiter = RateLimiter(300)
    limiter.observe(max_limit=10, used=1)
    limiter.set_limit(Plan.STANDARD.rate_per_minute)  # a later plan lookup must not undo the header
    assert limiter.limit == 10


@responses.activate
def test_a_plan_lookup_keeps_the_servers_budget(clock: FakeClock) -> None:
    sub = load_fixture("user_account_subscription.docs-example.json")
    responses.get(BASE + "/api/user/account/subscription", json=sub,
                  headers={"API-KEY-MAX-LIMIT": "10", "API-KEY-USE-LIMIT": "1"})
    client = CoinGlassClient(Settings(api_key=KEY, base_url=BASE), sleep=clock.sleep, clock=clock)
    assert client.plan() is Plan.PROFESSIONAL  # 1200 a minute by the table...
    assert client.limiter.limit == 10  # ...but the server says 10


def test_a_process_starts_with_one_probe_not_a_burst() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=lambda s: (clock.sleep(s), limiter.release()), probe=1)
    assert limiter.acquire() == 0  # the probe
    assert limiter.acquire() == pytest.approx(PROBE_POLL)  # held until the probe's answer came back
    assert [limiter.acquire() for _ in range(50)] == [0.0] * 50  # then the budget rules


def test_a_share_takes_only_its_part_of_the_budget() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep, share=0.25)
    limiter.observe(max_limit=120)
    assert limiter.own_limit == 30
    assert [limiter.acquire() for _ in range(30)] == [0.0] * 30
    assert limiter.acquire() == pytest.approx(limiter.span)


def test_the_first_start_is_jittered_by_the_injected_random() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep, jitter=3.0, rng=random.Random(5))
    assert limiter.acquire() == pytest.approx(random.Random(5).uniform(0, 3.0))
    assert limiter.acquire() == 0  # only the first start


def test_four_shards_with_a_quarter_each_never_get_refused() -> None:
    """4 limiters on one key (120/min) against the emulator's window, on one fake clock."""
    clock = FakeClock(start=0.0)
    server = SlidingWindow(120, clock=clock)
    shards = [RateLimiter(300, clock=clock, sleep=clock.sleep, share=0.25, probe=1, jitter=2.0,
                          rng=random.Random(i)) for i in range(4)]
    todo, refused = [90, 90, 90, 90], 0
    while any(todo):
        for i, lim in enumerate(shards):
            if todo[i]:
                lim.acquire()
                admitted, used = server.admit()
                lim.observe(max_limit=120, used=used)
                lim.release()
                refused += not admitted
                todo[i] -= admitted
    assert refused == 0
    # 360 requests at 120/min: 3 windows of the budget; the shards keep within one window of that
    assert clock() <= 2 * 61 + 4 * 2.0  # two more windows after the first burst, plus the jitters


def test_a_refusal_with_budget_left_waits_a_second_not_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep)
    caplog.set_level(logging.WARNING, logger="cgpreset.api.ratelimit")
    limiter.acquire()
    assert limiter.refused(used=2, max_limit=300) == SPURIOUS_WAIT
    assert limiter.acquire() == pytest.approx(SPURIOUS_WAIT)
    assert caplog.messages == ["rate-limit answer: the same answer shows 2 of 300 requests used, so the budget "
                               "is not spent; retrying in 1 s"]


def test_a_refusal_with_the_window_full_waits_until_our_oldest_start_leaves_it() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(3, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.sleep(40.0)
    limiter.observe(max_limit=3, used=3)  # others used two
    assert limiter.refused(used=3, max_limit=3) == pytest.approx(21.0)  # the start at 0 leaves at 61
    assert limiter.refused(retry_after=5) == 5


@responses.activate
def test_client_429_with_budget_left_retries_after_a_second(clock: FakeClock) -> None:
    responses.get(COINS, body="Too Many Requests", status=429,
                  headers={"API-KEY-MAX-LIMIT": "300", "API-KEY-USE-LIMIT": "2"})
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        assert client.request("supported-coins").attempts == 2
    assert sum(clock.sleeps) == pytest.approx(SPURIOUS_WAIT)  # not 61 s


def test_share_must_be_in_range() -> None:
    with pytest.raises(ValueError):
        RateLimiter(10, share=0)


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.1", "nan"])
def test_budget_share_out_of_range_is_a_usage_error(bad: str) -> None:
    from click.testing import CliRunner

    from cgpreset.cli import cli

    r = CliRunner().invoke(cli, ["run-preset", ".", "--budget-share", bad])
    assert r.exit_code == 2 and "--budget-share" in r.stderr


def test_sigterm_ends_the_start_jitter_at_once() -> None:
    """The limiter waits with the injected sleep: the process-wide stop flag ends a jitter wait."""
    from cgpreset.api import cancel
    from cgpreset.errors import StopRequestedError

    limiter = RateLimiter(300, sleep=cancel.sleep, jitter=3600.0, rng=random.Random(1))
    cancel.CANCEL.set()
    try:
        started = time.monotonic()
        with pytest.raises(StopRequestedError):
            limiter.acquire()
        assert time.monotonic() - started < 1.0
    finally:
        cancel.CANCEL.clear()


def test_a_probe_that_never_answers_holds_the_others_back_only_a_few_seconds() -> None:
    from cgpreset.api.ratelimit import PROBE_MAX_WAIT

    clock = FakeClock(start=0.0)
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep, probe=1)
    limiter.acquire()  # its answer never comes (a hanging server)
    assert limiter.acquire() == pytest.approx(PROBE_MAX_WAIT, abs=PROBE_POLL)
