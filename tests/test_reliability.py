"""Reliability on the emulator: whole-answer limits, no redirects with the key, a cut body retried once."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.api.client import CoinGlassClient
from cgpreset.cli import cli
from cgpreset.emulator import serve
from cgpreset.errors import ApiError, DeadlineExceededError, MalformedResponseError, RedirectError, TransportError
from cgpreset.settings import Settings

from .conftest import REPO, FakeClock
from .test_emulator_support import NOW
from .test_run_e2e import write_configs

LIQ = "/api/futures/liquidation/aggregated-history"
LIQ_PARAMS = {"exchange_list": "Binance,OKX", "symbol": "SOL", "interval": "1h", "limit": 50}


@pytest.fixture(scope="module")
def emu() -> Any:
    with serve(plan="standard", seed=7, now_ms=lambda: NOW) as e:
        yield e


def _client(emu: Any, clock: Any = time.monotonic, **settings: Any) -> CoinGlassClient:
    s = Settings(**{"api_key": emu.api_key, "plan": "standard", "max_attempts": 1, "read_timeout": 5, **settings})
    sleep = clock.sleep if isinstance(clock, FakeClock) else time.sleep
    return CoinGlassClient(s, base_url=emu.base_url, clock=clock, sleep=sleep)


def _call_bounded(fn: Any, bound: float = 10.0) -> tuple[Any, float]:
    """Run fn in a thread; (result or exception, seconds); fails the test instead of hanging."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - the result under test
            out.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), f"the call was still running after {bound:g}s"
    return out[0], time.monotonic() - started


def test_a_trickled_answer_is_cut_at_the_whole_answer_limit(emu: Any) -> None:
    emu.set_faults([{"path": LIQ, "kind": "trickle", "rate": 40}])
    try:
        with _client(emu, answer_timeout=1.0) as client:
            result, took = _call_bounded(lambda: client.request("liquidation-aggregated-history", LIQ_PARAMS))
    finally:
        emu.set_faults(None)
    assert isinstance(result, TransportError), result
    assert "not complete after 1s" in str(result) and "CGPRESET_ANSWER_TIMEOUT" in str(result)
    assert took < 3.0


def test_a_trickled_answer_stops_at_the_deadline(emu: Any) -> None:
    emu.set_faults([{"path": LIQ, "kind": "trickle", "rate": 40}])
    try:
        with _client(emu) as client:
            client.deadline = time.monotonic() + 1.0
            result, took = _call_bounded(lambda: client.request("liquidation-aggregated-history", LIQ_PARAMS))
    finally:
        emu.set_faults(None)
    assert isinstance(result, DeadlineExceededError), result
    assert took < 3.0  # --deadline held within 2 s


def test_an_answer_over_the_byte_cap_fails_naming_its_size(emu: Any, clock: FakeClock) -> None:
    with _client(emu, clock, max_answer_bytes=1024) as client:
        with pytest.raises(MalformedResponseError) as err:
            client.request("liquidation-aggregated-history", LIQ_PARAMS)
    line = str(err.value)
    assert LIQ in line and "bytes" in line and "1,024-byte cap" in line and "\n" not in line


def test_a_redirect_is_not_followed_and_names_only_the_host(emu: Any, clock: FakeClock) -> None:
    with serve(plan="standard", seed=7, now_ms=lambda: NOW) as other:
        elsewhere = other.base_url.replace("127.0.0.1", "localhost")
        emu.set_faults([{"path": LIQ, "kind": "redirect", "location": elsewhere}])
        try:
            with _client(emu, clock, max_attempts=3) as client:
                with pytest.raises(RedirectError) as err:
                    client.request("liquidation-aggregated-history", LIQ_PARAMS)
        finally:
            emu.set_faults(None)
        assert other.recorded() == []  # the key never reached the other origin
    assert isinstance(err.value, TransportError) and err.value.exit_code == 3
    assert "to host localhost" in str(err.value) and emu.api_key not in str(err.value)
    assert err.value.retryable is False


def test_a_body_cut_once_is_retried_once(emu: Any, clock: FakeClock) -> None:
    emu.set_faults([{"path": LIQ, "kind": "truncated", "times": 1}])
    emu.reset_records()
    try:
        with _client(emu, clock, max_attempts=5) as client:
            rows = client.fetch("liquidation-aggregated-history", LIQ_PARAMS)
    finally:
        emu.set_faults(None)
    assert len(rows) == 50
    assert [r.fault for r in emu.recorded()] == ["truncated", None]


def test_a_body_cut_every_time_fails_after_one_retry(emu: Any, clock: FakeClock) -> None:
    emu.set_faults([{"path": LIQ, "kind": "truncated"}])
    emu.reset_records()
    try:
        with _client(emu, clock, max_attempts=5) as client, pytest.raises(ApiError):
            client.fetch("liquidation-aggregated-history", LIQ_PARAMS)
    finally:
        emu.set_faults(None)
    assert len(emu.recorded()) == 2


# -- generate: a short ranking or an empty coin list is the API's problem --------------------------


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    return tmp_path


def _generate(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["generate", "--out", "deploy", *args], env=env)


def test_an_empty_ranking_exits_3_and_prunes_nothing(gitops: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    assert _generate(emu_env).exit_code == 0
    before = sorted(p.name for p in (gitops / "deploy").glob("*.yaml"))
    assert len(before) == 10
    emulator.set_faults([{"path": "/api/futures/coins-markets", "kind": "empty"}])
    result = _generate(emu_env, "--prune")
    assert result.exit_code == 3, result.output
    assert "fewer than top (10)" in result.stderr and len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in (gitops / "deploy").glob("*.yaml")) == before


def test_an_empty_supported_coins_answer_exits_3(gitops: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    emulator.set_faults([{"path": "/api/futures/supported-coins", "kind": "empty"}])
    result = _generate(emu_env)
    assert result.exit_code == 3, result.output
    assert "supported-coins answer is empty" in result.stderr
    assert not (gitops / "deploy").exists()


def test_plan_override_refused_before_any_request(gitops: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    emulator.reset_records()
    result = _generate(emu_env, "--plan", "hobbyist")
    assert result.exit_code == 2 and "(plan hobbyist: --plan)" in result.stderr
    assert emulator.recorded() == []


# -- health: its own short budget and --deadline ---------------------------------------------------


def _health_env(emu_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**emu_env, "CGPRESET_PLAN": "standard", **extra}


def test_health_on_a_hanging_endpoint_tries_twice_not_five_times(tmp_path: Path, emulator: Any,
                                                                 emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "hang", "seconds": 2}])
    emulator.reset_records()
    result = CliRunner().invoke(cli, ["health", str(cfgs)],
                                env=_health_env(emu_env, CGPRESET_READ_TIMEOUT="0.3", CGPRESET_BACKOFF_MAX="0"))
    emulator.set_faults(None)
    assert result.exit_code != 0
    funding = [r for r in emulator.recorded() if r.path == "/api/futures/funding-rate/history"]
    assert len(funding) == 2  # the default CGPRESET_MAX_ATTEMPTS is 5


def test_health_deadline_fails_the_shots_it_cuts(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    emulator.set_faults([{"path": "/api/futures/*", "kind": "hang", "seconds": 20}])
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["health", str(cfgs), "--deadline", "1", "--json"], env=_health_env(emu_env))
    emulator.set_faults(None)
    assert time.monotonic() - started < 3.0
    assert result.exit_code == 1, result.output
    shots = json.loads(result.stdout)["shots"]
    cut = [s for s in shots if s["outcome"] == "failed" and "--deadline" in (s["reason"] or "")]
    assert cut
