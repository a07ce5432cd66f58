"""The layer registry agrees with the catalogue, the config models and the code that reads it."""

from __future__ import annotations

import re
from pathlib import Path

from cgpreset.api.catalogue import endpoint
from cgpreset.layers import REGISTRY, layer_names
from cgpreset.models.layers import layers_model, preset_layers_model

PACKAGE = Path(__file__).resolve().parents[1] / "cgpreset"


def test_every_layer_of_the_models_has_one_spec_in_order() -> None:
    assert tuple(layers_model().model_fields) == layer_names() == tuple(preset_layers_model().model_fields)


def test_each_spec_matches_its_catalogue_endpoint() -> None:
    for ls in REGISTRY.values():
        ep = endpoint(ls.endpoint_id)
        assert ls.floor == ep.interval_floor, ls.id
        assert set(ls.params) <= set(ep.params), ls.id
        assert {c.field for c in ls.columns} <= set(ep.field_names()), ls.id
        assert ep.time_field is not None or ls.snapshot, ls.id


def test_request_params_and_key_come_from_the_layer_config_fields() -> None:
    for ls in REGISTRY.values():
        model = layers_model().model_fields[ls.id].annotation.__args__[0]  # `XLayer | None`
        fields = set(model.model_fields)
        assert set(ls.params) <= fields, ls.id
        assert set(re.findall(r"{(\w+)}", ls.key)) <= fields, ls.id
        assert ls.keep_field is None or ls.keep_field in fields, ls.id


def test_few_branches_on_a_layer_name_remain_outside_the_registry() -> None:
    pattern = re.compile(r"layer ==|layer in \(|\.layer ==")
    hits = [f"{p}:{i}" for p in PACKAGE.rglob("*.py") if "emulator" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert len(hits) <= 6, hits
