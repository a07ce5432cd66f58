"""The layer registry agrees with the catalogue, the config models and the code that reads it."""

from __future__ import annotations

import ast
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


def _layer_names() -> set[str]:
    """The shipped layers' names and their detail views' (what code could spell out)."""
    from cgpreset.layers import shipped

    return set(shipped()) | {s.detail.view for s in shipped().values() if s.detail is not None}


def _strings(node: ast.AST) -> list[str]:
    """The string constants of an expression: itself, or the items of a tuple, list or set."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [n.value for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _outside_the_registry() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if not {"emulator", "layers"} & set(p.relative_to(PACKAGE).parts)]


def test_few_branches_on_a_layer_name_remain_outside_the_registry() -> None:
    pattern = re.compile(r"layer ==|layer !=|layer (not )?in \(|\.layer ==")
    hits = [f"{p}:{i}" for p in _outside_the_registry()
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert len(hits) <= 1, hits  # store/migrate.py: v2 rows of funding carry their pair in the label


def test_no_table_keyed_by_layer_names_outside_the_registry() -> None:
    """`{"funding": ..., "open_interest": ...}` or `dict(funding=...)` is a layer spelled out in
    code: what differs between layers belongs in their definitions."""
    names = _layer_names()
    hits = []
    for p in _outside_the_registry():
        for node in ast.walk(ast.parse(p.read_text())):
            keys = [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else []
            keyed = any(names & set(_strings(k)) for k in keys)
            called = isinstance(node, ast.Call) and any(k.arg in names for k in node.keywords)
            if keyed or (called and isinstance(node.func, ast.Name) and node.func.id == "dict"):
                hits.append(f"{p.relative_to(PACKAGE)}:{node.lineno}")
    assert hits == []


def _naming_a_layer(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """Where a layer's name is used as one: a dict key, a side of a comparison, a call's argument
    (`spec("etf_flows")`, `.get("funding")`), a subscript (`x["funding"]`). A column that happens
    to share a layer's name (the events' `price`) is none of these."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            used = [v for k in node.keys if k is not None for v in _strings(k)]
        elif isinstance(node, ast.Compare):  # `x in ("a", "b")` names both
            used = [v for n in (node.left, *node.comparators) for v in _strings(n)]
        elif isinstance(node, (ast.Call, ast.Subscript)):  # the argument itself, not a tuple of columns
            args = [*node.args, *(k.value for k in node.keywords)] if isinstance(node, ast.Call) else [node.slice]
            used = [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        else:
            continue
        hits += [(node.lineno, v) for v in used if v in names]
    return hits


def test_the_analyst_spells_out_no_layer() -> None:
    """Views, export, charts and the report derive everything from the catalogue: no layer's name
    is used in them (a key, a comparison, a lookup: what a branch on a layer's name needs)."""
    names = _layer_names()
    hits = [f"{p.name}:{line}: {name!r}" for p in sorted((PACKAGE / "analyst").glob("*.py"))
            for line, name in _naming_a_layer(ast.parse(p.read_text()), names)]
    template = (PACKAGE / "analyst" / "report.html.j2").read_text()
    hits += [f"report.html.j2: {n!r}" for n in names if re.search(rf"[\"']{n}[\"']", template)]
    assert hits == []
