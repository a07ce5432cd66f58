"""What a coin config may say: coin codes, symbols, at least one layer, strict numbers.

Every rule is checked through both readers: `load_config` (run-preset, health, stream; first
problem, one line) and `cgpreset validate` (every problem, one line each); both name file and field.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import ConfigError
from cgpreset.models.config import load_config, load_configs
from tests.conftest import FIXTURES

GOLDEN = Path(__file__).parent / "golden"
SOL = (GOLDEN / "sol.yaml").read_text(encoding="utf-8")


def bad(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SOL, old
    path = tmp_path / "sol.yaml"
    path.write_text(SOL.replace(old, new, 1), encoding="utf-8")
    return path


def both_fail(path: Path, field: str, problem: str) -> None:
    """load_config and validate reject the file with one line naming file, field and problem; exit 2."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: {field}: "), line
    assert problem in line
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1  # the verdict
    lines = result.stdout.splitlines()  # the problems, as validate's output
    # The line format itself (`file: field: problem`) is pinned in test_validate.py.
    assert any(x.startswith(str(path)) and f"{field}: " in x and problem in x
               for x in lines), lines
    assert not any(x.startswith("Error: ") for x in lines)
    assert "Traceback" not in result.output


# -- coin-level symbols are the coin ------------------------------------------------------------


@pytest.mark.parametrize("layer", ["open_interest", "liquidation", "taker_volume", "liquidation_exchanges"])
def test_coin_level_symbol_must_be_the_coin(tmp_path: Path, layer: str) -> None:
    head = f"  {layer}:\n    symbol: SOL\n"
    path = bad(tmp_path, head, head.replace("SOL", "BTC"))
    both_fail(path, f"layers.{layer}.symbol", "BTC is not this config's coin SOL")


def test_coin_level_symbol_is_required(tmp_path: Path) -> None:
    path = bad(tmp_path, "  open_interest:\n    symbol: SOL\n", "  open_interest:\n    interval: 1h\n")
    both_fail(path, "layers.open_interest.symbol", "Field required")


def test_symbol_must_match_the_coin_exactly(tmp_path: Path) -> None:
    path = bad(tmp_path, "  open_interest:\n    symbol: SOL\n", "  open_interest:\n    symbol: sol\n")
    both_fail(path, "layers.open_interest.symbol", "sol is not this config's coin SOL")


@pytest.mark.parametrize("symbol", ["SOLUSDT", "SOL-USDT-SWAP", "1000PEPEUSDT", "SOL_USDT", "SOL/USDT:USDT"])
def test_funding_symbol_is_the_venue_instrument_not_the_coin(tmp_path: Path, symbol: str) -> None:
    cfg = load_config(bad(tmp_path, "symbol: SOL-USDT-SWAP", f"symbol: {symbol}"))
    assert cfg.layers.funding is not None and cfg.layers.funding.symbol == symbol


@pytest.mark.parametrize("symbol", ['""', '"SOL USDT"', '" SOL-USDT-SWAP"', '"SOL-USDT-SWAP\\t"'])
def test_funding_symbol_is_non_empty_without_whitespace(tmp_path: Path, symbol: str) -> None:
    path = bad(tmp_path, "symbol: SOL-USDT-SWAP", f"symbol: {symbol}")
    both_fail(path, "layers.funding.symbol", "must be non-empty, without whitespace")


@pytest.mark.parametrize(("old", "new", "field"), [
    ("exchange: OKX", 'exchange: ""', "layers.funding.exchange"),
    ("exchange: OKX", 'exchange: " OKX"', "layers.funding.exchange"),
    ("exchange_list: [Binance, OKX, Bybit]", 'exchange_list: [Binance, "", Bybit]',
     "layers.liquidation.exchange_list[1]"),
    ("exchanges: [All, Binance, OKX, Bybit]", 'exchanges: [All, "  "]', "layers.liquidation_exchanges.exchanges[1]"),
])
def test_exchange_names_are_not_blank(tmp_path: Path, old: str, new: str, field: str) -> None:
    both_fail(bad(tmp_path, old, new), field, "must be non-empty, without surrounding whitespace")


# -- the coin code -------------------------------------------------------------------------------


@pytest.mark.parametrize("coin", ['"  "', '""', "../../etc", "SOL/USDT", '"SOL "', "SÖL", '"SOL\\n"'])
def test_coin_is_a_coinglass_coin_code(tmp_path: Path, coin: str) -> None:
    both_fail(bad(tmp_path, "coin: SOL", f"coin: {coin}"), "coin", "is not a CoinGlass coin code")


