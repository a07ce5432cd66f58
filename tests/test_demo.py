"""`cgpreset demo`: embedded emulator always, configs + store in the folder it names, rerun incremental."""

from __future__ import annotations

import shlex
import sqlite3
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from cgpreset.cli import cli
from tests.store_pages import stored_rows


def test_demo_twice(tmp_path: Path) -> None:
    runner = CliRunner()
    # a key in the environment must not take the demo to the real API
    env = {"COINGLASS_API_KEY": "real-key-must-not-be-used", "CGPRESET_BASE_URL": "http://127.0.0.1:9"}
    started = time.monotonic()
    first = runner.invoke(cli, ["demo"], env=env, catch_exceptions=False)
    took = time.monotonic() - started
    assert first.exit_code == 0, first.output[-3000:]
    assert took < 15  # "a few seconds" (about 4 s here); generous for slow CI
    out = first.stdout
    configs = sorted(p.name for p in (tmp_path / "cgpreset-demo" / "configs").glob("*.yaml"))
    assert len(configs) == 10 and "sol.yaml" in configs
    assert "generated 10 configs in cgpreset-demo/configs" in out
    assert "41/41 shots ok — signed off" in out
    assert "51 series: 51 ok, 0 empty, 0 failed, 0 skipped, 0 check findings" in out
    tail = out[out.index("repeat by hand"):]
    for command in ("cgpreset --emulator resolve", "cgpreset --emulator generate --out cgpreset-demo/configs",
                    "cgpreset --emulator health cgpreset-demo/configs",
                    "cgpreset --emulator run-preset cgpreset-demo/configs"):
        assert command in tail
    assert "real-key-must-not-be-used" not in first.output
    report = tmp_path / "cgpreset-demo" / "report.html"
    assert out.splitlines()[-1] == ("report (51 charts, 0 failed, 0 empty; source: the emulator): "
                                    "cgpreset-demo/report.html")
    assert "the embedded CoinGlass emulator (synthetic data, not CoinGlass)" in report.read_text()
    assert "cgpreset report cgpreset-demo/configs --store cgpreset-demo/cgpreset.db --source emulator" in tail
    db = tmp_path / "cgpreset-demo" / "cgpreset.db"
    con = sqlite3.connect(db)
    rows = stored_rows(con)
    con.close()
    second = runner.invoke(cli, ["demo"], env=env, catch_exceptions=False)
    assert second.exit_code == 0, second.output[-3000:]
    assert "(0 files changed)" in second.stdout
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    grown = stored_rows(con) - rows
    con.close()
    assert grown <= 51  # incremental: at most one new (forming) bar per series


def test_the_repeat_by_hand_lines_work_as_printed_with_a_standalone_emulator_exported(
        emulator: Any, emu_env: dict[str, str]) -> None:
    """The shell has a `cgpreset emulator`'s three exports (or a real key): the demo's lines, copied as
    printed, still run on the embedded emulator, so the demo's store (the embedded emulator's data)
    accepts them; the exported server is never asked."""
    runner = CliRunner()
    demo = runner.invoke(cli, ["demo"], env=emu_env, catch_exceptions=False)
    assert demo.exit_code == 0, demo.output[-3000:]
    tail = demo.stdout[demo.stdout.index("repeat by hand"):].splitlines()
    lines = [shlex.split(line) for line in tail if line.startswith("  cgpreset ")]
    assert [argv[1] for argv in lines] == ["--emulator"] * 5 + ["report"]
    configs = Path("cgpreset-demo/configs")
    assert {yaml.safe_load(p.read_text())["provenance"]["source"] for p in configs.glob("*.yaml")} == {"emulator"}
    made = {p.name: p.read_bytes() for p in configs.glob("*.yaml")}
    for argv in lines:
        result = runner.invoke(cli, argv[1:], env=emu_env, catch_exceptions=False)
        assert result.exit_code == 0, (shlex.join(argv), result.output[-3000:])
    assert {p.name: p.read_bytes() for p in configs.glob("*.yaml")} == made  # `generate` by hand: the same configs
    assert emulator.recorded() == [] and emulator.ws_recorded() == []


def test_a_bad_store_fails_before_any_config_is_written(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not an SQLite database" * 40)
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--store", str(bad)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(f"Error: {bad}")
    assert not (tmp_path / "d" / "configs").exists()
