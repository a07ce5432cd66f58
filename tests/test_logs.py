"""-v/-q/--log-format, before or after the command: one line per request; JSON lines, errors included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from tests.test_run_e2e import FAST, write_configs


def run(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env={**FAST, **env})


def requests_logged(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "GET /api/" in line]


@pytest.mark.parametrize("where", ["before", "after"])
def test_v_shows_one_line_per_request_wherever_it_is_given(tmp_path: Path, emu_env: dict[str, str],
                                                          where: str) -> None:
    cfgs = write_configs(tmp_path / "c", coins=("SOL",))
    cmd = ["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--json"]
    result = run(["-v", *cmd] if where == "before" else [*cmd, "-v"], emu_env)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    lines = requests_logged(result.stderr)
    assert len(lines) == report["totals"]["requests"]  # the plan lookup included
    assert all(line.startswith("INFO cgpreset.client: GET /api/") for line in lines)
    quiet = run(cmd, emu_env)
    assert requests_logged(quiet.stderr) == []


def test_json_log_format_makes_every_stderr_line_an_object_errors_included(tmp_path: Path,
                                                                          emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "c", coins=("SOL",))
    result = run(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "-v", "--log-format", "json"],
                 emu_env)
    objects = [json.loads(line) for line in result.stderr.splitlines()]
    assert objects and all(set(o) == {"time", "level", "logger", "message"} for o in objects)
    assert any(o["logger"] == "cgpreset.client" and o["message"].startswith("GET /api/") for o in objects)
    bad = run(["--log-format", "json", "run-preset", str(tmp_path / "missing")], emu_env)
    assert bad.exit_code == 2
    [error] = [json.loads(line) for line in bad.stderr.splitlines()]
    assert error["level"] == "error" and error["message"].endswith("no such file or directory")
    assert "Error:" not in error["message"]


def test_quiet_after_the_command_keeps_only_errors(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "c", coins=("SOL",))
    result = run(["run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "-vv", "-q"], emu_env)
    assert requests_logged(result.stderr) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_leaves_run_preset_and_health_only_their_summary_line(tmp_path: Path, emu_env: dict[str, str],
                                                                    where: str) -> None:
    """cron mailed the 51-row table every hour: under -q stdout is the one summary line."""
    cfgs = write_configs(tmp_path / "c", coins=("SOL", "BTC"))
    for command, last in (("run-preset", "11 series: 11 ok"), ("health", "9/9 shots ok — signed off")):
        cmd = [command, str(cfgs), "--store", str(tmp_path / "s.db")]
        loud = run(cmd, emu_env)
        quiet = run(["-q", *cmd] if where == "before" else [*cmd, "-q"], emu_env)
        assert loud.exit_code == quiet.exit_code == 0, quiet.output
        assert len(loud.stdout.splitlines()) > 10
        [line] = quiet.stdout.splitlines()
        assert line.startswith(last)


def test_every_command_takes_the_log_options() -> None:
    import click

    def walk(group: click.Group) -> list[click.Command]:
        out: list[click.Command] = []
        for cmd in group.commands.values():
            out.append(cmd)
            if isinstance(cmd, click.Group):
                out.extend(walk(cmd))
        return out

    for cmd in walk(cli):
        opts = {o for p in cmd.params for o in getattr(p, "opts", ())}
        assert {"-v", "-q", "--log-format"} <= opts, cmd.name
