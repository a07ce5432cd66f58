"""`--pushgateway URL` (and CGPRESET_PUSHGATEWAY): a run's metrics pushed per job and shard to a real
Pushgateway (tests/prom_tools.py) and read back; stale shards' groups deleted; a gateway that
is down, refuses or never answers is one `Error:` line, never a traceback or a hang."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families

from cgpreset.errors import OutputError
from cgpreset.run import push
from tests import prom_tools as pgw
from tests.test_run_e2e import invoke, write_configs


@pytest.fixture(scope="session")
def gateway_server() -> Iterator[str]:
    with pgw.server() as url:
        yield url


@pytest.fixture
def gateway(gateway_server: str) -> str:
    """The session's Pushgateway, wiped: each test starts with no group."""
    pgw.wipe(gateway_server)
    return gateway_server


def scraped(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What Prometheus would scrape from the gateway: every sample with its job and shard labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(pgw.get(url, "/metrics")) for s in family.samples}


def pick(samples: dict[Any, float], name: str, **labels: str) -> list[float]:
    return [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]


def _refused_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_run_and_a_sign_off_are_pushed_under_their_jobs_and_read_back(
        tmp_path: Path, gateway: str, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    env = {**emu_env, "CGPRESET_PUSHGATEWAY": gateway}  # from the environment, as in a pod
    run = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db")], env)
    assert run.exit_code == 0, run.output
    health = invoke(["health", str(cfgs), "--store", str(tmp_path / "s.db"), "--pushgateway", gateway], emu_env)
    assert health.exit_code == 0, health.output
    assert pgw.groups(gateway) == {(("job", "cgpreset-run"), ("shard", "all")),
                                   (("job", "cgpreset-health"), ("shard", "all"))}
    samples = scraped(gateway)
    ours = {"job": "cgpreset-run", "shard": "all"}
    assert pick(samples, "cgpreset_run_exit_code", **ours) == [0]
    assert pick(samples, "cgpreset_run_shards", **ours) == [1]
    assert pick(samples, "cgpreset_run_series", outcome="ok", **ours) == [6]
    assert len(pick(samples, "cgpreset_series_age_bars", interval="1h", coin="SOL", **ours)) == 4
    assert pick(samples, "cgpreset_series_missing_bars", layer="funding", **ours) == [0]
    assert pick(samples, "push_failure_time_seconds", **ours) == [0]  # the gateway took it
    assert pick(samples, "cgpreset_health_signed_off", job="cgpreset-health", shard="all") == [1]
    assert emulator.api_key not in pgw.get(gateway, "/metrics")  # the key is in no metric


def test_a_run_stopped_by_a_config_or_store_error_pushes_its_exit_code_beside_the_last_metrics(
        tmp_path: Path, gateway: str, emu_env: dict[str, str]) -> None:
    """CgpresetRunFailed (exit > 1) must see a broken config or a store that is down at once, not
    two schedules later: such a run pushes its exit code and end time; the series' last values stay."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    env = {**emu_env, "CGPRESET_PUSHGATEWAY": gateway}
    assert invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db")], env).exit_code == 0
    ours = {"job": "cgpreset-run", "shard": "all"}
    before = scraped(gateway)
    sol = cfgs / "sol.yaml"
    sol.write_text(sol.read_text().replace("interval: 1h", "interval: 7h", 1))
    broken = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db")], env)
    assert broken.exit_code == 2 and "interval" in broken.stderr
    after = scraped(gateway)
    assert pick(after, "cgpreset_run_exit_code", **ours) == [2]
    ended = pick(after, "cgpreset_run_end_timestamp_seconds", **ours)[0]
    assert ended > pick(before, "cgpreset_run_end_timestamp_seconds", **ours)[0]
    assert pick(after, "cgpreset_series_age_bars", layer="funding", **ours) == \
        pick(before, "cgpreset_series_age_bars", layer="funding", **ours)  # kept, not wiped
    sol.write_text(sol.read_text().replace("interval: 7h", "interval: 1h", 1))
    down = invoke(["run-preset", str(cfgs), "--store", f"postgresql://u:p@127.0.0.1:{_refused_port()}/db"], env)
    assert down.exit_code == 75, down.output
    assert pick(scraped(gateway), "cgpreset_run_exit_code", **ours) == [75]
    assert pgw.groups(gateway) == {(("job", "cgpreset-run"), ("shard", "all"))}


def test_a_shard_count_that_shrank_leaves_no_stale_group(tmp_path: Path, gateway: str,
                                                         emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))

    def run(*extra: str) -> None:
        result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--pushgateway", gateway,
                         *extra], emu_env)
        assert result.exit_code == 0, result.output

    run()
    run("--shard", "1/2")  # sharded now: the unsharded group goes
    assert pgw.groups(gateway) == {(("job", "cgpreset-run"), ("shard", "1"))}
    assert pick(scraped(gateway), "cgpreset_run_shards", shard="1") == [2]
    run("--shard", "0/1")  # one shard left: shard 1 no longer exists
    assert pgw.groups(gateway) == {(("job", "cgpreset-run"), ("shard", "0"))}
    run()
    assert pgw.groups(gateway) == {(("job", "cgpreset-run"), ("shard", "all"))}


def test_groups_that_are_not_ours_stay(tmp_path: Path, gateway: str, emu_env: dict[str, str]) -> None:
    registry = CollectorRegistry()
    Gauge("other_thing", "Someone else's.", registry=registry).set(1)
    from prometheus_client import push_to_gateway

    push_to_gateway(gateway, "cgpreset-run", registry, grouping_key={"shard": "7", "instance": "x"})
    push_to_gateway(gateway, "another-job", registry, grouping_key={"shard": "7"})
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--pushgateway", gateway], emu_env)
    assert result.exit_code == 0, result.output
    assert pgw.groups(gateway) == {(("instance", "x"), ("job", "cgpreset-run"), ("shard", "7")),
                                   (("job", "another-job"), ("shard", "7")),
                                   (("job", "cgpreset-run"), ("shard", "all"))}


def test_a_gateway_that_is_down_is_one_error_line_and_exit_75_after_the_report(
        tmp_path: Path, emu_env: dict[str, str]) -> None:
    """The data is stored; a run again later pushes again: 75, which the podFailurePolicy retries
    (2 would fail the whole Indexed Job, every shard's pod, for one gateway blip)."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    url = f"http://ops:s3cret-pass@127.0.0.1:{_refused_port()}"
    prom = tmp_path / "m.prom"
    result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--json", "--metrics", str(prom),
                     "--pushgateway", url], emu_env)
    assert result.exit_code == 75
    assert json.loads(result.stdout)["exit_code"] == 0  # the report is out, whole
    (line,) = [x for x in result.stderr.splitlines() if not x.startswith("note: ")]  # a new store is noted
    assert line.startswith(f"Error: metrics not pushed: pushgateway http://ops:<redacted>@{url.rpartition('@')[2]}: ")
    assert "refused" in line.lower() and "s3cret" not in result.output
    assert "cgpreset_run_exit_code" in prom.read_text(encoding="utf-8")  # the file went out all the same
    with sqlite3.connect(tmp_path / "s.db") as db:  # the run's row says what the process said
        assert db.execute("SELECT exit_code FROM runs ORDER BY id DESC LIMIT 1").fetchone() == (75,)


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A gateway that refuses every push: a wrong path or credentials (HTTP 401)."""

    def do_PUT(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(401, "Unauthorized")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_gateway_that_refuses_the_push_is_exit_2(tmp_path: Path, emu_env: dict[str, str]) -> None:
    """Running again cannot help a push the gateway refuses (HTTP 4xx): a config error."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    server = http.server.HTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--pushgateway", url], emu_env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: metrics not pushed: pushgateway {url}: HTTP 401 Unauthorized"


