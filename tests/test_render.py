"""Rendering (pure, validated), template errors, snapshot hashing and the JSON Schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cgpreset._yaml import safe_load, to_yaml
from cgpreset.cli import cli
from cgpreset.errors import ConfigError
from cgpreset.generate.discovery import Snapshot, load_snapshot
from cgpreset.generate.render import GENERATED_MARK, load_templates, render_all, render_coin
from cgpreset.generate.resolver import resolve
from cgpreset.models.config import CoinConfig, Provenance
from cgpreset.models.preset import Watchlist, load_preset
from cgpreset.models.schema import coin_config_schema
from tests.conftest import FIXTURES, REPO

SNAPSHOT_FILE = FIXTURES / "discovery-snapshot.json"
PRESET = load_preset(REPO / "presets" / "sol.yaml")
PROVENANCE = Provenance(
    preset="presets/sol.yaml", preset_sha256="p" * 64, template="templates/coin.yaml.j2",
    template_sha256="t" * 64, discovery_sha256="d" * 64,
)


def _snapshot() -> Snapshot:
    return load_snapshot(SNAPSHOT_FILE)


def _coins(*codes: str) -> Any:
    return resolve(PRESET, Watchlist(coins=list(codes)), _snapshot()).coins


def _templates(tmp_path: Path) -> Path:
    out = tmp_path / "templates"
    shutil.copytree(REPO / "templates", out)
    return out


def test_render_sol_carries_the_preset_values_and_header() -> None:
    (sol,) = _coins("SOL")
    out = render_coin(load_templates(REPO / "templates"), PRESET, sol, provenance=PROVENANCE, schema_ref="s.json")
    lines = out.text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=s.json"
    assert lines[1] == f"# {GENERATED_MARK}presets/sol.yaml + templates/coin.yaml.j2 — do not edit."
    assert out.text.endswith("\n") and not out.text.endswith("\n\n") and "\r" not in out.text
    cfg = out.config
    assert (cfg.coin, cfg.plan.value, cfg.interval, cfg.history_days) == ("SOL", "standard", "1h", 90)
    assert cfg.health == PRESET.health and cfg.stream == PRESET.stream
    assert cfg.layers.funding and (cfg.layers.funding.exchange, cfg.layers.funding.symbol) == ("OKX", "SOL-USDT-SWAP")
    assert cfg.provenance == PROVENANCE
    assert CoinConfig.model_validate(yaml.safe_load(out.text)) == cfg


def test_render_is_pure_and_deterministic() -> None:
    templates = load_templates(REPO / "templates")
    coins = _coins("BTC", "kPEPE", "TON", "FARTCOIN")
    a = render_all(templates, PRESET, coins, provenance=PROVENANCE, schema_ref="x")
    b = render_all(load_templates(REPO / "templates"), PRESET, coins, provenance=PROVENANCE, schema_ref="x")
    assert [f.text for f in a] == [f.text for f in b]
    assert [f.filename for f in a] == ["btc.yaml", "fartcoin.yaml", "kpepe.yaml", "ton.yaml"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("SOL", "SOL"), ("1000PEPE", "1000PEPE"), ("kPEPE", "kPEPE"), ("NO", "'NO'"), ("on", "'on'"),
        ("1e3", "1e3"), ("1.5", "'1.5'"), ("123", "'123'"), ("a: b", "'a: b'"), ("it's", "'it''s'"), ("", "''"),
        ("-x", "'-x'"), ("2026-11-25", "'2026-11-25'"), ("a\nb", '"a\\nb"'), ("é ü", "'é ü'"), ("~", "'~'"),
        (2.0, "2.0"), (1e-05, "1.0e-05"), (1, "1"), (True, "true"), (None, "null"),
        (["All", "OKX"], "[All, OKX]"), ([], "[]"),
    ],
)
def test_to_yaml_quotes_only_what_yaml_would_misread(value: Any, text: str) -> None:
    assert to_yaml(value) == text
    assert yaml.safe_load(f"k: {text}")["k"] == value


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, 'y', 2.5, true, null, ~]\nc: {d: e}\n",
        "when: 2026-11-25\n",  # a timestamp: the full loader
        "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",  # a merge key: the full loader
        "",
        "- 1\n- '1'\n",
    ],
)
def test_safe_load_matches_yaml_safe_load(text: str) -> None:
    assert safe_load(text) == yaml.safe_load(text)


def test_coin_codes_yaml_would_misread_stay_strings() -> None:
    snap = _snapshot()
    odd = snap.model_copy(update={"coins": [*snap.coins, "NO", "1E3"]})
    coins = resolve(PRESET, Watchlist(coins=["NO", "1E3"]), odd).coins
    out = render_all(load_templates(REPO / "templates"), PRESET, coins, provenance=PROVENANCE, schema_ref="x")
    assert sorted(f.config.coin for f in out) == ["1E3", "NO"]


def test_undefined_variable_names_template_and_coin(tmp_path: Path) -> None:
    tdir = _templates(tmp_path)
    (tdir / "partials" / "provenance.yaml.j2").write_text("provenance: {{ nope }}\n", encoding="utf-8")
    (btc,) = _coins("BTC")
    with pytest.raises(ConfigError) as exc:
        render_coin(load_templates(tdir, source="templates/coin.yaml.j2"), PRESET, btc, provenance=PROVENANCE,
                    schema_ref="x")
    assert str(exc.value) == ("templates/partials/provenance.yaml.j2: line 1 (coin BTC): template error: "
                              "'nope' is undefined")


def test_syntax_error_names_the_template_and_line(tmp_path: Path) -> None:
    tdir = _templates(tmp_path)
    (tdir / "coin.yaml.j2").write_text("coin: {{ coin \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"coin\.yaml\.j2: line 1: template error"):
        load_templates(tdir)


def test_invalid_yaml_and_invalid_config_name_template_and_coin(tmp_path: Path) -> None:
    tdir = _templates(tmp_path)
    main = tdir / "coin.yaml.j2"
    (btc,) = _coins("BTC")
    main.write_text(main.read_text(encoding="utf-8").replace("version: 1", "version: [1"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"coin\.yaml\.j2 \(coin BTC\): rendered invalid YAML: line \d+"):
        render_coin(load_templates(tdir), PRESET, btc, provenance=PROVENANCE, schema_ref="x")
    main.write_text(main.read_text(encoding="utf-8").replace("version: [1", "version: 1\nextra_key: 1"),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(coin BTC\): rendered an invalid config: extra_key: unknown key"):
        render_coin(load_templates(tdir), PRESET, btc, provenance=PROVENANCE, schema_ref="x")
    main.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a mapping"):
        render_coin(load_templates(tdir), PRESET, btc, provenance=PROVENANCE, schema_ref="x")


def test_missing_templates_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="templates directory not found"):
        load_templates(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"coin\.yaml\.j2: template not found"):
        load_templates(tmp_path)


def test_template_hash_covers_partials(tmp_path: Path) -> None:
    tdir = _templates(tmp_path)
    before = load_templates(tdir).sha256
    assert before == load_templates(REPO / "templates").sha256
    partial = tdir / "partials" / "layers.yaml.j2"
    partial.write_text(partial.read_text(encoding="utf-8") + "{# edited #}\n", encoding="utf-8")
    assert load_templates(tdir).sha256 != before


def test_snapshot_hash_ignores_meta_but_not_content() -> None:
    snap = _snapshot()
    meta = snap.meta.model_copy(update={"fetched_at": "2030-01-01T00:00:00Z", "open_interest_usd": {}})
    assert snap.model_copy(update={"meta": meta}).sha256() == snap.sha256()
    fewer = {ex: rows for ex, rows in snap.pairs.items() if ex != "dYdX"}
    assert snap.model_copy(update={"pairs": fewer}).sha256() != snap.sha256()
    assert Snapshot.model_validate_json(snap.to_json()).to_json() == snap.to_json()
    assert snap.to_json() == SNAPSHOT_FILE.read_text(encoding="utf-8")


def test_bad_snapshot_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no discovery snapshot"):
        load_snapshot(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"coins": []}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json: not a cgpreset discovery snapshot: meta: Field required"):
        load_snapshot(bad)


def _objects(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_schema_is_closed_at_every_level() -> None:
    schema = coin_config_schema()
    objects = list(_objects(schema))
    assert len(objects) >= 10
    assert all(o.get("additionalProperties") is False for o in objects)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout) == coin_config_schema()
    assert result.stdout.endswith("}\n")
