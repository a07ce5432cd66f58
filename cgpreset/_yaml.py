"""YAML text in and out: a fast safe load of plain documents, and inline scalars for templates.

Moved here from generate/render.py so that every reader of YAML (not only rendering) can share it.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*")
_PRINTABLE = re.compile(r"[\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]*")
_RESOLVER: Any = yaml.resolver.Resolver()  # types-PyYAML leaves Resolver.resolve untyped


@lru_cache(maxsize=16384)
def _resolve_tag(value: str, implicit: tuple[bool, bool]) -> str:
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, implicit))


@lru_cache(maxsize=16384)
def _scalar(_type: str, value: Any) -> str:  # _type (a type's name) keeps 1, 1.0 and True apart in the cache
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and _resolve_tag(value, (True, False)) == _STR:
            return value  # plain: YAML reads it back as this very string
        if _PRINTABLE.fullmatch(value):
            return "'" + value.replace("'", "''") + "'"  # single-quoted: only '' is special
        return json.dumps(value)  # control characters: a double-quoted (JSON-compatible) scalar
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError(f"cannot write {value!r} in a config")
    text: str = yaml.dump(value, Dumper=yaml.SafeDumper, default_flow_style=True)
    return text.removesuffix("\n").removesuffix("\n...")


def to_yaml(value: Any) -> str:
    """A scalar or a flat list as inline YAML, quoted only where YAML needs it (NO, 1.5, 'a: b')."""
    if isinstance(value, list):
        return "[" + ", ".join(to_yaml(v) for v in value) + "]"
    if isinstance(value, (str, bool, int, float)) or value is None:
        return _scalar(type(value).__name__, value)
    raise TypeError(f"cannot write {type(value).__name__} as inline YAML")


class _FastLoader(_Loader):  # type: ignore[misc]
    """The safe loader, minus per-node overhead we never use: no path resolvers, memoised tags."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # path resolvers only: none are registered

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            return _resolve_tag(value, implicit)
        return _MAP if kind is yaml.MappingNode else _SEQ


_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SIMPLE: dict[str, Any] = {
    _STR: lambda c, n: n.value,
    "tag:yaml.org,2002:int": lambda c, n: c.construct_yaml_int(n),
    "tag:yaml.org,2002:float": lambda c, n: c.construct_yaml_float(n),
    "tag:yaml.org,2002:bool": lambda c, n: c.construct_yaml_bool(n),
    "tag:yaml.org,2002:null": lambda c, n: None,
}


class _NotSimpleError(Exception):
    pass


def _build(loader: Any, node: Any) -> Any:
    make = _SIMPLE.get(node.tag)
    if make is not None and type(node) is yaml.ScalarNode:
        return make(loader, node)
    if node.tag == _MAP and type(node) is yaml.MappingNode:
        out: dict[Any, Any] = {}
        for k, v in node.value:
            key = _build(loader, k)
            if key == "<<" or isinstance(key, (list, dict)) or key in out:
                raise _NotSimpleError  # merge keys, duplicate keys: the full loader decides
            out[key] = _build(loader, v)
        return out
    if node.tag == _SEQ and type(node) is yaml.SequenceNode:
        return [_build(loader, v) for v in node.value]
    raise _NotSimpleError  # timestamps, binary, other tags: the full loader


def safe_load(text: str) -> Any:
    """What yaml.safe_load returns, faster on plain documents (maps, lists, str/int/float/bool/null).

    Composes with the C parser (if present) and builds the values directly; a document with
    anything else (merge keys, timestamps, other tags) goes through the full safe loader.
    """
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node)
    except _NotSimpleError:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    finally:
        loader.dispose()
