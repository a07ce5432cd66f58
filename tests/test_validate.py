"""`cgpreset validate`: schema and plan feasibility offline, every problem on its own line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cgpreset.cli import cli
from cgpreset.errors import ConfigError
from cgpreset.layers import layer_names
from cgpreset.models.config import load_config
from cgpreset.models.schema import validate_file
from tests.conftest import FIXTURES

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def _sol(tmp_path: Path, name: str = "sol.yaml", **replace: str) -> Path:
    text = (GOLDEN / "sol.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_generated_configs_are_valid(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN, tmp_path / "deploy")
    result = run("deploy")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"ok deploy/{p.name}" for p in sorted(GOLDEN.glob("*.yaml"))]


def test_interval_below_the_plan_floor_names_file_and_field(tmp_path: Path) -> None:
    _sol(tmp_path, **{"plan: standard": "plan: hobbyist"})
    result = run("sol.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]
    assert result.stderr.splitlines() == ["Error: 1 problem(s) in 1 file(s)"]


def test_every_feasibility_problem_is_listed(tmp_path: Path) -> None:
    _sol(
        tmp_path,
        **{
            "plan: standard": "plan: startup",
            "history_days: 90": "history_days: 200",
            "    symbol: SOL-USDT-SWAP\n": "    symbol: SOL-USDT-SWAP\n    interval: 5m\n",
        },
    )
    assert validate_file(Path("sol.yaml")) == [
        "sol.yaml: history_days: 200 is deeper than the startup plan keeps at 1h (180 days)",
        "sol.yaml: layers.funding.interval: 5m is below the startup plan's floor (30m)",
    ]


def test_unknown_layer_unknown_key_and_bad_values_all_listed(tmp_path: Path) -> None:
    _sol(tmp_path, **{"  etf_flows:": "  etf_flow:", "min_rows: 1": "min_rows: -1\n  min_row: 1",
                      "interval: 1h": "interval: 2m"})
    result = run("sol.yaml")
    assert result.exit_code == 2
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    assert "sol.yaml: interval: Input should be '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', " \
           "'12h', '1d' or '1w'" in lines
    assert ("sol.yaml: layers.etf_flow: unknown layer (did you mean etf_flows?); expected one of "
            + ", ".join(layer_names())) in lines
    assert "sol.yaml: health.min_rows: Input should be greater than or equal to 0" in lines
    assert "sol.yaml: health.min_row: unknown key (did you mean min_rows?)" in lines
    assert lines[-1] == "Error: 4 problem(s) in 1 file(s)"
    assert "Traceback" not in result.output


def test_several_files_and_a_missing_path(tmp_path: Path) -> None:
    _sol(tmp_path, "a.yaml")
    _sol(tmp_path, "b.yaml", **{"plan: standard": "plan: hobbyist"})
    (tmp_path / "c.yaml").write_text("coin: [\n", encoding="utf-8")
    result = run("a.yaml", "b.yaml", "c.yaml", "missing.yaml")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "missing.yaml: no such file or directory"
    assert lines[1] == "b.yaml: interval: 1h is below the hobbyist plan's floor (4h)"
    assert lines[2].startswith("c.yaml: line 2: invalid YAML")
    assert lines[3:] == ["ok a.yaml"]
    assert result.stderr == "Error: 3 problem(s) in 3 file(s)\n"


def test_lines_read_file_field_problem_as_in_the_readme_and_run_preset(tmp_path: Path) -> None:
    """README: `file: field: problem`, worded as run-preset / health word the same problem."""
    for replace in ({"  min_rows: 1": "  min_rows: 1\n  foo: 1"},
                    {"exchange_list: [Binance, OKX, Bybit]": 'exchange_list: [Binance, "", Bybit]'},
                    {"plan: standard": "plan: hobbyist"}):
        _sol(tmp_path, **replace)
        lines = validate_file(Path("sol.yaml"))
        with pytest.raises(ConfigError) as info:
            load_config(Path("sol.yaml"))
        assert str(info.value).split("; ")[0] == lines[0], (str(info.value), lines)  # its first problem
    assert lines == ["sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]


def test_overlapping_paths_are_checked_once(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN, tmp_path / "deploy")
    result = run("deploy/sol.yaml", "deploy", "deploy/./sol.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ok deploy/sol.yaml"
    assert result.stdout.count("sol.yaml") == 1


def test_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("- 1\n", encoding="utf-8")
    result = run("x.yaml")
    assert result.exit_code == 2 and "x.yaml: expected a mapping at the top level" in result.stdout


def test_presets_watchlists_and_coin_configs_word_a_bad_field_alike(tmp_path: Path) -> None:
    """One formatter: `file: field[1]: problem` for each of the three committed YAML files."""
    from cgpreset.models.preset import load_preset, load_watchlist
    from tests.conftest import REPO

    preset = tmp_path / "preset.yaml"
    preset.write_text((REPO / "presets" / "sol.yaml").read_text(encoding="utf-8").replace(
        "exchange_list: [Binance, OKX, Bybit]", "exchange_list: [Binance, 7, Bybit]", 1), encoding="utf-8")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("top: 10\npin: [SOL, [BTC]]\n", encoding="utf-8")
    config = _sol(tmp_path, **{"exchange_list: [Binance, OKX, Bybit]": "exchange_list: [Binance, 7, Bybit]"})
    lines = []
    for load, path in ((load_preset, preset), (load_watchlist, watchlist), (load_config, config)):
        with pytest.raises(ConfigError) as info:
            load(path)
        lines.append(str(info.value))
    assert lines[0].startswith(f"{preset}: layers.liquidation.exchange_list[1]: "), lines[0]
    assert lines[1].startswith(f"{watchlist}: pin[1]: "), lines[1]
    assert lines[2].startswith(f"{config}: layers.liquidation.exchange_list[1]: "), lines[2]
    first = [line.split("; ")[0].split(": ", 2)[2] for line in (lines[0], lines[2])]
    assert first[0] == first[1] == "Input should be a valid string"  # the same problem, in the same words


# -- exchange names ----------------------------------------------------------------------------------


def test_an_unknown_exchange_names_file_and_field(tmp_path: Path) -> None:
    """`exchange: OKK` in a config was `ok`: run-preset then failed on every call to it."""
    (tmp_path / "deploy").mkdir()
    _sol(tmp_path / "deploy", **{"exchange: OKX": "exchange: OKK",
                                 "exchanges: [All, Binance, OKX, Bybit]": "exchanges: [All, Binance, OKX, Bybitt]"})
    result = run("deploy/sol.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "deploy/sol.yaml: layers.funding.exchange: OKK is not a CoinGlass exchange (did you mean OKX?)",
        "deploy/sol.yaml: layers.liquidation_exchanges.exchanges[3]: Bybitt is not a CoinGlass exchange "
        "(did you mean Bybit?)",
    ]
    assert result.stderr == "Error: 2 problem(s) in 1 file(s)\n"


def test_exchanges_are_checked_against_the_snapshot_beside_the_configs(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    (deploy / ".cgpreset").mkdir(parents=True)
    shutil.copy(FIXTURES / "discovery-snapshot.json", deploy / ".cgpreset" / "discovery.json")
    _sol(deploy, **{"exchange_list: [Binance, OKX, Bybit]\n  taker": "exchange_list: [Binance, Kraken, okx]\n  taker"})
    result = run("deploy")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [  # Kraken is a CoinGlass exchange, but the snapshot lists no pair on it
        "deploy/sol.yaml: layers.liquidation.exchange_list[1]: Kraken is not a CoinGlass exchange",
        "deploy/sol.yaml: layers.liquidation.exchange_list[2]: okx is not a CoinGlass exchange (did you mean OKX?)",
    ]
    (deploy / ".cgpreset" / "discovery.json").unlink()
    without = run("deploy")  # the exchanges CoinGlass documents: Kraken is one
    assert without.stdout.splitlines() == [
        "deploy/sol.yaml: layers.liquidation.exchange_list[2]: okx is not a CoinGlass exchange (did you mean OKX?)"]


def test_a_damaged_snapshot_beside_the_configs_is_a_problem_once(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN, tmp_path / "deploy")
    (tmp_path / "deploy" / ".cgpreset").mkdir()
    (tmp_path / "deploy" / ".cgpreset" / "discovery.json").write_text("{}", encoding="utf-8")
    result = run("deploy", "--json")
    assert result.exit_code == 2
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 1 and problems[0].startswith(
        "deploy/.cgpreset/discovery.json: not a cgpreset discovery snapshot: ")
