"""No key, no synthetic data by accident: a command that calls
the API with no key exits 3 with one line and writes nothing; the embedded emulator answers only
when asked (`--emulator`, before or after the command name, or `demo`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import NO_KEY, cli
from tests.conftest import FIXTURES
from tests.test_run_e2e import FAST, write_configs

REFUSAL = f"Error: auth: {NO_KEY}"
#: Each command family that calls the API, with every output it could write (a store, --metrics, --out).
COMMANDS = {
    "run-preset": ["run-preset", "configs", "--store", "out/s.db", "--metrics", "out/m.prom"],
    "run-preset-dry": ["run-preset", "configs", "--store", "out/s.db", "--dry-run"],
    "health": ["health", "configs", "--metrics", "out/h.prom"],
    "generate": ["generate", "--out", "out/deploy"],
    "generate-kube": ["generate", "--out", "out/deploy", "--kubernetes"],
    "resolve": ["resolve", "--json"],
    "doctor": ["doctor", "--probe"],
    "stream": ["stream", "--config", "configs", "--max-events", "1", "--store", "out/s.db"],
}
#: No key: unset, empty, blank; and CGPRESET_BASE_URL without a key (a local emulator takes a key too).
NO_KEYS = {"unset": {}, "empty": {"COINGLASS_API_KEY": ""}, "blank": {"COINGLASS_API_KEY": " \t"},
           "empty-alias": {"CG_API_KEY": "", "COINGLASS_API_KEY": ""}}


def _errors(stderr: str) -> list[str]:
    """stderr without the notes on shipped inputs (`presets/sol.yaml is not in ...`)."""
    return [line for line in stderr.splitlines() if "using the copy shipped with cgpreset" not in line]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("env", list(NO_KEYS.values()), ids=list(NO_KEYS))
@pytest.mark.parametrize("args", list(COMMANDS.values()), ids=list(COMMANDS))
def test_without_a_key_a_command_that_calls_the_api_exits_3_and_writes_nothing(
        tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "out").mkdir()
    before = _files(tmp_path)
    result = CliRunner().invoke(cli, args, env={**FAST, **env})
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert _errors(result.stderr) == [REFUSAL]
    assert "using the embedded CoinGlass emulator" not in result.stderr
    assert _files(tmp_path) == before  # no store, no metrics file, no config, no snapshot


@pytest.mark.parametrize("args", list(COMMANDS.values()), ids=list(COMMANDS))
def test_a_base_url_without_a_key_is_refused_too_and_never_asked(tmp_path: Path, emulator: Any,
                                                                 args: list[str]) -> None:
    write_configs(tmp_path / "configs", coins=("SOL",))
    (tmp_path / "out").mkdir()
    before = _files(tmp_path)
    env = {"CGPRESET_BASE_URL": emulator.base_url, "CGPRESET_WS_URL": emulator.ws_url}
    result = CliRunner().invoke(cli, args, env={**FAST, **env})
    assert result.exit_code == 3, result.output
    assert _errors(result.stderr) == [REFUSAL]
    assert _files(tmp_path) == before
    assert emulator.recorded() == [] and emulator.ws_recorded() == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_emulator_before_or_after_the_command_name_uses_the_embedded_emulator(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], where: str) -> None:
    """Even with a server and its key exported, --emulator talks to the embedded emulator only."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    run = ["run-preset", str(cfgs), "--store", str(tmp_path / "e.db"), "--json"]
    result = CliRunner().invoke(cli, ["--emulator", *run] if where == "before" else [*run, "--emulator"],
                                env={**FAST, **emu_env})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "emulator"
    assert "note: --emulator: using the embedded CoinGlass emulator (synthetic data)" in result.stderr
    assert emulator.recorded() == []


def test_emulator_without_a_key_runs_every_command_family(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    runner = CliRunner()
    for args in (["resolve", "--json"], ["generate", "--out", "deploy"], ["health", str(cfgs)],
                 ["run-preset", str(cfgs), "--dry-run"], ["stream", "--config", str(cfgs), "--max-events", "1"]):
        result = runner.invoke(cli, [*args, "--emulator"], env=FAST)
        assert result.exit_code == 0, (args, result.output)


def test_a_dry_run_with_a_fixed_plan_calls_nothing_and_needs_no_key(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = CliRunner().invoke(cli, ["run-preset", str(cfgs), "--dry-run"], env={"CGPRESET_PLAN": "standard"})
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "cgpreset.db").exists()


def test_offline_commands_need_no_key(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    runner = CliRunner()
    for args in (["validate", str(cfgs)], ["schema"], ["init", "repo"],
                 ["generate", "--out", "deploy", "--snapshot", str(FIXTURES / "discovery-snapshot.json")],
                 ["generate", "--out", "deploy", "--offline", "--snapshot", str(FIXTURES / "discovery-snapshot.json")],
                 ["runs", "--store", "none.db"], ["emulator", "--help"]):
        result = runner.invoke(cli, args, env={})
        assert result.exit_code in (0, 2) and "COINGLASS_API_KEY" not in result.output, (args, result.output)
        if args[0] != "runs":  # a missing store is its own exit 2
            assert result.exit_code == 0, (args, result.output)
