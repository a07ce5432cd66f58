"""THE YAML loader (cgpreset/_yaml.py): duplicate keys, alias bombs, depth and size are refused
with one line naming the file (and line), for every kind of file cgpreset reads."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cgpreset._yaml import MAX_ALIAS_VALUES, MAX_DEPTH, MAX_FILE_BYTES, load_text, parse, read_yaml
from cgpreset.cli import cli
from cgpreset.emulator.faults import load_faults
from cgpreset.errors import ConfigError
from cgpreset.models.config import load_config
from cgpreset.models.preset import load_watchlist
from tests.test_config import GOOD, write


def billion_laughs(levels: int = 8) -> str:
    """The classic alias bomb: 9 strings, each level 9 aliases of the one before (9**levels values)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefghij", "bcdefghijk"[: levels - 1], strict=False):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# -- aliases ---------------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_without_being_expanded(tmp_path: Path) -> None:
    """386 bytes that expand to 43 million strings (13 s and 1.2 GB before): refused at once."""
    text = billion_laughs()
    path = write(tmp_path, "# " + "x" * (386 - len(text) - 3) + "\n" + text)
    assert path.stat().st_size == 386
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (f"{path}: aliases expand the document by more than {MAX_ALIAS_VALUES:,} values "
                               "(an alias bomb?); refused")
    assert peak < 5_000_000


def test_validate_names_the_bomb_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, billion_laughs())
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"{path}: aliases expand the document by more than 100,000 values "
                                          "(an alias bomb?); refused"]


def test_aliases_that_reuse_a_little_still_load() -> None:
    text = "venues: &v [Binance, OKX, Bybit]\nliq: {exchange_list: *v}\ntaker: {exchange_list: *v}\n"
    assert parse(text, "x.yaml") == yaml.safe_load(text)
    small = billion_laughs(4)  # 9**4 = 6561 strings: within the bound
    assert parse(small, "x.yaml") == yaml.safe_load(small)


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml:1: an alias refers to the value it is in$"):
        parse("a: &a [1, *a]\n", "x.yaml")


def test_merge_keys_still_work_and_may_override() -> None:
    text = "base: &b {x: 1, y: 1}\nother:\n  <<: *b\n  y: 2\n"
    assert parse(text, "x.yaml") == {"base": {"x": 1, "y": 1}, "other": {"x": 1, "y": 2}}


# -- duplicate keys --------------------------------------------------------------------------------


def test_a_second_health_block_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "health: {min_rows: 1}\nstream: {}\nhealth: {min_rows: 5}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:10: duplicate key 'health' (first at line 8)"


def test_a_duplicate_key_in_a_watchlist_and_a_faults_file(tmp_path: Path) -> None:
    watchlist = write(tmp_path, "coins: [SOL]\ncoins: [BTC]\n", "wl.yaml")
    with pytest.raises(ConfigError, match=r"wl\.yaml:2: duplicate key 'coins' \(first at line 1\)$"):
        load_watchlist(watchlist)
    faults = write(tmp_path, "rules:\n  - {path: '*', kind: empty, kind: reset}\n", "faults.yaml")
    with pytest.raises(ConfigError, match=r"^faults file .*faults\.yaml:2: duplicate key 'kind'"):
        load_faults(faults)


def test_keys_equal_as_values_are_duplicates_and_merged_ones_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^x:2: duplicate key '0x1' \(first at line 1\)$"):
        parse("1: a\n0x1: b\n", "x")
    with pytest.raises(ConfigError, match=r"^x:4: duplicate key 'y' \(first at line 3\)$"):
        parse("base: &b {x: 1}\nother:\n  y: 2\n  y: 3\n  <<: *b\n", "x")


def test_validate_lists_a_duplicate_key_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "coin: BTC\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"{path}:8: duplicate key 'coin' (first at line 1)"]


_KEYS = st.from_regex(r"k[a-z0-9_]{0,6}", fullmatch=True)  # never a bool, null or number in YAML
_SCALARS = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.none(),
                     st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8))
