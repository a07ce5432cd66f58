"""Preset and Watchlist models and loaders: the shipped files, strictness, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.layers import layer_names
from cgpreset.models.preset import (
    DEFAULT_PRESET,
    DEFAULT_TEMPLATES,
    DEFAULT_WATCHLIST,
    display_path,
    find_default,
    load_preset,
    load_watchlist,
)
from cgpreset.plans import Plan
from tests.conftest import REPO

SOL = REPO / "presets" / "sol.yaml"
WATCHLIST = REPO / "presets" / "watchlist.yaml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_preset_is_the_runbook_production_config() -> None:
    p = load_preset(SOL)
    assert (p.name, p.coin, p.plan, p.interval) == ("sol", "SOL", Plan.STANDARD, "1h")
    assert tuple(type(p.layers).model_fields) == layer_names()
    assert p.layers.enabled() == list(layer_names())[:6]  # the runbook's six (the later ones: sol-analyst.yaml)
    f = p.layers.funding
    assert f is not None
    assert (f.exchange, f.symbol, f.quote, f.contract) == ("OKX", "SOL-USDT-SWAP", "USDT", "perpetual")
    assert f.fallback_exchanges == ["Binance", "Bybit", "Bitget", "Gate", "Hyperliquid", "dYdX"]
    assert p.layers.liquidation and p.layers.liquidation.exchange_list == ["Binance", "OKX", "Bybit"]
    assert p.layers.taker_volume and p.layers.taker_volume.exchange_list == ["Binance", "OKX", "Bybit"]
    le = p.layers.liquidation_exchanges
    assert le is not None and (le.range, le.exchanges) == ("1h", ["All", "Binance", "OKX", "Bybit"])
    assert p.layers.etf_flows and p.layers.etf_flows.asset == "bitcoin"
    assert p.health.freshness_intervals == 2 and p.health.min_rows == 1
    assert p.stream.channels == ["liquidation_orders"]


def test_shipped_watchlist_is_top10_by_oi_with_sol_pinned() -> None:
    w = load_watchlist(WATCHLIST)
    assert (w.top, w.coins, w.rank_by, w.pin) == (10, None, "open_interest", ["SOL"])


def test_typo_key_names_file_and_field(tmp_path: Path) -> None:
    text = SOL.read_text(encoding="utf-8").replace("    exchange: OKX", "    exchnage: OKX")
    path = _write(tmp_path, "typo.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_preset(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ") and "; layers.funding.exchnage: unknown key" in msg
    assert "layers.funding.exchange: Field required" in msg


def test_bad_interval_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", SOL.read_text(encoding="utf-8").replace("interval: 1h", "interval: 2m"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: interval: Input should be '1m'"):
        load_preset(path)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.yaml", "name: sol\nlayers: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+: invalid YAML"):
        load_preset(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_watchlist(_write(tmp_path, "w.yaml", "- BTC\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("top: 10\ncoins: [BTC]\n", "exactly one of `coins`"),
        ("pin: [SOL]\n", "exactly one of `coins`"),
        ("top: 10\npin: [SOL]\nexclude: [sol]\n", "sol both kept (pin/include) and excluded"),
        ("top: 0\n", "top: Input should be greater than or equal to 1"),
        ("coins: []\n", "coins: List should have at least 1 item"),
        ("top: 5\ncoinz: [BTC]\n", "coinz: unknown key"),
    ],
)
def test_watchlist_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_watchlist(_write(tmp_path, "w.yaml", text))
    assert "w.yaml" in str(exc.value)
    assert message in str(exc.value)


def test_duplicate_exchange_in_a_list_is_an_error(tmp_path: Path) -> None:
    text = SOL.read_text(encoding="utf-8").replace("[Binance, OKX, Bybit]", "[Binance, OKX, okx]", 1)
    with pytest.raises(ConfigError, match="layers.liquidation.exchange_list: names an exchange twice"):
        load_preset(_write(tmp_path, "dup.yaml", text))


def test_find_default_prefers_cwd_then_shipped_copy(tmp_path: Path) -> None:
    # cwd is tmp_path (conftest): nothing there, so the copies next to the package are found.
    assert find_default(DEFAULT_PRESET).resolve() == SOL.resolve()
    assert find_default(DEFAULT_WATCHLIST).resolve() == WATCHLIST.resolve()
    assert find_default(DEFAULT_TEMPLATES).resolve() == (REPO / "templates").resolve()
    local = tmp_path / "presets"
    local.mkdir()
    (local / "sol.yaml").write_text("x", encoding="utf-8")
    assert find_default(DEFAULT_PRESET) == DEFAULT_PRESET
    assert find_default(Path("presets/none.yaml")) == Path("presets/none.yaml")


def test_display_path_is_machine_independent(tmp_path: Path) -> None:
    inside = tmp_path / "presets" / "sol.yaml"
    assert display_path(inside) == "presets/sol.yaml"
    assert display_path(SOL) == "presets/sol.yaml"  # outside cwd: folder + name, no absolute path


@pytest.mark.parametrize("folder", ["presets", "templates"])
def test_packaged_copies_match_the_repo(folder: str) -> None:
    """If cgpreset/data/<folder> ships copies for installed wheels, they must equal the repo's."""
    packaged = REPO / "cgpreset" / "data" / folder
    if not packaged.exists():
        pytest.skip(f"no packaged copy of {folder}/ (editable installs read the repo copy)")
    repo_files = {p.relative_to(REPO / folder): p.read_bytes() for p in (REPO / folder).rglob("*") if p.is_file()}
    packaged_files = {p.relative_to(packaged): p.read_bytes() for p in packaged.rglob("*") if p.is_file()}
    assert packaged_files == repo_files
