"""`cgpreset doctor` and the CLI's error contract: one line on stderr, the documented exit code."""

from __future__ import annotations

import json

import responses
from click.testing import CliRunner

from cgpreset.cli import cli

BASE = "http://api.test"
KEY = "doctor-key-0123456789"


def env(**extra: str) -> dict[str, str]:
    return {"CGPRESET_BASE_URL": BASE, "COINGLASS_API_KEY": KEY, "CGPRESET_MAX_ATTEMPTS": "1", **extra}


@responses.activate
def test_doctor_reports_plan_budget_and_latency_without_the_key() -> None:
    headers = {"API-KEY-MAX-LIMIT": "300", "API-KEY-USE-LIMIT": "4"}
    responses.get(BASE + "/api/futures/supported-coins", json={"code": "0", "data": ["BTC"]}, headers=headers)
    responses.get(BASE + "/api/user/account/subscription",
                  json={"code": "0", "data": {"level": "STANDARD", "expire_time": 1, "expired": False}},
                  headers=headers)
    result = CliRunner().invoke(cli, ["doctor", "--json"], env=env(), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["key"] == "<set>" and out["plan"] == "standard" and out["rate_per_minute"] == 300
    assert out["error"] is None and out["latency_ms"] >= 0
    assert KEY not in result.output


@responses.activate
def test_doctor_exits_3_with_one_line_when_the_key_is_refused() -> None:
    responses.get(BASE + "/api/futures/supported-coins", json={"code": "400", "msg": "Invalid API key provided"})
    result = CliRunner().invoke(cli, ["doctor"], env=env())
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        "Error: auth: GET /api/futures/supported-coins: Invalid API key provided (code 400)"
    ]
    assert "Traceback" not in result.output and KEY not in result.output


def test_bad_setting_exits_2() -> None:
    result = CliRunner().invoke(cli, ["doctor"], env=env(CGPRESET_PLAN="gold"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: setting CGPRESET_PLAN:")


def test_without_a_key_doctor_says_so_and_exits_3() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json"], env={}, catch_exceptions=False)
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: auth: no COINGLASS_API_KEY set: export your key (a local cgpreset emulator prints one), "
        "or add --emulator to use the embedded emulator (synthetic data)"]


def test_with_emulator_doctor_uses_the_embedded_emulator() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--json", "--emulator"], env={}, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "using the embedded CoinGlass emulator" in result.stderr
    out = json.loads(result.stdout)
    assert out["embedded_emulator"] is True and out["base_url"].startswith("http://127.0.0.1:")
    assert out["plan"] == "standard" and out["rate_per_minute"] == 300


def test_against_the_emulator_with_a_wrong_key_exits_3(emulator) -> None:
    env = {"CGPRESET_BASE_URL": emulator.base_url, "COINGLASS_API_KEY": "wrong-key-123456"}
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "Error: auth: GET /api/futures/supported-coins: Invalid API key provided (code 400)"
    )
    assert "wrong-key-123456" not in result.output


def test_offline_commands_do_not_depend_on_runtime_settings() -> None:
    result = CliRunner().invoke(cli, ["schema"], env={"CGPRESET_CONCURRENCY": "0"})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["additionalProperties"] is False


@responses.activate
def test_debug_logging_shows_requests_but_never_the_key() -> None:
    responses.get(BASE + "/api/futures/supported-coins", json={"code": "0", "data": ["BTC"]},
                  headers={"API-KEY-MAX-LIMIT": "300"})
    responses.get(BASE + "/api/user/account/subscription",
                  json={"code": "0", "data": {"level": "STANDARD"}})
    result = CliRunner().invoke(cli, ["-vv", "doctor"], env=env(), catch_exceptions=False)
    assert result.exit_code == 0
    assert "INFO cgpreset.client: GET /api/futures/supported-coins {} -> HTTP 200" in result.stderr
    assert KEY not in result.output