_TREES = st.recursive(
    st.dictionaries(_KEYS, _SCALARS, min_size=1, max_size=4),
    lambda inner: st.one_of(st.dictionaries(_KEYS, inner, min_size=1, max_size=4), st.lists(inner, max_size=3)),
    max_leaves=20,
)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """Every non-empty mapping in `value`, outermost first."""
    found = [value] if isinstance(value, dict) and value else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return found + [d for child in children for d in _dicts(child)]


def _emit(value: Any, indent: int, twin: dict[str, Any], key: str, lines: list[str], at: dict[str, int]) -> None:
    """Block YAML for `value`, one line per entry; mapping `twin` gets `key` a second time at its end.
    `at` records the lines (1-based) of the first and the second `key` of `twin`."""
    pad = " " * indent
    if isinstance(value, dict):
        entries = list(value.items()) + ([(key, None)] if value is twin else [])
        for n, (k, v) in enumerate(entries):
            if value is twin and k == key:
                at["second" if n == len(entries) - 1 else "first"] = len(lines) + 1
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                _emit(v, indent + 2, twin, key, lines, at)
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
        return
    for item in value:
        if isinstance(item, (dict, list)) and item:
            lines.append(f"{pad}-")
            _emit(item, indent + 2, twin, key, lines, at)
        else:
            lines.append(f"{pad}- {json.dumps(item)}")


@settings(max_examples=150, deadline=None)
@given(tree=_TREES, data=st.data())
def test_a_key_repeated_at_any_depth_is_named_with_its_line(tree: Any, data: st.DataObject) -> None:
    doc = {"kroot": tree}
    twin = data.draw(st.sampled_from(_dicts(doc)))
    key = data.draw(st.sampled_from(sorted(twin)))
    lines: list[str] = []
    at: dict[str, int] = {}
    _emit(doc, 0, twin, key, lines, at)
    text = "\n".join(lines) + "\n"
    assert yaml.safe_load(text) is not None  # valid YAML that PyYAML would take, last one winning
    with pytest.raises(ConfigError) as info:
        load_text(text, "deploy/x.yaml")
    assert str(info.value) == f"deploy/x.yaml:{at['second']}: duplicate key {key!r} (first at line {at['first']})"


@settings(max_examples=100, deadline=None)
@given(tree=_TREES)
def test_without_duplicates_the_loader_reads_what_safe_load_reads(tree: Any) -> None:
    text = yaml.safe_dump({"kroot": tree}, sort_keys=False)
    assert parse(text, "x") == yaml.safe_load(text)


# -- size, depth, numbers --------------------------------------------------------------------------


def test_a_file_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:  # sparse: 100 MB that take no disk
        fh.truncate(100 * 1024 * 1024)
    with pytest.raises(ConfigError) as info:
        load_config(big)
    assert str(info.value) == f"{big}: 104,857,600 bytes, more than the 1 MiB a YAML file may be"
    just = write(tmp_path, GOOD + "#" * (MAX_FILE_BYTES - len(GOOD) - 1) + "\n")
    assert load_config(just).coin == "SOL"  # exactly at the cap: read


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_file_without_a_size_is_read_only_up_to_the_cap() -> None:
    with pytest.raises(ConfigError, match=r"^/dev/zero: more than the 1 MiB a YAML file may be$"):
        read_yaml(Path("/dev/zero"))


def test_nesting_deeper_than_the_bound_is_refused() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse(ok, "x") is not None
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(ConfigError, match=rf"^x:1: nested deeper than {MAX_DEPTH} levels$"):
        parse(deep, "x")
    with pytest.raises(ConfigError, match=rf"^x: nested deeper than {MAX_DEPTH} levels$"):
        parse("a: &a " + deep + "\n", "x")  # an anchored document: the graph walk finds it


def test_a_number_python_cannot_convert_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("history_days: 30", "history_days: " + "1" * 5000))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: invalid YAML: Exceeds the limit")
    assert "\n" not in str(info.value) and sys.get_int_max_str_digits() < 5000
