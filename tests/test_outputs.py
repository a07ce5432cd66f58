"""Outputs land only where asked: through a temp file no one else could have made, never through
a symbolic link, never outside `generate --out`, never on the store or an input config."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cgpreset import _io
from cgpreset._io import write_atomic
from cgpreset.cli import cli
from cgpreset.errors import ExitCode, OutputError
from cgpreset.generate.render import GENERATED_MARK
from cgpreset.generate.writer import OutputFile, apply_changes, plan_changes
from cgpreset.store import open_store
from tests.test_generate import gen, ws  # noqa: F401 - the workspace fixture
from tests.test_run_e2e import write_configs

PRECIOUS = b"precious: not to be overwritten\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file the user can write, outside every output folder: a planted link points here."""
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"CGPRESET_MAX_ATTEMPTS": "2", **(env or {})})


def _only_error(result: Result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp") if not p.is_symlink()]


# -- the writer ------------------------------------------------------------------------------------

def _write_one(path: Path) -> None:
    write_atomic(path, b"new\n")


def _generate_one(path: Path) -> None:
    files = [OutputFile(path.name, f"# {GENERATED_MARK}x\n".encode())]
    apply_changes(path.parent, plan_changes(path.parent, files, prune=False))


@pytest.mark.parametrize("write", [_write_one, _generate_one], ids=["write_atomic", "generate"])
def test_a_link_planted_at_a_temp_name_is_never_written_through(
        tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch, write: Callable[[Path], None]) -> None:
    out = tmp_path / "out" / "file.yaml"
    out.parent.mkdir()
    names: Iterator[str] = iter(["planted", "planted", "free"])  # the first two names tried are taken by links
    monkeypatch.setattr(_io, "_token", lambda: next(names))
    for name in (f".file.yaml.{os.getpid()}.tmp", ".file.yaml.planted.tmp"):  # the old fixed name, the next one
        (out.parent / name).symlink_to(victim)
    write(out)
    assert victim.read_bytes() == PRECIOUS
    assert out.read_bytes().endswith(b"x\n" if write is _generate_one else b"new\n") and not out.is_symlink()
    assert _temps(out.parent) == []


def test_the_output_keeps_the_targets_mode_and_a_new_one_honours_the_umask(tmp_path: Path) -> None:
    kept, new = tmp_path / "kept.prom", tmp_path / "new.prom"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    write_atomic(kept, b"x")
    old_umask = os.umask(0o027)
    try:
        write_atomic(new, b"x")
    finally:
        os.umask(old_umask)
    assert kept.stat().st_mode & 0o777 == 0o640 and new.stat().st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), _io.atomic_output(out) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("the store went away")
    assert out.read_bytes() == b"old" and _temps(tmp_path) == []


def test_a_target_that_is_a_link_is_refused_not_replaced(tmp_path: Path, victim: Path) -> None:
    link = tmp_path / "metrics.prom"
    link.symlink_to(victim)
    with pytest.raises(OutputError, match=r"metrics\.prom: is a symbolic link; refusing to replace it"):
        write_atomic(link, b"new")
    assert link.is_symlink() and victim.read_bytes() == PRECIOUS


# -- every command that writes a file --------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty cgpreset store, as a first run leaves it: every command reads it, run-preset writes it."""
    path = tmp_path / "cgpreset.db"
    with open_store(path):
        pass
    return path


def _export(out: Path, store: Path, configs: Path, env: dict[str, str]) -> Result:
    return _cli("export", "funding", "--store", str(store), "--output", str(out))


def _report(out: Path, store: Path, configs: Path, env: dict[str, str]) -> Result:
    return _cli("report", str(configs), "--store", str(store), "--html", str(out))


def _run_metrics(out: Path, store: Path, configs: Path, env: dict[str, str]) -> Result:
    return _cli("run-preset", str(configs), "--store", str(store), "--metrics", str(out), env=env)


def _health_metrics(out: Path, store: Path, configs: Path, env: dict[str, str]) -> Result:
    return _cli("health", str(configs), "--store", str(store), "--metrics", str(out), env=env)


WRITERS = {"export --output": _export, "report --html": _report, "run-preset --metrics": _run_metrics,
           "health --metrics": _health_metrics}


@pytest.mark.parametrize("command", WRITERS)
def test_each_output_flag_never_writes_through_a_planted_temp_name(
        tmp_path: Path, victim: Path, store: Path, emu_env: dict[str, str], command: str) -> None:
    configs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    out = tmp_path / "out" / "file.out"
    out.parent.mkdir()
    (out.parent / f".file.out.{os.getpid()}.tmp").symlink_to(victim)  # the name 0.x wrote through
    result = WRITERS[command](out, store, configs, emu_env)
    assert result.exit_code in (ExitCode.OK, ExitCode.FINDINGS), result.output
    assert victim.read_bytes() == PRECIOUS and out.stat().st_size > 0 and _temps(out.parent) == []


@pytest.mark.parametrize("command", WRITERS)
def test_each_output_flag_refuses_a_target_that_is_a_link(
        tmp_path: Path, victim: Path, store: Path, emu_env: dict[str, str], command: str) -> None:
    configs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    link = tmp_path / "out.file"
    link.symlink_to(victim)
    result = WRITERS[command](link, store, configs, emu_env)
    assert result.exit_code == ExitCode.USAGE
    assert _only_error(result) == f"Error: {link}: is a symbolic link; refusing to replace it " \
                                  "(name the file it points to, or remove the link)"
    assert victim.read_bytes() == PRECIOUS and link.is_symlink()


