"""Progress counts requests (not series), with the ETA at the rate in force and the wall-clock
budget-wait time; off a terminal one log line every 10 s (on an injected clock); -q silences it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset.api.client import ClientStats
from cgpreset.api.ratelimit import RateLimiter
from cgpreset.cli import cli
from cgpreset.cli.progress import RequestProgress, show_progress, silenced
from tests.conftest import FakeClock
from tests.test_run_e2e import write_configs


class Pace:
    """The limiter as progress reads it: the rate in force and the wall-clock time waited."""

    def __init__(self, own_limit: int = 300) -> None:
        self.own_limit = own_limit
        self.wall_waited_seconds = 0.0

    def wall_waited(self) -> float:
        return self.wall_waited_seconds

    def seconds_for(self, n: int) -> float:
        return 0.0


def test_progress_counts_requests_with_eta_at_the_rate_in_force() -> None:
    stats, clock, lines, pace = ClientStats(), FakeClock(), [], Pace(300)
    stats.add(requests=3)  # before the command: not counted
    pace.wall_waited_seconds = 4.0  # nor its waits
    progress = RequestProgress("run-preset", stats.as_dict, pace, emit=lines.append, clock=clock)
    progress.expect(600)
    stats.add(requests=150, rate_wait_seconds=25.0)  # summed over threads: not what is shown
    pace.wall_waited_seconds = 16.5
    assert progress.figures() == (150, 600, 90.0, 12.5)
    assert progress.line() == "run-preset: 150/600 requests, ETA 1m at 300/min, 12.5s waiting for the rate budget"
    pace.own_limit = 60  # an answer advertised the key's own 60/min (API-KEY-MAX-LIMIT): the plan's 300 is moot
    assert progress.figures()[2] == 450.0
    assert progress.line() == "run-preset: 150/600 requests, ETA 7m at 60/min, 12.5s waiting for the rate budget"


def test_the_eta_waits_for_the_window_when_the_budget_is_spent() -> None:
    """296 of 300 starts in the first seconds: the other 135 cannot all start before the window's
    oldest starts leave it (61 s after them), whatever 135 requests at 300/min would take."""
    clock = FakeClock()
    limiter = RateLimiter(300, clock=clock, sleep=clock.sleep)
    stats = ClientStats()
    progress = RequestProgress("run-preset", stats.as_dict, limiter, clock=clock)
    progress.expect(431)
    for _ in range(296):
        limiter.acquire()
    stats.add(requests=296)
    clock.sleep(8.0)
    assert limiter.seconds_for(4) == 0.0 and limiter.seconds_for(5) == 53.0
    assert progress.figures()[2] == 53.0  # not 27 s, the 135 requests at 300/min
    clock.sleep(60.0)  # the window has emptied: the rate in force bounds it again
    assert progress.figures()[2] == 135 / 300 * 60


@settings(max_examples=200, deadline=None)
@given(starts=st.lists(st.floats(0, 120), max_size=40), limit=st.integers(1, 12), n=st.integers(0, 30))
def test_seconds_for_is_when_acquire_would_let_the_last_start(starts: list[float], limit: int, n: int) -> None:
    """Whatever the window holds: acquiring n more on a clock moved only by the waits ends exactly
    seconds_for(n) later."""
    clock = FakeClock()
    limiter = RateLimiter(limit, clock=clock, sleep=clock.sleep)
    origin = clock()
    for at in sorted(starts):
        clock.sleep(max(0.0, origin + at - clock()))
        limiter.acquire()
    expected, before = limiter.seconds_for(n), clock()
    for _ in range(n):
        limiter.acquire()
    assert clock() - before == pytest.approx(expected)


def test_the_rate_in_force_is_the_keys_advertised_one_times_the_share() -> None:
    limiter = RateLimiter(300)  # the plan's table says 300/min
    progress = RequestProgress("run-preset", ClientStats().as_dict, limiter)
    progress.expect(120)
    assert progress.rate_per_minute == 300
    limiter.observe(max_limit=60, used=1)  # the key's answer: 60/min
    # 120 at 60/min: the window lets the 60th start 61 s on (the limiter's 1 s margin; one start of
    # another process is in it), the 120th 122 s on, a little after 120 requests at 60/min
    assert progress.rate_per_minute == 60 and progress.figures()[2] == pytest.approx(122.0, abs=0.01)
    limiter.configure(share=0.25)  # shard 0/4
    assert progress.rate_per_minute == 15 and progress.figures()[2] == 480.0


def test_the_wall_clock_wait_counts_a_wait_still_in_progress() -> None:
    clock, seen = FakeClock(), []

    def sleep(seconds: float) -> None:  # half-way through the wait, progress asks
        clock.sleep(seconds / 2)
        seen.append(limiter.wall_waited())
        clock.sleep(seconds / 2)

    limiter = RateLimiter(1, window=60, margin=1, clock=clock, sleep=sleep)
    limiter.acquire()
    limiter.acquire()  # waits one window (61 s)
    assert seen == [pytest.approx(30.5)]
    assert limiter.wall_waited() == limiter.wall_waited_seconds == pytest.approx(61)


def test_off_a_terminal_a_line_every_10_seconds() -> None:
    stats, clock, lines = ClientStats(), FakeClock(), []
    progress = RequestProgress("health", stats.as_dict, Pace(), emit=lines.append, clock=clock)
    for _ in range(25):  # 25 ticks a second apart: lines at 10 s and 20 s
        clock.sleep(1.0)
        stats.add(requests=1)
        progress.tick()
    assert lines == ["health: 10 requests, 0.0s waiting for the rate budget",
                     "health: 20 requests, 0.0s waiting for the rate budget"]


def test_quiet_silences_progress() -> None:
    root = logging.getLogger("cgpreset")
    saved = root.level
    try:
        root.setLevel(logging.ERROR)  # what -q sets
        assert silenced()
        with show_progress("run-preset", type("C", (), {"stats": ClientStats()})()) as progress:
            assert progress is None
    finally:
        root.setLevel(saved)
    assert not silenced()


@pytest.mark.parametrize("command", ["run-preset", "health"])
def test_run_preset_and_health_log_their_progress(tmp_path: Path, emu_env: dict[str, str], command: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cgpreset.cli.progress.LOG_EVERY", 0.0)  # a line at every tick
    monkeypatch.setattr("cgpreset.cli.progress.DRAW_EVERY", 0.01)
    cfgs = write_configs(tmp_path / "c", ("SOL",))
    result = CliRunner().invoke(cli, [command, str(cfgs), "--store", str(tmp_path / "s.db")], env=emu_env)
    progress = [line for line in result.stderr.splitlines() if "cgpreset.progress" in line]
    assert progress, result.stderr
    assert any(f"{command}: " in line and "/" in line and "requests" in line and "ETA" in line for line in progress)


def test_an_online_generate_logs_its_progress(tmp_path: Path, emu_env: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cgpreset.cli.progress.LOG_EVERY", 0.0)
    result = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "deploy")], env=emu_env)
    assert result.exit_code == 0, result.stderr
    assert any("cgpreset.progress: generate: " in line and " requests" in line for line in result.stderr.splitlines())
    offline = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "deploy"), "--offline"], env=emu_env)
    assert offline.exit_code == 0 and "cgpreset.progress" not in offline.stderr
