"""Every shipped layer against a real or documented answer of its endpoint (tests/fixtures/layers/<name>.json):
the definition decodes it, names every field it has, and its times are in the declared unit. Adding a
layer is a definition and its fixture; this test picks both up."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from cgpreset import layers
from cgpreset.api.catalogue import layer_endpoint
from cgpreset.api.rows import decode_rows
from tests.conftest import FIXTURES

LAYER_FIXTURES = FIXTURES / "layers"
SHIPPED = sorted(layers.shipped())


def test_every_shipped_layer_has_its_fixture_and_every_fixture_a_layer() -> None:
    assert sorted(p.stem for p in LAYER_FIXTURES.glob("*.json")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_the_definition_decodes_its_endpoints_answer(name: str) -> None:
    ls = layers.shipped()[name]
    body = json.loads((LAYER_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert str(body["code"]) == "0" and body["data"]
    decoded = decode_rows(layer_endpoint(ls), msgspec.json.encode(body["data"]))
    assert decoded.unknown == (), f"{name}: fields the definition does not name: {decoded.unknown}"
    assert len(decoded.rows) == len(body["data"])
    for row in decoded.rows:
        for column in ls.columns:
            value = getattr(row, column.field)
            assert column.field in {f.name for f in ls.fields}
            assert value is None or isinstance(value, float), (name, column.field, value)
        if ls.time_field is not None:  # decoded times are ms, whatever the answer's unit
            assert 10**12 <= getattr(row, ls.time_field) < 10**13, f"{name}: {ls.time_field} is not in ms"
    if ls.time_field is not None:  # the answer's own times are in the unit the definition declares
        low, high = (10**12, 10**13) if ls.time_unit == "ms" else (10**9, 10**11)
        for raw in body["data"]:
            assert low <= int(raw[ls.time_field]) < high, f"{name}: {ls.time_field} is not in {ls.time_unit}"


@pytest.mark.parametrize("name", SHIPPED)
def test_a_definition_is_its_file_and_reads_back_the_same(name: str, tmp_path: Path) -> None:
    from cgpreset.layers.definition import load_definition

    source = layers.SHIPPED / f"{name}.yaml"
    copy = tmp_path / f"{name}.yaml"
    copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    again = load_definition(copy)
    assert again.source == copy.as_posix() and replace(again, source="cgpreset") == layers.shipped()[name]
