"""Scripted faults drive the real client: each kind is classified and retried (or not) as designed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from cgpreset.api.client import CoinGlassClient
from cgpreset.emulator import FaultRule, load_faults, parse_faults, serve
from cgpreset.emulator.faults import shape_body
from cgpreset.errors import (
    ApiError,
    AuthError,
    ConfigError,
    CutAnswerError,
    ExitCode,
    InvalidParameterError,
    MalformedResponseError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnsupportedPairError,
)
from cgpreset.settings import Settings

from .conftest import FakeClock
from .test_emulator_support import NOW, get

LIQ = "/api/futures/liquidation/aggregated-history"
LIQ_PARAMS = {"exchange_list": "Binance,OKX", "symbol": "SOL", "interval": "1h", "limit": 5}


def run_client(emu: Any, clock: FakeClock, key: str = "liquidation-aggregated-history",
               params: dict[str, Any] | None = None, api_key: str | None = None) -> tuple[Any, int]:
    """One logical call with the foundation client; (result or exception, HTTP attempts seen)."""
    settings = Settings(api_key=api_key or emu.api_key, read_timeout=0.3, max_attempts=3, plan="standard")
    emu.reset_records()
    with CoinGlassClient(settings, base_url=emu.base_url, sleep=clock.sleep, clock=clock) as client:
        try:
            result: Any = client.fetch(key, LIQ_PARAMS if params is None else params)
        except ApiError as exc:
            result = exc
    return result, len(emu.recorded())


# kind, rule params, expected exception (None = success), retried?
CASES = [
    ("latency", {"ms": 100}, None, False),
    ("latency", {"ms": 600}, TransportError, True),  # longer than the 0.3 s read timeout
    ("http_5xx", {"status": 502}, ServerError, True),
    ("http_5xx", {"status": 503}, ServerError, True),
    ("http_5xx", {"status": 500}, ServerError, True),
    ("code_500", {}, ServerError, True),
    ("rate_limit", {}, RateLimitedError, True),
    ("rate_limit", {"status": 429}, RateLimitedError, True),
    ("hang", {"seconds": 1.0}, TransportError, True),
    ("reset", {}, TransportError, True),
    ("truncated", {}, CutAnswerError, False),  # tried once more (a glitch on the way), then the error
    ("truncated", {"declared": "full"}, TransportError, True),
    ("html", {}, MalformedResponseError, False),
    ("empty", {}, None, False),
    ("drift", {}, MalformedResponseError, False),
    ("drift", {"rename": {"aggregated_short_liquidation_usd": "short_usd"}}, MalformedResponseError, False),
    ("drift", {"add": {"volume_usd": 1}}, None, False),  # a field CoinGlass starts sending: noted, kept raw
    ("echo_key", {}, None, False),
    ("types", {}, None, False),  # numbers as strings: the client coerces (spec §4: types are not stable)
    ("types", {"mode": "bad"}, MalformedResponseError, False),
    # every observed plan-refusal wording (spec §2.3), and the documented non-200 forms
    ("body", {}, PlanError, False),  # 400 "Please upgrade to standard" (REAL S5)
    ("body", {"code": "400", "msg": "Upgrade plan"}, PlanError, False),  # Oct 2025 wording (REAL S13)
    ("body", {"code": "401", "msg": "Upgrade plan"}, PlanError, False),
    ("body", {"status": 401, "code": "401", "msg": "API key missing."}, AuthError, False),  # DOC S1: HTTP 401
    ("body", {"status": 403, "code": "403", "msg": "Forbidden"}, PlanError, False),  # as the interval floor
    ("body", {"status": 404, "code": "404", "msg": "Not Found"}, NotFoundError, False),
    ("body", {"status": 400, "code": "400", "msg": "Invalid interval"}, InvalidParameterError, False),
    ("body", {"status": 503, "code": "503", "msg": "Service Unavailable"}, ServerError, True),
    ("drop", {"fields": ["aggregated_short_liquidation_usd"]}, MalformedResponseError, False),
]


@pytest.fixture(scope="module")
def emu() -> Any:
    with serve(plan="standard", seed=7, now_ms=lambda: NOW) as e:
        yield e


@pytest.mark.parametrize(("kind", "extra", "error", "retried"), CASES,
                         ids=[f"{c[0]}-{'-'.join(map(str, c[1].values())) or 'default'}" for c in CASES])
def test_fault_kind_is_classified_by_the_client(emu: Any, clock: FakeClock, kind: str, extra: dict[str, Any],
                                                error: type[ApiError] | None, retried: bool) -> None:
    emu.set_faults([{"path": LIQ, "kind": kind, **extra}])
    try:
        result, attempts = run_client(emu, clock)
    finally:
        emu.set_faults(None)
    if error is None:
        assert not isinstance(result, Exception), result
        assert attempts == 1
        if kind == "empty":
            assert result == []
        return
    assert type(result) is error, result
    assert result.exit_code == (ExitCode.USAGE if error is InvalidParameterError else ExitCode.API)
    assert result.retryable is retried
    assert attempts == (3 if retried else 2 if kind == "truncated" else 1)
    assert emu.errors == []


def test_a_transient_fault_then_success(emu: Any, clock: FakeClock) -> None:
    emu.set_faults([{"path": "/api/futures/*", "kind": "http_5xx", "status": 502, "times": 2}])
    result, attempts = run_client(emu, clock)
    emu.set_faults(None)
    assert isinstance(result, list) and len(result) == 5
    assert attempts == 3
    assert [r.fault for r in emu.recorded()] == ["http_5xx", "http_5xx", None]
    assert [r.http_status for r in emu.recorded()] == [502, 502, 200]


@pytest.mark.parametrize(("plan", "key", "params", "error"), [
    ("hobbyist", "coins-markets", {}, PlanError),
    ("hobbyist", "funding-rate-history", {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "1h"}, PlanError),
    ("standard", "funding-rate-history", {"exchange": "Binance", "symbol": "BTC", "interval": "1h"},
     UnsupportedPairError),
    ("standard", "funding-rate-history", {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "2m"},
     InvalidParameterError),
    ("standard", "open-interest-aggregated-history", {"symbol": "BTC", "interval": "1h", "limit": 5000},
     InvalidParameterError),
])
def test_api_refusals_are_classified_and_not_retried(clock: FakeClock, plan: str, key: str,
                                                     params: dict[str, Any], error: type[ApiError]) -> None:
    with serve(plan=plan, now_ms=lambda: NOW) as emu:
        result, attempts = run_client(emu, clock, key, params)
    assert type(result) is error, result
    assert attempts == 1


def test_bad_key_and_unknown_path_are_classified(emu: Any, clock: FakeClock) -> None:
    result, attempts = run_client(emu, clock, "supported-coins", {}, api_key="wrong-key-000")
    assert type(result) is AuthError and attempts == 1 and result.exit_code == ExitCode.API
    settings = Settings(api_key=emu.api_key, read_timeout=0.3, max_attempts=3, plan="standard")
    with CoinGlassClient(settings, base_url=emu.base_url + "/nope", sleep=clock.sleep, clock=clock) as client:
        with pytest.raises(NotFoundError):
            client.request("supported-coins")


# -- when rules fire ---------------------------------------------------------------------------------

def _fires(rule: dict[str, Any], calls: int = 10, path: str = "/api/x") -> list[int]:
    plan = parse_faults([rule], default_seed=3)
    return [n for n in range(1, calls + 1) if plan.decide(path)]


def test_nth_every_times_probability_and_globs() -> None:
    assert _fires({"path": "/api/x", "kind": "reset", "nth": 3}) == [3]
    assert _fires({"path": "/api/*", "kind": "reset", "every": 4}) == [4, 8]
    assert _fires({"path": "*", "kind": "reset", "times": 2}) == [1, 2]
    assert _fires({"path": "*", "kind": "reset", "every": 2, "times": 2}) == [2, 4]
    assert _fires({"path": "/api/y", "kind": "reset"}) == []
    some = _fires({"path": "*", "kind": "reset", "probability": 0.5}, calls=200)
    assert some == _fires({"path": "*", "kind": "reset", "probability": 0.5}, calls=200)  # seeded
    assert 60 < len(some) < 140


def test_faults_fire_per_path_at_runtime(emu: Any) -> None:
    emu.set_faults([FaultRule(path="/api/futures/supported-coins", kind="code_500", nth=2)])
    codes = [get(emu, "/api/futures/supported-coins").json()["code"] for _ in range(3)]
    other = get(emu, "/api/futures/supported-exchanges").json()["code"]
    emu.set_faults(None)
    assert codes == ["0", "500", "0"] and other == "0"


def test_html_and_5xx_bodies_look_like_an_edge_proxy(emu: Any) -> None:
    emu.set_faults([{"path": "/api/a", "kind": "html"}, {"path": "/api/b", "kind": "http_5xx", "status": 502}])
    html, bad_gateway = get(emu, "/api/a"), get(emu, "/api/b")
    emu.set_faults(None)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "Cloudflare" in html.text
    assert bad_gateway.status_code == 502 and "502 Bad Gateway" in bad_gateway.text


def test_reset_drops_the_connection(emu: Any) -> None:
    emu.set_faults([{"path": "*", "kind": "reset"}])
    with pytest.raises(requests.ConnectionError):
        get(emu, "/api/futures/supported-coins")
    emu.set_faults(None)
    assert emu.recorded()[-1].http_status == 0


def test_types_fault_flips_strings_and_numbers(emu: Any) -> None:
    emu.set_faults([{"path": "*", "kind": "types"}])
    rows = get(emu, "/api/futures/funding-rate/history", exchange="Binance", symbol="SOLUSDT", interval="8h",
               limit=2).json()["data"]
    emu.set_faults(None)
    assert all(isinstance(r["open"], (int, float)) and isinstance(r["time"], int) for r in rows)


def test_faults_file_yaml_and_json(tmp_path: Path) -> None:
    yml = tmp_path / "faults.yaml"
    yml.write_text("seed: 5\nrules:\n  - path: /api/futures/*\n    kind: latency\n    ms: 50\n"
                   "    probability: 0.5\n  - kind: drift\n    rename: {close: c}\n", encoding="utf-8")
    plan = load_faults(yml)
    assert plan.seed == 5 and [r.kind for r in plan.rules] == ["latency", "drift"]
    assert plan.rules[1].path == "*" and plan.rules[1].rename == {"close": "c"}
    js = tmp_path / "faults.json"
    js.write_text(json.dumps([{"path": "*", "kind": "reset", "nth": 1}]), encoding="utf-8")
    assert load_faults(js, default_seed=9).seed == 9


@pytest.mark.parametrize(("text", "message"), [
    ("rules:\n  - kind: explode\n", "fault kind 'explode'"),
    ("rules:\n  - kind: reset\n    nht: 2\n", "unknown key(s) nht"),
    ("rules:\n  - path: '*'\n", "has no `kind`"),
    ("rules: [\n", "not valid YAML"),
    ("flavour: 1\n", "unknown top-level key(s) flavour"),
    ("rules:\n  - kind: reset\n    probability: 2\n", "probability must be between 0 and 1"),
    ("rules: 5\n", "rules: expected a list of rules, not int"),
    ("seed: abc\nrules: []\n", "seed: expected a whole number, not 'abc'"),
    ("rules:\n  - kind: latency\n    ms: -5\n", "ms must be a number from 0 to 3600, not -5"),
    ("rules:\n  - kind: latency\n    ms: .nan\n", "ms must be a number from 0 to 3600, not nan"),
    ("rules:\n  - kind: http_5xx\n    status: x\n", "status must be a whole number, not 'x'"),
    ("rules:\n  - kind: drift\n    rename: [a]\n", "rename must map field names to field names"),
    ("rules:\n  - kind: drift\n    add: {a: [1]}\n", "add must map field names to plain values"),
    ("rules:\n  - kind: drop\n    fields: a\n", "fields must be a list of field names"),
    ("rules:\n  - kind: drop\n", "fault drop: `fields` must name at least one field"),
    ("rules:\n  - kind: body\n    msg: [x]\n", "msg must be text"),
])
def test_bad_faults_files_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="faults") as info:
        load_faults(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


#: Not UTF-8 (a lone continuation byte, then Latin-1 text): what `head -c 300 /dev/urandom` gives.
NOT_UTF8 = b"\x80\xc0rules: caf\xe9\n"


def test_a_faults_file_that_is_not_utf8_is_one_line_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cgpreset.cli import cli

    path = tmp_path / "g.yaml"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError, match=r"^faults file .*g\.yaml: not UTF-8 text$"):
        load_faults(path)
    result = CliRunner().invoke(cli, ["emulator", "--faults", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"Error: faults file {path}: not UTF-8 text"]


@pytest.mark.parametrize(("unit", "shift"), [("ms", 1_800_000), ("s", 1800)])
def test_a_layers_own_time_field_is_kept_by_types_and_shifted_in_its_unit_by_misaligned(unit: str, shift: int) -> None:
    envelope = {"code": "0", "data": [{"ts": 1_795_600_800, "premium": 1.5}]}
    flipped = shape_body(envelope, FaultRule(path="*", kind="types"), clock=("ts", unit))
    assert flipped["data"] == [{"ts": 1_795_600_800, "premium": "1.5"}]
    moved = shape_body(envelope, FaultRule(path="*", kind="misaligned"), clock=("ts", unit))
    assert moved["data"] == [{"ts": 1_795_600_800 + shift, "premium": 1.5}]
