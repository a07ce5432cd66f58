"""`cgpreset init DIR` scaffolds a GitOps repo that works at once; shell completion works as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cgpreset import __version__
from cgpreset.cli import cli
from cgpreset.errors import ExitCode
from tests.conftest import FIXTURES, REPO


def test_init_scaffolds_a_repo_that_generates_offline_and_checks(tmp_path: Path) -> None:
    repo = tmp_path / "configs"
    result = CliRunner().invoke(cli, ["init", str(repo)])
    assert result.exit_code == 0, result.stderr
    for rel in ("presets/sol.yaml", "presets/watchlist.yaml", "templates/coin.yaml.j2", ".gitignore",
                ".pre-commit-config.yaml", ".github/workflows/cgpreset.yml", "README.md", "requirements-cgpreset.txt"):
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


def _scaffold(tmp_path: Path) -> Path:
    repo = tmp_path / "configs"
    assert CliRunner().invoke(cli, ["init", str(repo)]).exit_code == 0
    return repo


def test_the_hook_and_the_workflow_cover_the_kubernetes_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _scaffold(tmp_path)
    monkeypatch.chdir(repo)
    (repo / "deploy" / ".cgpreset").mkdir(parents=True)
    shutil.copy(FIXTURES / "discovery-snapshot.json", repo / "deploy" / ".cgpreset" / "discovery.json")
    assert CliRunner().invoke(cli, ["generate", "--out", "deploy", "--offline", "--kubernetes", "--shards", "4"]
                              ).exit_code == 0
    hooks = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hook = next(h for r in hooks["repos"] for h in r["hooks"] if h["id"] == "cgpreset-generate-check")
    assert re.match(hook["files"], "deploy/kubernetes/cronjob.yaml")
    ci = yaml.safe_load((repo / ".github/workflows/cgpreset.yml").read_text(encoding="utf-8"))
    ci_check = next(s["run"] for s in ci["jobs"]["check"]["steps"] if "--check" in s.get("run", ""))
    assert ci_check == hook["entry"]
    command = hook["entry"].split()[1:]  # after `cgpreset`
    assert CliRunner().invoke(cli, command).exit_code == 0
    preset = repo / "presets" / "sol.yaml"  # 1h -> 4h: the configs change, and with them the base
    preset.write_text(preset.read_text(encoding="utf-8").replace("interval: 1h", "interval: 4h", 1), encoding="utf-8")
    stale = CliRunner().invoke(cli, command)
    assert stale.exit_code == ExitCode.FINDINGS
    assert "kubernetes/cronjob.yaml (changed)" in stale.stderr and "-  schedule: \"5 * * * *\"" in stale.stdout


def test_the_workflow_installs_the_pinned_version_from_a_source_that_exists(tmp_path: Path) -> None:
    repo = _scaffold(tmp_path)
    pins = [line for line in (repo / "requirements-cgpreset.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    assert pins == [f"cgpreset=={__version__}"]
    ci = yaml.safe_load((repo / ".github/workflows/cgpreset.yml").read_text(encoding="utf-8"))
    runs = [s["run"] for s in ci["jobs"]["check"]["steps"] if "run" in s]
    install = next(r for r in runs if "pip install" in r)
    assert all("pip install" not in r for r in runs if r is not install)
    bin_dir = tmp_path / "bin"  # a pip that records what it was asked to install
    bin_dir.mkdir()
    (bin_dir / "pip").write_text('#!/bin/sh\necho "pip $*" >> "$PIP_LOG"\n', encoding="utf-8")
    (bin_dir / "pip").chmod(0o755)

    def step(index_url: str) -> tuple[int, str, str]:
        log = tmp_path / "pip.log"
        log.unlink(missing_ok=True)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_LOG": str(log), "CGPRESET_INDEX_URL": index_url}
        done = subprocess.run(["bash", "-e", "-c", install], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=30)
        return done.returncode, log.read_text() if log.exists() else "", done.stdout + done.stderr

    code, pip, out = step("")  # neither an index nor a git URL: refused, nothing installed from PyPI
    assert code == 1 and pip == "" and "CGPRESET_INDEX_URL" in out
    code, pip, _ = step("https://pypi.example.com/simple")
    assert code == 0 and pip == "pip install --index-url https://pypi.example.com/simple -r requirements-cgpreset.txt\n"
    req = repo / "requirements-cgpreset.txt"
    req.write_text(req.read_text().replace(f"cgpreset=={__version__}",
                                           "cgpreset @ git+https://git.example.com/tools/cgpreset.git@v0.1.0"))
    code, pip, _ = step("")
    assert code == 0 and pip == "pip install -r requirements-cgpreset.txt\n"