@pytest.mark.parametrize("command", WRITERS)
def test_each_output_flag_refuses_a_folder_that_does_not_exist(
        tmp_path: Path, store: Path, emu_env: dict[str, str], command: str) -> None:
    """A typo'd textfile-collector path would be written where no collector looks: one line, exit
    2, before any work, and no folder made (as a typo'd --store)."""
    configs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    out = tmp_path / "missing" / "deeper" / "file.out"
    result = WRITERS[command](out, store, configs, emu_env)
    assert result.exit_code == ExitCode.USAGE
    assert _only_error(result) == f"Error: {out}: the folder {out.parent} does not exist (create it first)"
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_each_output_flag_refuses_the_store_and_its_side_files(
        tmp_path: Path, store: Path, emu_env: dict[str, str], command: str, suffix: str) -> None:
    configs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    target = store.with_name(store.name + suffix)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    aliased = tmp_path / "configs" / ".." / target.name  # another spelling of the same path
    result = WRITERS[command](aliased, store, configs, emu_env)
    assert result.exit_code == ExitCode.USAGE
    what = "the store" if not suffix else f"the store's {suffix[1:]} file"
    assert _only_error(result).endswith(f"{aliased}: is {what}; refusing to overwrite it (choose another file)")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("command", ["run-preset --metrics", "health --metrics"])
def test_metrics_refuse_a_store_not_created_yet(tmp_path: Path, emu_env: dict[str, str], command: str) -> None:
    configs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    new_store = tmp_path / "new.db"
    result = WRITERS[command](Path("new.db"), new_store, configs, emu_env)  # relative: the cwd is tmp_path
    assert result.exit_code == ExitCode.USAGE and "new.db: is the store" in _only_error(result)
    assert not new_store.exists()


def test_a_hard_link_to_the_store_is_the_store(tmp_path: Path, store: Path) -> None:
    alias = tmp_path / "alias.csv"
    os.link(store, alias)
    result = _export(alias, store, tmp_path, {})
    assert result.exit_code == ExitCode.USAGE and "alias.csv: is the store" in _only_error(result)


@pytest.mark.parametrize("command", ["report --html", "run-preset --metrics", "health --metrics"])
def test_an_output_never_replaces_an_input_config(tmp_path: Path, store: Path, emu_env: dict[str, str],
                                                  command: str) -> None:
    configs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"), history_days=1)
    config = configs / "btc.yaml"
    before = config.read_bytes()
    result = WRITERS[command](config, store, configs, emu_env)
    assert result.exit_code == ExitCode.USAGE
    assert _only_error(result).endswith(f"{config}: is an input config; refusing to overwrite it (choose another file)")
    assert config.read_bytes() == before


def test_the_demo_refuses_a_store_where_its_report_goes(tmp_path: Path) -> None:
    result = _cli("demo", "--out", "d", "--store", "d/report.html")
    assert result.exit_code == ExitCode.USAGE and "d/report.html: is the store" in _only_error(result)
    assert not (tmp_path / "d").exists()


# -- generate --out DIR: everything inside DIR, or nothing ----------------------------------------

def _snapshot_tree(root: Path) -> dict[str, bytes | str]:
    return {p.relative_to(root).as_posix(): (os.readlink(p) if p.is_symlink() else p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


@pytest.mark.parametrize("check", [False, True], ids=["write", "--check"])
def test_generate_refuses_a_committed_link_to_a_folder_outside(ws: Path, check: bool) -> None:  # noqa: F811
    assert gen().exit_code == 0
    outside = ws.parent / f"{ws.name}-x"
    outside.mkdir()
    (ws / "deploy" / "kubernetes").symlink_to(Path("..") / ".." / outside.name)  # deploy/kubernetes -> ../../x
    before = _snapshot_tree(ws / "deploy")
    result = gen("--kubernetes", *(["--check"] if check else []))
    assert result.exit_code == ExitCode.USAGE
    assert _only_error(result).startswith(f"Error: deploy/kubernetes: is a symbolic link (to ../../{outside.name}); "
                                          "generate writes only inside deploy: nothing written")
    assert list(outside.iterdir()) == [] and _snapshot_tree(ws / "deploy") == before


def test_generate_refuses_a_config_that_is_a_link(ws: Path, victim: Path) -> None:  # noqa: F811
    assert gen().exit_code == 0
    config = ws / "deploy" / "sol.yaml"
    victim.write_bytes(config.read_bytes().replace(b"history_days", b"history_days_old"))
    config.unlink()
    config.symlink_to(victim)
    saved = victim.read_bytes()
    result = gen()
    assert result.exit_code == ExitCode.USAGE and "deploy/sol.yaml: is a symbolic link" in _only_error(result)
    assert victim.read_bytes() == saved and config.is_symlink()


def test_generate_may_write_into_an_out_dir_that_is_itself_a_link(ws: Path) -> None:  # noqa: F811
    (ws / "real-deploy").mkdir()
    (ws / "deploy").symlink_to("real-deploy")
    result = gen()
    assert result.exit_code == 0, result.output
    assert (ws / "real-deploy" / "sol.yaml").is_file()


def test_a_path_that_resolves_outside_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"outside .*deploy: nothing written"):
        plan_changes(tmp_path / "deploy", [OutputFile("../escape.yaml", b"x")], prune=False)
    assert not (tmp_path / "escape.yaml").exists()
