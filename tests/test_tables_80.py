"""Every table reads at 80 columns: columns are dropped (least needed first), words never split."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.cli.present.health import health_table
from cgpreset.cli.present.run import plan_table, run_table
from cgpreset.cli.present.text import render_text
from cgpreset.errors import MalformedResponseError, PlanError
from cgpreset.plans import Plan
from cgpreset.run.engine import run_preset
from cgpreset.run.health import run_health
from cgpreset.run.series import expand, plan_run
from cgpreset.store.sqlite import SQLiteStore
from tests.fakes import FakeClient
from tests.test_health import LatestClient
from tests.test_run_e2e import write_configs
from tests.test_series import NOW, configs


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not set(line.strip()) <= {"─", " "}]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]{3,}", text))


def test_the_health_table_keeps_coin_layer_outcome_and_note_at_80_columns() -> None:
    client = LatestClient(empty={"open-interest-aggregated-history"},
                          fail={"funding-rate-history": PlanError("Upgrade plan", code="401"),
                                "liquidation-aggregated-history": MalformedResponseError("row 0 has no field")})
    report = run_health(configs("SOL", "BTC"), client, now_ms=NOW)
    text = render_text(health_table(report), width=80)
    header, *body = _rows(text)
    assert header.split()[:3] == ["coin", "layer", "outcome"] and "note" in header.split()
    assert max(len(line) for line in text.splitlines()) <= 80
    for shot in report.shots:  # every shot's coin, layer and outcome whole on one line
        whole = rf"^{re.escape(shot.coin)}\s+{shot.layer}\s+{shot.outcome}\b"
        assert any(re.search(whole, line) for line in body), shot
    wide = render_text(health_table(report), width=200)
    assert "endpoint" in wide and "endpoint" not in text  # the first column to go
    assert _words(text) - _words(wide) == set()  # no word cut into pieces that are not words


def test_run_and_plan_tables_fit_80_columns_without_splitting_words(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "run.db") as store:
        result = run_preset(configs("SOL", "BTC"), FakeClient(), store, now_ms=NOW, concurrency=2)
    plan = plan_run(expand(configs("SOL", "BTC")), coverage={}, now_ms=NOW, plan=Plan.STANDARD)
    for table, wide, kept in ((run_table(result), run_table(result), "outcome"),
                              (plan_table(plan), plan_table(plan), "requests")):
        narrow_text, wide_text = render_text(table, width=80), render_text(wide, width=200)
        assert max(len(line) for line in narrow_text.splitlines()) <= 80
        assert _words(narrow_text) - _words(wide_text) == set()
        head = " ".join(narrow_text.split("─")[0].split())  # the header, maybe on two lines ("last / bar")
        assert "coin" in head and "layer" in head and kept in head


def test_columns_80_applies_off_a_terminal(tmp_path: Path, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "c", ("SOL",))
    result = CliRunner().invoke(cli, ["health", str(cfgs), "--store", str(tmp_path / "s.db")],
                                env={**emu_env, "COLUMNS": "80"})
    table = result.stdout.split("\nplan: ")[0]  # the lines under the table are not a table
    assert "outcome" in table and max(len(line) for line in table.splitlines()) <= 80, result.stdout


def test_resolve_and_runs_tables_fit_80_columns(tmp_path: Path) -> None:
    from tests.conftest import FIXTURES

    result = CliRunner().invoke(cli, ["resolve", "--snapshot", str(FIXTURES / "discovery-snapshot.json")],
                                env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    table = result.stdout.rsplit("\n", 2)[0]
    assert max(len(line) for line in table.splitlines()) <= 80, table
    assert "coin" in table.splitlines()[1] and "pair" in table.splitlines()[1]
    wide = CliRunner().invoke(cli, ["resolve", "--snapshot", str(FIXTURES / "discovery-snapshot.json")])
    assert _words(result.stdout) - _words(wide.stdout) == set()
