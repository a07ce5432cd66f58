"""writer: a generate run changes all of DIR or none of it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ConfigError
from cgpreset.generate.render import GENERATED_MARK
from cgpreset.generate.writer import OutputFile, apply_changes, plan_changes


def _files(n: int, version: str) -> list[OutputFile]:
    return [OutputFile(f"c{i}.yaml", f"# {GENERATED_MARK}x\nv: {version}\n".encode()) for i in range(n)]


def test_a_full_disk_part_way_leaves_the_directory_as_it_was(tmp_path: Path, monkeypatch: Any) -> None:
    out = tmp_path / "deploy"
    apply_changes(out, plan_changes(out, _files(5, "1"), prune=False))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_open, opened = os.open, []

    def full_after_two(path: Any, flags: int, mode: int = 0o777) -> int:
        opened.append(path)
        if len(opened) > 2:
            raise OSError(28, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", full_after_two)
    with pytest.raises(ConfigError) as err:
        apply_changes(out, plan_changes(out, _files(5, "2"), prune=False))
    monkeypatch.undo()
    assert str(err.value) == f"{out}/c2.yaml: cannot write: No space left on device; nothing in {out} was changed"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no new bytes, no temp files


def test_an_out_dir_under_a_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deploy: .*/file is not a directory$"):
        plan_changes(tmp_path / "file" / "deploy", _files(1, "1"), prune=False)


def test_a_write_that_fails_takes_back_the_folders_it_made(tmp_path: Path) -> None:
    """generate that aborted part way left a/b/c/.cgpreset behind, empty."""
    (tmp_path / "keep").mkdir()
    out = tmp_path / "a" / "b" / "c"
    files = [OutputFile(".cgpreset/schema.json", b"{}\n"), OutputFile("kubernetes/configs/sol.yaml", b"x: 1\n"),
             OutputFile("x" * 300 + ".yaml", b"x: 1\n")]  # a name the file system refuses
    with pytest.raises(ConfigError, match=r"cannot write: File name too long; nothing in .* was changed$"):
        apply_changes(out, plan_changes(out, files, prune=False))
    assert not (tmp_path / "a").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_folders_that_were_there_stay_and_written_ones_are_kept(tmp_path: Path, monkeypatch: Any) -> None:
    out = tmp_path / "deploy"
    (out / ".cgpreset").mkdir(parents=True)
    files = [OutputFile(".cgpreset/schema.json", b"{}\n"), OutputFile("kubernetes/base.yaml", b"x: 1\n")]
    real_open = os.open

    def refuse_kubernetes(path: Any, flags: int, mode: int = 0o777) -> int:
        if "kubernetes" in str(path):
            raise OSError(13, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refuse_kubernetes)
    with pytest.raises(ConfigError):
        apply_changes(out, plan_changes(out, files, prune=False))
    monkeypatch.undo()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [".cgpreset"]
    assert apply_changes(out, plan_changes(out, files, prune=False)) == 2
    assert (out / "kubernetes" / "base.yaml").read_bytes() == b"x: 1\n"
