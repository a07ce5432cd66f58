"""Every run row, report, metrics file and health verdict names its data's source; a store never mixes
sources."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cgpreset.run.source import EMULATOR, source_of
from cgpreset.store.sqlite import SQLiteStore
from tests.test_run_e2e import invoke, write_configs

SUBSCRIPTION = "/api/user/account/subscription"


def test_the_source_is_the_embedded_emulator_or_the_api_host_without_its_port() -> None:
    assert source_of("http://127.0.0.1:8787", embedded=True) == EMULATOR
    assert source_of("http://127.0.0.1:8787", embedded=False) == source_of("http://127.0.0.1:9999", embedded=False)
    assert source_of("https://Open-API-v4.coinglass.com", embedded=False) == "open-api-v4.coinglass.com"


def test_run_row_json_summary_and_metrics_name_the_embedded_emulator(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    db = tmp_path / "e.db"
    result = invoke(["--emulator", "run-preset", str(cfgs), "--store", str(db), "--json",
                     "--metrics", str(tmp_path / "m.prom")], {})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["source"] == "emulator"
    assert 'cgpreset_run_source{source="emulator"} 1' in (tmp_path / "m.prom").read_text()
    text = invoke(["run-preset", str(cfgs), "--store", str(db), "--emulator"], {})
    assert text.exit_code == 0 and "| source: the embedded emulator" in text.stdout
    with SQLiteStore(db, readonly=True) as store:
        assert [r["source"] for r in store.runs()] == ["emulator", "emulator"] and store.sources() == ["emulator"]
    report = invoke(["report", str(cfgs), "--store", str(db), "--html", str(tmp_path / "r.html")], {})
    assert report.exit_code == 0 and "synthetic data, not CoinGlass" in (tmp_path / "r.html").read_text()


def test_health_verdict_json_and_metrics_name_the_source(tmp_path: Path, emulator: Any,
                                                        emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    embedded = invoke(["health", str(cfgs), "--metrics", str(tmp_path / "h.prom"), "--emulator"], {})
    assert embedded.exit_code == 0 and "signed off (source: the embedded emulator)" in embedded.stdout
    assert 'cgpreset_health_source{source="emulator"} 1' in (tmp_path / "h.prom").read_text()
    api = invoke(["health", str(cfgs), "--json"], emu_env)
    assert api.exit_code == 0 and json.loads(api.stdout)["source"] == "127.0.0.1"


@pytest.mark.parametrize("first_embedded", [True, False], ids=["emulator-then-api", "api-then-emulator"])
def test_a_store_never_mixes_sources(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                     first_embedded: bool) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    db = tmp_path / "one.db"
    embedded = ["--emulator", "run-preset", str(cfgs), "--store", str(db)]
    api = embedded[1:]
    first = invoke(embedded if first_embedded else api, emu_env)  # the key exported: --emulator wins
    assert first.exit_code == 0, first.output
    assert bool(emulator.recorded()) is not first_embedded  # --emulator never asks the exported server
    emulator.reset_records()
    second = invoke(api if first_embedded else embedded, emu_env)
    assert second.exit_code == 2, second.output
    held, now = ("the embedded emulator", "127.0.0.1") if first_embedded else ("127.0.0.1", "the embedded emulator")
    assert [line for line in second.stderr.splitlines() if not line.startswith("note:")] == [
        f"Error: store {db.as_posix()} holds data from {held}; this run's source is {now}: "
        "a store never mixes sources (use another --store)"]
    assert emulator.recorded() == []  # refused before any request, the plan lookup included
    with SQLiteStore(db, readonly=True) as store:
        assert len(store.runs()) == 1


def test_a_store_never_mixes_sources_on_postgresql(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                                   pg_dsn: str) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    assert invoke(["run-preset", str(cfgs), "--store", pg_dsn], emu_env).exit_code == 0
    embedded = invoke(["run-preset", str(cfgs), "--store", pg_dsn, "--emulator"], {})
    assert embedded.exit_code == 2 and "holds data from 127.0.0.1" in embedded.stderr
    from cgpreset.store import open_store

    with open_store(pg_dsn, readonly=True) as store:
        assert store.sources() == ["127.0.0.1"] and [r["source"] for r in store.runs()] == ["127.0.0.1"]


def test_a_v3_store_from_before_sources_were_recorded_gets_the_column_when_written(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SQLiteStore(db).close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE runs DROP COLUMN source")
    con.commit()
    con.close()
    with SQLiteStore(db, readonly=True) as store:  # read as it is
        assert store.sources() == [] and store.runs() == []
    with SQLiteStore(db) as store:
        store.start_run(source="emulator")
        assert store.sources() == ["emulator"]


def test_stream_store_records_its_source_and_never_mixes_it(tmp_path: Path, emulator: Any,
                                                            emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL", "BTC"))
    db = tmp_path / "s.db"
    embedded = invoke(["--emulator", "stream", "--config", str(cfgs), "--max-events", "2", "--store", str(db)], {})
    assert embedded.exit_code == 0, embedded.output
    assert "(source: the embedded emulator)" in embedded.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT source FROM stream_runs").fetchall() == [("emulator",)]
    con.close()
    refused = invoke(["stream", "--config", str(cfgs), "--max-events", "2", "--store", str(db)], emu_env)
    assert refused.exit_code == 2 and "holds data from the embedded emulator" in refused.stderr
    assert emulator.ws_recorded() == []  # refused before connecting
    run = invoke(["run-preset", str(cfgs), "--store", str(db)], emu_env)  # the streamed events count too
    assert run.exit_code == 2 and emulator.recorded() == []
