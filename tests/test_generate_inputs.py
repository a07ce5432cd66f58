"""Which preset, watchlist and templates `generate` used, and configs from another preset kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from cgpreset.cli import cli
from cgpreset.errors import ExitCode
from tests.conftest import FIXTURES, REPO


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def gen(*extra: str) -> Result:
    return run("generate", "--out", "deploy", "--snapshot", "snapshot.json", *extra)


def snapshot_here(root: Path) -> None:
    shutil.copy(FIXTURES / "discovery-snapshot.json", root / "snapshot.json")


def test_outside_a_repo_the_shipped_copies_are_named_as_such(tmp_path: Path) -> None:
    snapshot_here(tmp_path)  # cwd (tmp_path) has no presets/ and no templates/
    result = gen()
    assert result.exit_code == 0, result.output
    assert "presets/sol.yaml is not in" in result.stderr and "using the copy shipped with cgpreset" in result.stderr
    text = (tmp_path / "deploy" / "sol.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["provenance"]["preset"] == "cgpreset:presets/sol.yaml"
    assert doc["provenance"]["template"] == "cgpreset:templates/coin.yaml.j2"
    assert "from cgpreset:presets/sol.yaml + cgpreset:templates/coin.yaml.j2" in text


def test_in_a_repo_the_repo_files_are_used_and_nothing_is_noted(tmp_path: Path) -> None:
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    snapshot_here(tmp_path)
    result = gen()
    assert result.exit_code == 0, result.output
    assert "shipped" not in result.stderr
    doc = yaml.safe_load((tmp_path / "deploy" / "sol.yaml").read_text())
    assert doc["provenance"]["preset"] == "presets/sol.yaml"
    assert doc["provenance"]["template"] == "templates/coin.yaml.j2"


def _repo_at_4h(root: Path) -> dict[str, bytes]:
    """A GitOps repo whose preset was changed to 4h, generated; returns its configs' bytes."""
    shutil.copytree(REPO / "presets", root / "presets")
    shutil.copytree(REPO / "templates", root / "templates")
    preset = root / "presets" / "sol.yaml"
    preset.write_text(preset.read_text().replace("interval: 1h", "interval: 4h"))
    snapshot_here(root)
    result = gen()
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in (root / "deploy").glob("*.yaml")}


def test_configs_from_another_preset_are_not_overwritten(tmp_path: Path) -> None:
    before = _repo_at_4h(tmp_path)
    assert b"interval: 4h" in before["sol.yaml"]
    shutil.rmtree(tmp_path / "presets")  # the job runs from a folder without presets/: the shipped 1h copy
    shutil.rmtree(tmp_path / "templates")
    result = gen()
    assert result.exit_code == ExitCode.USAGE, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "deploy/" in lines[-1]
    assert "generated from presets/sol.yaml" in lines[-1] and "cgpreset:presets/sol.yaml" in lines[-1]
    assert "--replace-preset" in lines[-1] and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "deploy").glob("*.yaml")} == before
    check = gen("--check")  # --check compares nothing against another preset's configs either
    assert check.exit_code == ExitCode.USAGE, check.output


def test_replace_preset_overwrites_them(tmp_path: Path) -> None:
    _repo_at_4h(tmp_path)
    shutil.rmtree(tmp_path / "presets")
    result = gen("--replace-preset")
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((tmp_path / "deploy" / "sol.yaml").read_text())
    assert doc["interval"] == "1h" and doc["provenance"]["preset"] == "cgpreset:presets/sol.yaml"


def test_an_edited_preset_of_the_same_name_regenerates_without_asking(tmp_path: Path) -> None:
    _repo_at_4h(tmp_path)
    preset = tmp_path / "presets" / "sol.yaml"
    preset.write_text(preset.read_text().replace("interval: 4h", "interval: 1h"))
    result = gen()
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "deploy" / "sol.yaml").read_text())["interval"] == "1h"
