"""`cgpreset init DIR` scaffolds a GitOps repo that works at once; shell completion works as documented."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from cgpreset.cli import cli
from tests.conftest import REPO


def test_init_scaffolds_a_repo_that_generates_offline_and_checks(tmp_path: Path) -> None:
    repo = tmp_path / "configs"
    result = CliRunner().invoke(cli, ["init", str(repo)])
    assert result.exit_code == 0, result.stderr
    for rel in ("presets/sol.yaml", "presets/watchlist.yaml", "templates/coin.yaml.j2", ".gitignore",
                ".pre-commit-config.yaml", ".github/workflows/cgpreset.yml", "README.md"):
        assert (repo / rel).is_file(), rel
    assert (repo / "presets/sol.yaml").read_bytes() == (REPO / "cgpreset/data/presets/sol.yaml").read_bytes()
    assert "*.db" in (repo / ".gitignore").read_text(encoding="utf-8").splitlines()
    hooks = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    entries = [h["entry"] for r in hooks["repos"] for h in r["hooks"]]
    assert "cgpreset generate --out deploy --offline --check --diff" in entries
    ci = yaml.safe_load((repo / ".github/workflows/cgpreset.yml").read_text(encoding="utf-8"))
    assert any(s.get("run") == "cgpreset validate deploy/" for s in ci["jobs"]["check"]["steps"])


def test_init_keeps_files_that_exist_unless_forced(tmp_path: Path) -> None:
    repo = tmp_path / "configs"
    (repo / "presets").mkdir(parents=True)
    (repo / "presets" / "sol.yaml").write_text("# mine\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["init", str(repo)])
    assert result.exit_code == 0
    assert (repo / "presets" / "sol.yaml").read_text(encoding="utf-8") == "# mine\n"
    assert "kept " in result.stderr and "presets/sol.yaml (exists; --force overwrites)" in result.stderr
    forced = CliRunner().invoke(cli, ["init", str(repo), "--force"])
    assert forced.exit_code == 0 and (repo / "presets" / "sol.yaml").read_text(encoding="utf-8") != "# mine\n"


def test_init_into_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(cli, ["init", str(blocker / "sub")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_shell_completion_works_as_the_readme_says() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "_CGPRESET_COMPLETE=bash_source cgpreset" in readme
    result = CliRunner().invoke(cli, [], env={"_CGPRESET_COMPLETE": "bash_source"}, prog_name="cgpreset")
    assert result.exit_code == 0 and "_cgpreset_completion" in result.stdout
