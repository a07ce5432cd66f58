"""The README stays true: every command is documented and has help; CI runs the README's test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cgpreset.cli import cli
from cgpreset.errors import ExitCode
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented_and_has_help(name: str) -> None:
    assert f"cgpreset {name}" in README
    assert cli.commands[name].help


def test_ci_runs_the_readme_test_command() -> None:
    match = re.search(r"<!-- ci:test -->\s*```(?:bash|sh)?\n(.+?)\n```", README, re.S)
    assert match, "README has no marked test command"
    command = match.group(1).strip()
    assert command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_exit_codes_are_documented() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| *{int(code)} *\|", README, re.M), f"exit code {int(code)} not in README"


def test_ci_leaves_the_developers_venv_alone() -> None:
    """.ci/run works in a temporary folder it removes on exit; it never deletes ./.venv."""
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "rm -rf .venv" not in script
    assert re.search(r"^tmp=\$\(mktemp -d\)$", script, re.M)
    assert "trap 'rm -rf \"$tmp\"' EXIT" in script
    assert re.search(r'^cd "\$tmp/src"$', script, re.M)


def test_ci_runs_the_postgresql_tests_on_a_server_it_starts_and_stops() -> None:
    """.ci/run starts a throwaway server, hands its DSN to the tests and stops it on exit."""
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    start = script.index("CGPRESET_TEST_PG_DSN=$(bash .ci/postgres.sh start")
    assert "export CGPRESET_TEST_PG_DSN" in script and start < script.index(".venv/bin/pytest")
    assert re.search(r"^trap '.*postgres\.sh\" stop .*rm -rf .*\$tmp.*' EXIT$", script, re.M)


def test_the_python_api_example_runs(tmp_path: Path) -> None:
    """README "Using it from Python": the complete run works as shown, in a fresh folder."""
    match = re.search(r"<!-- docs:python-api -->\s*```python\n(.+?)\n```", README, re.S)
    assert match, "README has no marked Python API example"
    script = tmp_path / "example.py"
    script.write_text(match.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CGPRESET_") and k not in ("COINGLASS_API_KEY", "CG_API_KEY")}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = proc.stdout.splitlines()
    assert re.fullmatch(r"10 configs, [1-9]\d* requests planned, health exit 0, run exit 0", first), first
    assert re.fullmatch(r"\d+ closed SOL open-interest bars, the last closing at [\d,]+", second)
    assert len(list((tmp_path / "configs").glob("*.yaml"))) == 10


def _commands(group: click.Group, prefix: str = "cgpreset") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


@pytest.mark.parametrize("path,command", _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_every_flag_of_every_command_is_in_the_readme(path: str, command: click.Command) -> None:
    missing = [flag for p in command.params if isinstance(p, click.Option)
               for flag in p.opts if flag.startswith("--") and flag != "--help"
               and not re.search(rf"{re.escape(flag)}(?![\w-])", README)]
    assert not missing, f"{path}: {', '.join(missing)} not in README.md"


def test_every_source_path_the_readme_names_exists() -> None:
    paths = set(re.findall(r"\b(cgpreset/[\w/]+\.py|tests/[\w/]+\.py|\.ci/[\w.]+)", README))
    assert paths and not [p for p in sorted(paths) if not (REPO / p).exists()]


#: What a user of cgpreset gets: the package (its help, docstrings, shipped layers, Kubernetes
#: templates), the preset and templates `init` copies, the container recipe, the README and docs,
#: and what `generate` writes (tests/golden holds it byte for byte).
SHIPPED = ("cgpreset", "presets", "templates", "Containerfile", "README.md", "docs", "tests/golden")
#: Citations of the notes cgpreset was built from (../shared/: the API spec coinglass-v4.md and its
#: numbered sections, the seed runbook, the anchors and field notes), which no user has.
UNSHIPPED_CITATION = re.compile(r"\.\./shared\b|\bshared/|coinglass-v4\.md|seed-runbook|ANCHORS\.md|FIELD-NOTES\.md"
                                r"|\bspec §|§ ?\d")


def _shipped_text() -> dict[Path, str]:
    files = [REPO / top for top in SHIPPED if (REPO / top).is_file()]
    files += [p for top in SHIPPED if (REPO / top).is_dir() for p in (REPO / top).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    out = {}
    for path in sorted(files):
        try:
            out[path] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # an image (docs/report.png): nothing to cite in
            continue
    return out


def test_what_ships_cites_only_what_ships() -> None:
    """A shipped file says the fact itself or points at the README, never at notes a user cannot open."""
    shipped = _shipped_text()
    assert {REPO / "presets" / "sol.yaml", REPO / "cgpreset" / "api" / "catalogue.py"} <= set(shipped)
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path, text in shipped.items()
             for n, line in enumerate(text.splitlines(), 1) if UNSHIPPED_CITATION.search(line)]
    assert not found, "\n".join(found)


def test_the_grafana_query_serves_a_coin_at_whatever_interval_its_config_runs(pg_dsn: str) -> None:
    """The README's query hard-coded `interval = '1h'`: a coin run at 4h showed an empty panel."""
    from cgpreset.run.engine import run_preset
    from cgpreset.store import open_store
    from tests.fakes import NOW, FakeClient
    from tests.test_series import configs

    match = re.search(r"<!-- docs:grafana -->\s*```sql\n(.+?)\n\s*```", README, re.S)
    assert match, "README has no marked Grafana query"
    with open_store(pg_dsn) as st:
        run_preset(configs("SOL", interval="4h"), FakeClient(), st, now_ms=NOW, concurrency=2)
    query = "\n".join(line.strip() for line in match.group(1).splitlines())
    query = (query.replace("$coin", "SOL").replace("$__unixEpochFrom()", str(NOW // 1000 - 7 * 86400))
             .replace("$__unixEpochTo()", str(NOW // 1000)))
    import psycopg

    with psycopg.connect(pg_dsn) as con:
        rows = con.execute(query).fetchall()
    assert 40 <= len(rows) <= 42 and {r[1] for r in rows} == {"SOL 4h"}  # a week of closed 4h bars


@pytest.mark.parametrize("path,command", _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_no_help_shows_a_literal_backslash_b(path: str, command: click.Command) -> None:
    """click's \\b keeps the next paragraph's lines; written as "\\\\b" in a docstring, `init --help` showed it."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
    assert result.exit_code == 0 and "\\b" not in result.stdout, result.stdout
    assert "Example" in result.stdout  # the paragraph \b keeps is there, line by line
