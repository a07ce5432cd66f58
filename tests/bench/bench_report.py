"""Benchmark: the report of the 10-coin work unit (shipped presets, 90 days of 1h) stays under 12 MB.

Run: pytest tests/bench/bench_report.py -m bench -s
(`cgpreset generate` + `run-preset` of the shipped presets into a fresh store on the embedded
emulator, then `cgpreset report` of it; prints the page's size and the time to write it.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli

LIMIT_BYTES = 12_000_000


@pytest.mark.bench
def test_report_of_the_work_unit_is_under_12_mb(tmp_path: Path) -> None:
    runner = CliRunner()
    configs, store, page = tmp_path / "configs", tmp_path / "wu.db", tmp_path / "report.html"
    env = {"COINGLASS_API_KEY": "", "CG_API_KEY": "", "CGPRESET_BASE_URL": ""}  # --emulator: whatever is set
    made = runner.invoke(cli, ["--emulator", "generate", "--out", str(configs)], env=env)
    assert made.exit_code == 0, made.output[-2000:]
    run = runner.invoke(cli, ["--emulator", "run-preset", str(configs), "--store", str(store)], env=env)
    assert run.exit_code == 0, run.output[-2000:]
    started = time.perf_counter()
    result = runner.invoke(cli, ["report", str(configs), "--store", str(store), "--html", str(page),
                                 "--source", "emulator"])
    took = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    size = page.stat().st_size
    print(f"\nreport of the work unit: {size / 1e6:.2f} MB ({size} bytes), written in {took:.2f} s; "
          f"{run.stdout.splitlines()[-1]}")
    assert size < LIMIT_BYTES
