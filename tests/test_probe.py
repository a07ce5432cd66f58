"""`doctor --probe`: what the API serves, compared with the catalogue (real samples, then the emulator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset import layers
from cgpreset.api.catalogue import ENDPOINTS
from cgpreset.cli import cli
from cgpreset.diagnose.probe import inspect, probe_params
from cgpreset.emulator import serve
from cgpreset.plans import Plan

from .conftest import load_fixture


def _fields(ins: Any) -> dict[str, tuple[list[str], list[str]]]:
    return {f.name: (f.spellings, f.types) for f in ins.fields}


def test_real_liquidation_exchange_list_uses_the_camel_case_spelling() -> None:
    data = load_fixture("futures_liquidation_exchange-list.json")["data"]
    ins = inspect(ENDPOINTS["liquidation-exchange-list"], data)
    assert ins.problems == [] and ins.rows == 4
    assert _fields(ins)["long_liquidation_usd"] == (["longLiquidation_usd"], ["number"])


def test_real_rows_with_numbers_as_strings_and_mixed_types_are_reported_not_refused() -> None:
    funding = inspect(ENDPOINTS["funding-rate-history"], load_fixture("futures_funding-rate_history.json")["data"])
    assert funding.problems == [] and _fields(funding)["open"][1] == ["string"]
    rows = load_fixture("futures_open-interest_aggregated-history.rows-observed.json")
    rows[1]["time"] = rows[0]["time"] + 3_600_000  # the source of row 2 gave no time
    oi = inspect(ENDPOINTS["open-interest-aggregated-history"], rows)
    assert oi.problems == [] and _fields(oi)["high"][1] == ["number", "string"]


@pytest.mark.parametrize(("rows", "problem"), [
    ([{"time": 1764000000, "open": "1", "high": "1", "low": "1", "close": "1"}],
     "time: 1764000000 looks like seconds, not epoch milliseconds"),
    ([{"time": 1764000000000, "open": "-", "high": "1", "low": "1", "close": "1"}],
     "row 0 field 'open': expected a number, got str"),
    ([{"time": 1764000000000, "high": "1", "low": "1", "close": "1"}], "row 0 has no field 'open'"),
    ({"time": 1}, "`data` is dict, expected a list"),
])
def test_drift_is_named_in_the_decoders_words(rows: Any, problem: str) -> None:
    assert problem in inspect(ENDPOINTS["funding-rate-history"], rows).problems


def test_probe_params_fit_the_plan() -> None:
    assert probe_params(ENDPOINTS["funding-rate-history"], Plan.HOBBYIST) == {
        "exchange": "Binance", "symbol": "BTCUSDT", "interval": "4h", "limit": 3}
    assert probe_params(ENDPOINTS["open-interest-aggregated-history"], Plan.STANDARD) == {
        "symbol": "BTC", "interval": "1h", "limit": 3}
    assert probe_params(ENDPOINTS["liquidation-exchange-list"], Plan.STANDARD) == {"range": "1h", "symbol": "BTC"}


def _doctor(emu: Any, *args: str) -> Any:
    env = {"CGPRESET_BASE_URL": emu.base_url, "COINGLASS_API_KEY": emu.api_key, "CGPRESET_MAX_ATTEMPTS": "1"}
    return CliRunner().invoke(cli, ["doctor", "--probe", *args], env=env)


def test_the_emulator_matches_the_catalogue(emulator: Any) -> None:
    result = _doctor(emulator, "--json")
    assert result.exit_code == 0, result.output
    probe = json.loads(result.stdout)["probe"]
    assert [p["endpoint"] for p in probe] == list(ENDPOINTS)
    assert {p["outcome"] for p in probe} == {"match"}


def test_a_server_message_quoting_the_key_is_redacted_everywhere(emulator: Any) -> None:
    emulator.set_faults([{"path": "/api/futures/funding-rate/history", "kind": "body", "code": "400",
                          "msg": f"invalid parameter for key {emulator.api_key}"}])
    for args in (["--json"], []):
        result = _doctor(emulator, *args)
        assert result.exit_code == 1, result.output
        assert emulator.api_key not in result.output
        assert "invalid parameter for key <redacted>" in " ".join(result.output.split())


def test_probe_exit_codes() -> None:
    from cgpreset.diagnose.probe import FAILED, MATCH, SKIPPED, ProbeResult, probe_exit_code
    from cgpreset.errors import AuthError, ServerError

    ep = ENDPOINTS["supported-coins"]
    refused = ProbeResult(ep, {}, FAILED, error=AuthError("Invalid API key provided", code="400"))
    down = ProbeResult(ep, {}, FAILED, error=ServerError("Server Error", code="500"))
    assert probe_exit_code([ProbeResult(ep, {}, MATCH), ProbeResult(ep, {}, SKIPPED)]) == 0
    assert probe_exit_code([refused, refused, ProbeResult(ep, {}, SKIPPED)]) == 3
    assert probe_exit_code([refused, down]) == 1


def test_a_hobbyist_key_skips_what_its_plan_lacks() -> None:
    with serve(plan="hobbyist", seed=7) as emu:
        result = _doctor(emu, "--json")
    assert result.exit_code == 0, result.output
    outcomes = {p["endpoint"]: (p["outcome"], p["reason"]) for p in json.loads(result.stdout)["probe"]}
    assert outcomes["coins-markets"] == ("skipped", "needs the standard plan")


def test_drift_and_respellings_against_the_emulator(emulator: Any) -> None:
    emulator.set_faults([
        {"path": "/api/futures/liquidation/aggregated-history", "kind": "drop",
         "fields": ["aggregated_long_liquidation_usd"]},
        {"path": "/api/futures/liquidation/exchange-list", "kind": "drift",
         "rename": {"longLiquidation_usd": "long_liquidation_usd"}},
        {"path": "/api/futures/open-interest/aggregated-history", "kind": "types", "mode": "to_num"},
    ])
    result = _doctor(emulator, "--json")
    assert result.exit_code == 1
    endpoints = len(ENDPOINTS)  # discovery's and every shipped layer's
    assert result.stderr.splitlines()[-1] == (f"Error: probe: 1 of {endpoints} endpoints did not answer as the "
                                              "catalogue expects: liquidation-aggregated-history (drift)")
    probe = {p["endpoint"]: p for p in json.loads(result.stdout)["probe"]}
    assert probe["liquidation-aggregated-history"]["problems"] == [
        "row 0 has no field 'aggregated_long_liquidation_usd'"]  # run-preset's decoder's words
    liq = {f["name"]: f for f in probe["liquidation-exchange-list"]["fields"]}
    assert probe["liquidation-exchange-list"]["outcome"] == "match"
    assert liq["long_liquidation_usd"]["spellings"] == ["long_liquidation_usd"]
    oi = {f["name"]: f for f in probe["open-interest-aggregated-history"]["fields"]}
    assert oi["open"]["types"] == ["number"]  # the emulator's strings, served as numbers


def test_the_table_names_spellings_and_types(emulator: Any) -> None:
    result = _doctor(emulator)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "/api/futures/funding-rate/history match 3" in flat
    assert "open (string); high (string)" in flat


def test_describe_fields_shows_respellings_types_and_unused_fields() -> None:
    from cgpreset.diagnose.probe import MATCH, ProbeResult, describe_fields

    ep = ENDPOINTS["liquidation-exchange-list"]
    rows = [{"exchange": "All", "liquidation_usd": 1.5, "longLiquidation_usd": "1", "shortLiquidation_usd": 0.5,
             "extra": 1}]
    text = describe_fields(ProbeResult(ep, {}, MATCH, inspection=inspect(ep, rows)))
    assert text == ("exchange (string); liquidation_usd (number); long_liquidation_usd as longLiquidation_usd "
                    "(string); short_liquidation_usd as shortLiquidation_usd (number); "
                    "+1 field(s) cgpreset does not use")


def test_a_repos_own_layers_are_probed_beside_the_shipped_ones(emulator: Any, tmp_path: Path) -> None:
    """`doctor --probe` reads ./layers/*.yaml: a repo's layer gets its one small call, with the
    parameters its definition implies (a macro series: an interval and a few bars)."""
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "premium_index.yaml").write_text(
        "name: premium_index\ntitle: Coinbase premium index\n"
        "endpoint: {path: /api/own/premium-index}\n"
        "kind: macro\nhistory: windows\ntime: {field: time, unit: s}\n"
        "fields:\n  - {name: premium, type: number, unit: USD, signed: true}\n"
        "checks: [gaps, freshness]\nchart: lines\n", encoding="utf-8")
    try:
        result = _doctor(emulator, "--json")
    finally:
        layers.reset()
    probe = {p["endpoint"]: p for p in json.loads(result.stdout)["probe"]}
    assert list(probe)[-1] == "own-premium-index" and len(probe) == len(ENDPOINTS) + 1  # the repo's own too
    assert probe["own-premium-index"]["params"] == {"interval": "1h", "limit": 3}
    assert [r.path for r in emulator.recorded()].count("/api/own/premium-index") == 1
