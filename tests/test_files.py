"""User files are read in one place: every failure is one ConfigError line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgpreset._io import read_text
from cgpreset.errors import ConfigError


def test_read_text_failures(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00\x9c")
    cases = {
        tmp_path / "bin": "bin: not UTF-8 text",
        tmp_path / "nope": "nope: no such file",
        tmp_path: ": is a directory, not a file",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError) as info:
            read_text(path)
        assert str(info.value).endswith(message) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^faults file .*nope: create it first$"):
        read_text(tmp_path / "nope", label="faults file ", missing="create it first")


def test_read_text_returns_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("coin: SOL — ok\n", encoding="utf-8")
    assert read_text(tmp_path / "a.yaml") == "coin: SOL — ok\n"
