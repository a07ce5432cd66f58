"""The coin-config model and its loader: one-line errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgpreset.errors import ConfigError
from cgpreset.models.config import load_config, load_configs

GOOD = """\
coin: SOL
plan: standard
interval: 1h
history_days: 30
layers:
  funding: {exchange: OKX, symbol: SOL-USDT-SWAP}
  open_interest: {symbol: SOL}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "sol.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.coin == "SOL" and cfg.layers.enabled() == ["funding", "open_interest"]
    assert cfg.interval_for("funding") == "1h"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe\x00garbage\x9c", "sol.yaml: not UTF-8 text"),
        ("- a\n- b\n", "sol.yaml: expected a mapping at the top level"),
        ("coin: [unclosed\n", "sol.yaml: line 2: invalid YAML"),
        (GOOD + "colour: red\n", "sol.yaml: colour: unknown key"),
        (GOOD.replace("interval: 1h", "interval: 90m"), "sol.yaml: interval: Input should be"),
        (GOOD.replace("plan: standard", "plan: hobbyist"),
         "sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)"),
        (GOOD.replace("history_days: 30", "history_days: 400"),
         "sol.yaml: history_days: 400 is deeper than the standard plan keeps at 1h (360 days)"),
        (GOOD.replace("{symbol: SOL}", "{symbol: SOL, exchange_list: [OKX]}"),
         "sol.yaml: layers.open_interest.exchange_list: unknown key"),
        (GOOD.replace("layers:", "layers:\n  funding_rate: {}"),
         "sol.yaml: layers.funding_rate: unknown layer (did you mean funding?); "
         "expected one of funding, open_interest, liquidation, taker_volume, liquidation_exchanges, etf_flows"),
    ],
)
def test_bad_configs_fail_in_one_line_naming_file_and_field(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(str(tmp_path / "sol.yaml").removesuffix("sol.yaml")) and message in line


def test_directories_expand_and_missing_paths_fail(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "b.yaml")
    write(tmp_path, GOOD.replace("SOL", "BTC"), "a.yml")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p, _ in load_configs([tmp_path])] == ["a.yml", "b.yaml"]
    with pytest.raises(ConfigError, match="no such file or directory"):
        load_configs([tmp_path / "nope"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no config files"):
        load_configs([empty])
