"""`run-preset --shard I/N`: a stable split of the series, disjoint and complete, ETF in one shard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import UsageError
from cgpreset.run.series import MACRO, expand
from cgpreset.run.shard import Shard, parse_shard, shard_series, stable_hash
from tests.test_series import configs, make_config

COINS = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT")


def write_tree(root: Path) -> Path:
    """A generated-like tree of 10 coin configs."""
    out = root / "deploy"
    out.mkdir()
    for coin in COINS:
        cfg = make_config(coin, interval="4h", history_days=30)
        (out / f"{coin.lower()}.yaml").write_text(json.dumps(cfg.model_dump(mode="json", exclude_none=True)),
                                                   encoding="utf-8")
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 100])
def test_shards_of_ten_coins_are_disjoint_and_complete(n: int) -> None:
    series = expand(configs(*COINS))
    parts = [shard_series(series, Shard(i, n)) for i in range(n)]
    ids = [s.id for part in parts for s in part]
    assert len(ids) == len(set(ids)) == len(series)  # disjoint and complete
    assert sorted(ids) == sorted(s.id for s in series)
    etf = [i for i, part in enumerate(parts) for s in part if s.coin == MACRO]
    assert len(etf) == 1  # the shared ETF series runs in exactly one shard
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # dealt round-robin: even


def test_each_shard_gets_an_even_share_of_every_layer() -> None:
    series = expand(configs(*COINS))
    for i in range(4):
        part = shard_series(series, Shard(i, 4))
        funding = [s for s in part if s.layer == "funding"]
        assert len(funding) in (2, 3)


def test_split_does_not_depend_on_config_order_or_the_process() -> None:
    a = shard_series(expand(configs(*COINS)), Shard(1, 3))
    b = shard_series(expand(configs(*reversed(COINS))), Shard(1, 3))
    assert {s.id for s in a} == {s.id for s in b}
    code = ("from cgpreset.run.shard import stable_hash; print(stable_hash('funding/SOL/Binance:SOLUSDT/1h'))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert outs == {f"{stable_hash('funding/SOL/Binance:SOLUSDT/1h')}\n"}


@pytest.mark.parametrize("bad", ["4/4", "1", "a/b", "-1/3", "0/0"])
def test_bad_shard_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(bad)


def _dry(tree: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    r = CliRunner().invoke(cli, ["run-preset", str(tree), "--dry-run", "--json", *args],
                           env={"CGPRESET_PLAN": "standard", **(env or {})})
    assert r.exit_code == 0, r.output
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def test_dry_run_shows_each_shard_plan_and_together_they_are_the_whole(tmp_path: Path) -> None:
    tree = write_tree(tmp_path)
    whole = _dry(tree)
    assert whole["shard"] is None
    parts = [_dry(tree, "--shard", f"{i}/4") for i in range(4)]
    ids = [s["id"] for p in parts for s in p["series"]]  # type: ignore[attr-defined]
    assert sorted(ids) == sorted(s["id"] for s in whole["series"])  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids))
    assert [p["shard"] for p in parts] == ["0/4", "1/4", "2/4", "3/4"]
    assert sum(p["requests"] for p in parts) == whole["requests"]  # type: ignore[misc]


def test_indexed_job_variables_pick_the_shard(tmp_path: Path) -> None:
    tree = write_tree(tmp_path)
    by_flag = _dry(tree, "--shard", "2/4")
    by_env = _dry(tree, env={"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "4"})
    assert by_env["series"] == by_flag["series"] and by_env["shard"] == "2/4"
    text = CliRunner().invoke(cli, ["run-preset", str(tree), "--dry-run", "--shard", "2/4"],
                              env={"CGPRESET_PLAN": "standard"})
    assert "shard 2/4: " in text.stdout


def test_half_set_indexed_job_variables_are_a_config_error(tmp_path: Path) -> None:
    tree = write_tree(tmp_path)
    r = CliRunner().invoke(cli, ["run-preset", str(tree), "--dry-run"],
                           env={"CGPRESET_PLAN": "standard", "JOB_COMPLETION_INDEX": "1"})
    assert r.exit_code == 2
    assert r.stderr.strip() == ("Error: JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: "
                                "set both (this shard, of how many) or neither")
    r = CliRunner().invoke(cli, ["run-preset", str(tree), "--dry-run"],
                           env={"CGPRESET_PLAN": "standard", "JOB_COMPLETION_INDEX": "4", "JOB_COMPLETIONS": "4"})
    assert r.exit_code == 2 and "JOB_COMPLETION_INDEX: shard index 4 is not in 0..3" in r.stderr


def test_two_shards_on_the_emulator_store_every_series_once(tmp_path: Path, emu_env: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import cgpreset.cli.run as run_cmd
    from tests.test_run_e2e import FAST, write_configs

    monkeypatch.setattr(run_cmd, "START_JITTER", 0.0)  # no real sleep in a test
    cfgs = write_configs(tmp_path / "c", coins=("SOL", "BTC", "ETH"))
    db = tmp_path / "s.db"
    reports = []
    for i in range(2):
        r = CliRunner().invoke(cli, ["run-preset", str(cfgs), "--store", str(db), "--json", "--shard", f"{i}/2"],
                               env={**FAST, **emu_env})
        assert r.exit_code in (0, 1), r.output
        reports.append(json.loads(r.stdout))
    ran = [s["id"] for rep in reports for s in rep["series"]]
    assert sorted(ran) == sorted(s.id for s in expand(configs("SOL", "BTC", "ETH")))
    assert len(ran) == len(set(ran))
    assert all(s["outcome"] in ("ok", "empty") for rep in reports for s in rep["series"])