def test_a_run_with_findings_keeps_its_exit_code_when_the_push_fails(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "code_500"}])
    result = invoke(["health", str(cfgs), "--pushgateway", f"http://127.0.0.1:{_refused_port()}"],
                    {**emu_env, "CGPRESET_MAX_ATTEMPTS": "1"})
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: metrics not pushed: pushgateway http://127.0.0.1:")


def test_a_gateway_that_never_answers_is_cut_by_the_timeout(tmp_path: Path, emu_env: dict[str, str],
                                                             monkeypatch: Any) -> None:
    """A gateway that accepts connections and says nothing: the push gives up after push.TIMEOUT."""
    monkeypatch.setattr(push, "TIMEOUT", 0.2)
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = invoke(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--pushgateway", url], emu_env)
    assert result.exit_code == 75
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]  # a new store is noted
    assert errors == [f"Error: metrics not pushed: pushgateway {url}: timed out"]


def test_a_bad_gateway_url_is_refused_before_any_request(tmp_path: Path, emulator: Any,
                                                         emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    emulator.reset_records()
    flag = invoke(["run-preset", str(cfgs), "--pushgateway", "ftp://gw:9091"], emu_env)
    assert flag.exit_code == 2
    assert flag.stderr.splitlines()[-1] == ("Error: Invalid value for '--pushgateway': must start with http:// or "
                                            "https:// and a host (e.g. http://pushgateway:9091), not scheme ftp://")
    env = invoke(["health", str(cfgs)], {**emu_env, "CGPRESET_PUSHGATEWAY": "http://u:hunter22@gw:9091/?x=1"})
    assert env.exit_code == 2
    assert env.stderr.splitlines() == [
        "Error: setting CGPRESET_PUSHGATEWAY: the URL must not have a ?query: paths are appended to it"]
    assert emulator.recorded() == []


# -- the push itself -------------------------------------------------------------------------------

def test_the_push_sends_credentials_as_basic_auth_with_its_timeout() -> None:
    sent: list[tuple[str, str, float | None, list[tuple[str, str]]]] = []

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes) -> Any:
        sent.append((url, method, timeout, headers))

        def send() -> None:
            raise TimeoutError("timed out")
        return send

    registry = CollectorRegistry()
    Gauge("x", "X.", registry=registry).set(1)
    with pytest.raises(OutputError) as caught:
        push.push(registry, "https://ops:p%40ss@gw.example:9091/prefix", job=push.RUN_JOB, index=3, count=4,
                  timeout=0.5, handler=handler)
    assert str(caught.value) == "pushgateway https://ops:<redacted>@gw.example:9091/prefix: timed out"
    ((url, method, timeout, headers),) = sent  # the first failure ends it: no listing, no delete
    assert (url, method, timeout) == ("https://gw.example:9091/prefix/metrics/job/cgpreset-run/shard/3", "PUT", 0.5)
    assert ("Authorization", "Basic " + base64.b64encode(b"ops:p@ss").decode()) in headers


@given(st.none() | st.integers(1, 12), st.sets(st.sampled_from(["all", "x", *map(str, range(16))])))
def test_a_layout_deletes_exactly_the_shards_it_does_not_have(count: int | None, present: set[str]) -> None:
    """Shards 0..N-1 (or "all" unsharded) stay; every other shard index, and "all" when sharded,
    goes; labels that are no shard index are not ours to judge."""
    mine = {"all"} if count is None else {str(i) for i in range(count)}
    kept = {v for v in present if not push.stale(v, count)}
    assert kept == present & mine | (present - {"all", *map(str, range(16))})


def test_doctor_shows_the_gateway_without_its_password() -> None:
    from cgpreset.settings import Settings, settings_in_effect

    rows = settings_in_effect(Settings(pushgateway="https://ops:s3cret-pass@gw.example:9091/"))
    assert ("CGPRESET_PUSHGATEWAY", "https://ops:<redacted>@gw.example:9091", "argument") in rows
