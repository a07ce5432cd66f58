"""YAML in and out: THE loader of every YAML file cgpreset reads, and inline scalars for templates.

Coin configs, presets, watchlists, faults files and rendered templates are all read here, and
refused here (ConfigError naming the file, exit 2) where yaml.safe_load would let them through:

* a file larger than MAX_FILE_BYTES (1 MiB; the shipped preset is 2 KB), checked before reading;
* a key given twice in one mapping (`sol.yaml:14: duplicate key 'health' (first at line 7)`):
  YAML says keys are unique, PyYAML silently keeps the last;
* aliases that would grow the document by more than MAX_ALIAS_VALUES values (a "billion laughs"
  document of 386 bytes expands to 43 million strings: 13 s and 1.2 GB), or refer to themselves;
* nesting deeper than MAX_DEPTH levels, a number too long to convert.

Parsing is libyaml's where it is built in (CSafeLoader) and plain documents are built directly,
which keeps loading about as fast as before the checks (about 0.1 ms per config).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cgpreset._io import read_text
from cgpreset.errors import ConfigError

#: The largest YAML file read (presets, watchlists, configs, faults files; templates too).
MAX_FILE_BYTES = 1 << 20
#: Values that aliases may add to a document (a config that reuses an exchange list adds a few).
MAX_ALIAS_VALUES = 100_000
#: Nesting levels of a document (a coin config has 4).
MAX_DEPTH = 64
_CAP = 1 << 62  # expanded sizes are counted up to here: a bomb's true size can have hundreds of digits

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


def _build(loader: Any, node: Any, source: str, depth: int = 1) -> Any:
    """The value of a plain document's node, built directly (no alias may be in it: see parse)."""
    make = _SIMPLE.get(node.tag)
    if make is not None and type(node) is yaml.ScalarNode:
        return make(loader, node)
    if depth > MAX_DEPTH:
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
    if node.tag == _MAP and type(node) is yaml.MappingNode:
        out: dict[Any, Any] = {}
        for k, v in node.value:
            key = _build(loader, k, source, depth + 1)
            if isinstance(key, (list, dict)):
                raise _NotSimpleError  # the full loader words the error
            if key in out:
                _unique_keys(loader, node, source)  # raises, naming both lines
            out[key] = _build(loader, v, source, depth + 1)
        return out
    if node.tag == _SEQ and type(node) is yaml.SequenceNode:
        return [_build(loader, v, source, depth + 1) for v in node.value]
    raise _NotSimpleError  # merge keys, timestamps, binary, other tags: the full loader


def _key(loader: Any, node: Any) -> Any:
    """A mapping key as the mapping will hold it (1, 1.0 and true are one key, as in a dict)."""
    if type(node) is not yaml.ScalarNode:
        return node  # a collection as a key: only ever equal to itself
    make = _SIMPLE.get(node.tag)
    return make(loader, node) if make is not None else (node.tag, node.value)


def _inspect(loader: Any, root: Any, source: str) -> None:
    """Refuse duplicate keys, aliases that expand the document too far or into itself, and
    nesting deeper than MAX_DEPTH, without expanding anything.

    One depth-first walk over the node graph (an alias is the same node object reached twice),
    each node visited once: per node the number of values it expands to and its height.
    """
    size: dict[int, int] = {}  # node -> values it expands to (capped: the count can be astronomic)
    height: dict[int, int] = {}
    open_: set[int] = set()  # nodes on the current path: reaching one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            size[key] = min(_CAP, 1 + sum(size[id(c)] for c in children))
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if height[key] > MAX_DEPTH:
                raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            continue
        if key in open_:
            raise ConfigError(f"{source}:{node.start_mark.line + 1}: an alias refers to the value it is in")
        if type(node) is yaml.MappingNode:
            _unique_keys(loader, node, source)
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children)
    extra = size[id(root)] - len(size)  # values the aliases add
    if extra > MAX_ALIAS_VALUES:
        raise ConfigError(f"{source}: aliases expand the document by more than {MAX_ALIAS_VALUES:,} values "
                          "(an alias bomb?); refused")


def _children(node: Any) -> list[Any]:
    if type(node) is yaml.MappingNode:
        return [n for pair in node.value for n in pair]
    if type(node) is yaml.SequenceNode:
        return list(node.value)
    return []


def _unique_keys(loader: Any, node: Any, source: str) -> None:
    seen: dict[Any, Any] = {}
    for k, _ in node.value:
        key = _key(loader, k)
        first = seen.setdefault(key, k)
        if first is not k:
            name = k.value if type(k) is yaml.ScalarNode else "?"
            raise ConfigError(f"{source}:{k.start_mark.line + 1}: duplicate key {name!r} "
                              f"(first at line {first.start_mark.line + 1})")


def parse(text: str, source: str) -> Any:
    """The document in `text`, as yaml.safe_load returns it (plain documents built directly).

    yaml.YAMLError for bad syntax (the caller words it); ConfigError `source:line: ...` for a
    duplicate key, an alias bomb or a self-referring alias, or nesting too deep.
    """
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # An alias needs an anchor (`&name`): a document without one is a tree, which _build
        # checks as it goes; the graph walk of _inspect is only paid where aliases can be.
        inspected = "&" in text
        if inspected:
            _inspect(loader, node, source)
        try:
            return _build(loader, node, source)
        except _NotSimpleError:
            if not inspected:
                _inspect(loader, node, source)
            return loader.construct_document(node)
    except (ValueError, OverflowError) as exc:  # e.g. an integer of 5000 digits: Python refuses it
        raise yaml.YAMLError(str(exc)) from None
    finally:
        loader.dispose()


def safe_load(text: str) -> Any:
    """`parse` for text cgpreset made itself (rendered templates); errors name `<text>`."""
    return parse(text, "<text>")


def load_text(text: str, source: str) -> Any:
    """`parse`, with bad syntax as ConfigError `source: line N: invalid YAML: problem`."""
    try:
        return parse(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc) or "invalid YAML"
        raise ConfigError(f"{source}:{where} invalid YAML: {problem}") from None


def read_yaml(path: Path, *, label: str = "", max_bytes: int = MAX_FILE_BYTES) -> Any:
    """A YAML file's document; ConfigError naming the file for a file too large (checked before
    reading), not UTF-8, bad YAML, a duplicate key, an alias bomb. `label` goes before the path
    in messages (`faults file `)."""
    return load_text(read_text(path, label=label, what="YAML file", max_bytes=max_bytes), f"{label}{path}")
