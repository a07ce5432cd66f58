"""The layer registry agrees with the catalogue, the config models and the code that reads it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

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


SHIPPED = PACKAGE / "layers" / "shipped"


def _layer_names() -> set[str]:
    """The shipped layers' names and their detail views' (what code could spell out), read from
    the definitions themselves (cgpreset/layers/shipped/*.yaml), not through the loader."""
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(SHIPPED.glob("*.yaml"))]
    return {d["name"] for d in docs} | {d["detail"]["view"] for d in docs if d.get("detail")}


def _strings(node: ast.AST) -> list[str]:
    """The string constants of an expression: itself, or the items of a tuple, list or set."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [n.value for n in items if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _literal(node: ast.AST | None) -> list[str]:
    return [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []


_LOOKUPS = {"get", "pop", "setdefault"}


def _branching_on_a_layer(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """Where code picks behaviour by a layer's name spelled out: a comparison (`layer == "funding"`,
    `"funding" in fallbacks`, `ls.id in ("funding", "basis")`), a `case "funding":`, a table keyed
    by names (`{"funding": ...}`, `dict(funding=...)`), or a lookup by one (`charts["funding"]`,
    `layers.get("funding")`). Not a name in a message, a column tuple or `Literal[...]` (a type)."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        used: list[str] = []
        if isinstance(node, ast.Compare):
            used = [v for n in (node.left, *node.comparators) for v in _strings(n)]
        elif isinstance(node, ast.MatchValue):
            used = _literal(node.value)
        elif isinstance(node, ast.Dict):
            used = [v for k in node.keys if k is not None for v in _literal(k)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            used = [k.arg for k in node.keywords if k.arg is not None]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _LOOKUPS:
            used = _literal(node.args[0]) if node.args else []
        elif isinstance(node, ast.Subscript) and not (isinstance(node.value, ast.Name) and node.value.id == "Literal"):
            used = _literal(node.slice)
        hits += [(getattr(node, "lineno", 0), v) for v in used if v in names]
    return hits


def _outside_the_registry() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "layers")


#: Names a layer shares with something else, where the code means that other thing.
NOT_A_LAYER = {
    ("emulator/ws.py", "price"): "a WebSocket event's `price` field (the WebSocket docs)",
    ("emulator/etf.py", "etf_flows"): "the ETF answer's list of tickers, as the API names it",
    ("stream/events.py", "liquidation"): "an event's kind (liquidation or trade)",
    ("stream/options.py", "liquidation"): "an event's kind (liquidation or trade)",
}

#: Branches on a layer's name still in the package, for the lead to move into the layers'
#: definitions. The list only shrinks: a new one fails the test, and so does one gone but listed.
STILL_SPELLED_OUT: list[tuple[str, str]] = []


def test_no_code_outside_the_registry_branches_on_a_shipped_layer_name() -> None:
    """What differs between layers belongs in their definitions: code branches on a layer's kind
    and reads its spec, never compares, keys or looks up a shipped layer's name (analyst, resolver,
    store, run, CLI, emulator alike; only cgpreset/layers/ reads names)."""
    names = _layer_names()
    found = [(p.relative_to(PACKAGE).as_posix(), line, name) for p in _outside_the_registry()
             for line, name in _branching_on_a_layer(ast.parse(p.read_text(encoding="utf-8")), names)]
    spelled = {(f, n) for f, _, n in found} - set(NOT_A_LAYER)
    changed = spelled ^ set(STILL_SPELLED_OUT)
    assert not changed, [f"{f}:{line}: {n!r}" for f, line, n in found if (f, n) in changed] or sorted(changed)


@pytest.mark.parametrize(("code", "names"), [
    ('if layer == "funding":\n    pass', ["funding"]),
    ('ok = ls.id != "basis"', ["basis"]),
    ('fallback = "funding" in self.fallbacks', ["funding"]),
    ('pairs = ls.id in ("funding", "basis", "coin")', ["funding", "basis"]),
    ('match ls.id:\n    case "funding" | "basis":\n        pass', ["funding", "basis"]),
    ('CHARTS = {"funding": line, "open_interest": area}', ["funding", "open_interest"]),
    ('charts = dict(funding=line)', ["funding"]),
    ('chart = CHARTS["open_interest"]', ["open_interest"]),
    ('pair = cfg.layers.get("funding")', ["funding"]),
    ('rank_by: Literal["open_interest"] = "open_interest"', []),  # a type, and a value
    ('chart = CHARTS[ls.id]\nsame = layer == ls.id', []),  # driven by the spec
    ('raise ValueError("needs layers.funding")\ncols = ("price", "time")', []),  # a message, a column tuple
])
def test_the_layer_branch_check_sees_each_way_of_spelling_a_layer(code: str, names: list[str]) -> None:
    found = _branching_on_a_layer(ast.parse(code), {"funding", "basis", "open_interest", "price"})
    assert sorted(n for _, n in found) == sorted(names)


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
