"""The workflow a team follows to add a layer, step by step as the README tells it, with no package change:
`cgpreset layers show basis > layers/my_basis.yaml`, rename it, name it in the preset with basis's
settings, then generate, validate, run-preset, export my_basis and report."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cgpreset import layers
from cgpreset.cli import cli
from tests.conftest import REPO


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_a_layer_copied_renamed_and_named_in_the_preset_runs_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "layers").mkdir()
    (tmp_path / "presets").mkdir()
    shown = invoke("layers", "show", "basis")
    (tmp_path / "layers" / "my_basis.yaml").write_text(shown.stdout.replace("name: basis\n", "name: my_basis\n"))
    shutil.copy(REPO / "presets" / "sol.yaml", tmp_path / "presets" / "sol.yaml")
    (tmp_path / "presets" / "watchlist.yaml").write_text("coins: [SOL, BTC]\npin: [SOL]\n")
    preset = (tmp_path / "presets" / "sol.yaml").read_text()
    basis = "  my_basis:\n    exchange: Binance\n    symbol: SOLUSDT\n    fallback_exchanges: [OKX, Bybit]\n"
    (tmp_path / "presets" / "sol.yaml").write_text(preset.replace("health:\n", basis + "health:\n", 1))

    assert invoke("generate", "--out", "deploy", "--emulator").exit_code == 0
    assert (tmp_path / "deploy" / "my_basis.layer.yaml").is_file()
    layers.reset()
    assert invoke("validate", "deploy").exit_code == 0
    run = invoke("run-preset", "deploy", "--emulator", "--store", "s.db", "--backfill-days", "2")
    assert run.exit_code == 0, run.output
    layers.reset()
    exported = invoke("export", "my_basis", "--store", "s.db", "--closed-only")
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {r["coin"] for r in rows} == {"SOL", "BTC"} and {r["exchange"] for r in rows} == {"Binance"}
    assert len(rows) >= 2 * 2 * 24 and all(r["open_basis"] and r["close_change"] for r in rows)
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("SELECT count(*) FROM data_my_basis").fetchone()[0] == len(rows) + 2  # + 2 forming bars
    con.close()
    layers.reset()
    report = invoke("report", "deploy", "--store", "s.db", "--html", "report.html")
    assert report.exit_code == 0, report.output
    assert "chart-SOL-my_basis" in (tmp_path / "report.html").read_text()
