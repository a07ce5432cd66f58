"""After 1h -> 4h the analyst views hold only the 4h series; the 1h ones are retired: marked by
`cursors`, kept in the tables, and deleted by `cursors prune` (which asks first)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cgpreset.cli import cli
from tests.test_completeness import emu_env
from tests.test_run_e2e import invoke, write_configs

DAILY = ("SELECT coin, substr(ts, 1, 10) AS day, sum(long_usd) FROM liquidation WHERE closed = 1 "
         "GROUP BY coin, day ORDER BY day DESC")


def _daily(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(DAILY).fetchall()
    finally:
        con.close()


def test_an_interval_change_retires_the_old_series_out_of_the_views(tmp_path: Path, emulator: Any) -> None:
    env, db = emu_env(emulator), tmp_path / "run.db"
    cfg = tmp_path / "cfg"
    write_configs(cfg, ("SOL",), history_days=4, interval="4h")
    assert invoke(["run-preset", str(cfg), "--store", str(db), "--layers", "liquidation"], env).exit_code == 0
    four_hourly = _daily(db)
    write_configs(cfg, ("SOL",), history_days=4, interval="1h")  # 4h -> 1h
    result = invoke(["run-preset", str(cfg), "--store", str(db), "--layers", "liquidation", "--json"], env)
    # --layers liquidation judges SOL's liquidation series only: the 4h one goes
    assert result.exit_code == 0 and json.loads(result.stdout)["retired"] == ["liquidation/SOL/Binance,OKX,Bybit/4h"]
    assert json.loads(result.stdout)["series"][0]["interval"] == "1h"
    hourly = _daily(db)
    # the same days (and, in the first hours of a UTC day, today's, which has closed 1h bars but no
    # closed 4h bar yet), each summed over the 1h series alone: the 4h series counts no more
    assert {d for _, d, _ in hourly} >= {d for _, d, _ in four_hourly}
    con = sqlite3.connect(db)
    hourly_sums = dict(con.execute(
        "SELECT substr(strftime('%Y-%m-%dT%H:%M:%SZ', d.time / 1000, 'unixepoch'), 1, 10) AS day, sum(d.long_usd) "
        "FROM data_liquidation d JOIN series s ON s.id = d.series WHERE s.interval = '1h' AND d.closed = 1 "
        "GROUP BY day").fetchall())
    assert {d: round(v, 2) for _, d, v in hourly} == {d: round(v, 2) for d, v in hourly_sums.items()}
    assert {r[0] for r in con.execute("SELECT interval FROM liquidation")} == {"1h"}
    assert con.execute("SELECT count(*) FROM data_liquidation d JOIN series s ON s.id = d.series "
                       "WHERE s.interval = '4h'").fetchone()[0] > 0  # kept in the table
    con.close()
    listed = invoke(["cursors", "--store", str(db), "--json"], env)
    by_key = {c["series"]: c for c in json.loads(listed.stdout)["cursors"]}
    assert by_key["liquidation/SOL/Binance,OKX,Bybit/4h"]["retired_at"] is not None
    assert by_key["liquidation/SOL/Binance,OKX,Bybit/1h"]["retired_at"] is None
    table = invoke(["cursors", "--store", str(db)], env).stdout
    assert "retired" in table and "current" in table
    refused = CliRunner().invoke(cli, ["cursors", "prune", "--store", str(db)], input="n\n")
    assert refused.exit_code == 2 and "nothing deleted" in refused.stderr
    pruned = invoke(["cursors", "prune", "--store", str(db), "--yes"], env)
    assert pruned.exit_code == 0 and "deleted 1 retired series" in pruned.stdout
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM series WHERE interval = '4h'").fetchone()[0] == 0
    con.close()


def test_a_run_of_every_config_retires_a_coin_that_left_the_watchlist(tmp_path: Path, emulator: Any) -> None:
    env, db = emu_env(emulator), tmp_path / "run.db"
    cfg = write_configs(tmp_path / "cfg", ("SOL", "BTC"), history_days=2)
    assert invoke(["run-preset", str(cfg), "--store", str(db)], env).exit_code == 0
    (cfg / "btc.yaml").unlink()
    result = invoke(["run-preset", str(cfg), "--store", str(db), "--json"], env)
    retired = json.loads(result.stdout)["retired"]
    assert result.exit_code == 0 and retired and all("/BTC/" in k for k in retired)
    text = invoke(["run-preset", str(cfg), "--store", str(db)], env).stdout
    assert "retired" not in text  # only the run that retires them says so
    con = sqlite3.connect(db)
    assert {r[0] for r in con.execute("SELECT coin FROM open_interest")} == {"SOL"}
    con.close()