def test_every_real_coinglass_code_is_a_valid_coin(tmp_path: Path) -> None:
    codes = json.loads((FIXTURES / "futures_supported-coins.json").read_text(encoding="utf-8"))["data"]
    snapshot = json.loads((FIXTURES / "discovery-snapshot.json").read_text(encoding="utf-8"))["coins"]
    assert {"1000PEPE", "kPEPE"} <= set(codes)
    for code in sorted(set(codes) | set(snapshot)):
        text = SOL.replace("coin: SOL", f"coin: {json.dumps(code)}").replace("symbol: SOL\n", f"symbol: {code}\n")
        (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
        assert load_config(tmp_path / "c.yaml").coin == code


# -- layers, numbers -----------------------------------------------------------------------------


def test_at_least_one_layer(tmp_path: Path) -> None:
    start, end = SOL.index("layers:\n"), SOL.index("health:\n")
    path = tmp_path / "sol.yaml"
    path.write_text(SOL[:start] + "layers: {}\n" + SOL[end:], encoding="utf-8")
    both_fail(path, "layers", "no layer to run")
    path.write_text(SOL[:start] + "layers:\n  funding: null\n" + SOL[end:], encoding="utf-8")
    both_fail(path, "layers", "no layer to run")


def test_one_layer_is_enough(tmp_path: Path) -> None:
    start, end = SOL.index("layers:\n"), SOL.index("health:\n")
    path = tmp_path / "sol.yaml"
    path.write_text(SOL[:start] + "layers:\n  etf_flows: {}\n" + SOL[end:], encoding="utf-8")
    assert load_config(path).layers.enabled() == ["etf_flows"]


@pytest.mark.parametrize(("old", "new", "field", "problem"), [
    ("history_days: 90", "history_days: true", "history_days", "valid integer"),
    ("history_days: 90", "history_days: 90.0", "history_days", "valid integer"),
    ("history_days: 90", 'history_days: "90"', "history_days", "valid integer"),
    ("min_rows: 1", "min_rows: true", "health.min_rows", "valid integer"),
    ("max_gap_bars: 0", "max_gap_bars: false", "health.max_gap_bars", "valid integer"),
    ("asset: bitcoin", "asset: bitcoin\n    history_days: true", "layers.etf_flows.history_days", "valid integer"),
    ("freshness_intervals: 2.0", "freshness_intervals: .inf", "health.freshness_intervals", "finite number"),
    ("freshness_intervals: 2.0", "freshness_intervals: .nan", "health.freshness_intervals", "finite number"),
    ("freshness_intervals: 2.0", "freshness_intervals: true", "health.freshness_intervals", "valid number"),
    ("tolerance: 0.01", "tolerance: .inf", "health.tolerance", "finite number"),
    ("min_volume_usd: 0.0", "min_volume_usd: .inf", "stream.min_volume_usd", "finite number"),
    ("flag_all_zero: true", "flag_all_zero: 1", "health.flag_all_zero", "valid boolean"),
    ("version: 1", "version: true", "version", "Input should be 1"),
])
def test_numbers_are_strict_and_finite(tmp_path: Path, old: str, new: str, field: str, problem: str) -> None:
    both_fail(bad(tmp_path, old, new), field, problem)


def test_whole_numbers_still_pass_as_floats(tmp_path: Path) -> None:
    cfg = load_config(bad(tmp_path, "freshness_intervals: 2.0", "freshness_intervals: 3"))
    assert cfg.health.freshness_intervals == 3.0


# -- loading several paths -----------------------------------------------------------------------


def test_overlapping_paths_load_each_file_once(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for name in ("btc.yaml", "sol.yaml"):
        (deploy / name).write_bytes((GOLDEN / name).read_bytes())
    loaded = load_configs([deploy / "sol.yaml", deploy, deploy / "sol.yaml", Path("deploy/./btc.yaml")])
    assert [p for p, _ in loaded] == [deploy / "sol.yaml", deploy / "btc.yaml"]  # first-seen order
    (tmp_path / "link.yaml").symlink_to(deploy / "btc.yaml")
    assert [p.name for p, _ in load_configs([deploy, tmp_path / "link.yaml"])] == ["btc.yaml", "sol.yaml"]


def test_overlapping_paths_do_not_double_count_a_dry_run(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "sol.yaml").write_bytes((GOLDEN / "sol.yaml").read_bytes())
    once = CliRunner().invoke(cli, ["run-preset", "--dry-run", "--json", "deploy"], env={"CGPRESET_PLAN": "standard"})
    twice = CliRunner().invoke(cli, ["run-preset", "--dry-run", "--json", "deploy", "deploy/sol.yaml"],
                               env={"CGPRESET_PLAN": "standard"})
    assert once.exit_code == twice.exit_code == 0, twice.output
    assert once.stdout == twice.stdout


# -- the same wording everywhere -----------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "field", "problem"), [
    ("  min_rows: 1", "  min_rows: 1\n  foo: 1", "health.foo", "unknown key"),
    ("version: 1", "version: 1\nfoo: bar", "foo", "unknown key"),
    ("  etf_flows:", "  etf_flow:", "layers.etf_flow",
     "unknown layer (did you mean etf_flows?); expected one of funding, open_interest, liquidation, "
     "taker_volume, liquidation_exchanges, etf_flows"),
])
def test_unknown_keys_read_the_same_in_validate_and_run(tmp_path: Path, old: str, new: str, field: str,
                                                       problem: str) -> None:
    both_fail(bad(tmp_path, old, new), field, problem)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "sol.yaml")
    assert "Extra inputs" not in str(info.value)


def test_generated_configs_and_the_preset_still_load() -> None:
    paths = sorted(GOLDEN.glob("*.yaml")) + sorted((GOLDEN / "edge").glob("*.yaml"))
    assert len(load_configs(paths)) == len(paths) == 16
    from cgpreset.models.preset import load_preset
    from tests.conftest import REPO

    load_preset(REPO / "presets" / "sol.yaml")
