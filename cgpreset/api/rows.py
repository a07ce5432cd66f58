"""Typed rows: coerce numbers from strings or numbers, accept every known field spelling."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import msgspec

from cgpreset.api.catalogue import Endpoint, Field
from cgpreset.errors import MalformedResponseError


def _coerce(value: Any, f: Field, where: str) -> Any:
    if f.type == "number":
        if isinstance(value, bool):
            raise ValueError("boolean where a number was expected")
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValueError("not a finite number")
        return number
    if f.type == "int":
        if isinstance(value, bool):
            raise ValueError("boolean where an integer was expected")
        number = float(value)
        if not number.is_integer():
            raise ValueError("not a whole number")
        return int(number)
    if f.type == "str":
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError("not a boolean")
    if f.type == "list":
        if not isinstance(value, list):
            raise ValueError("not a list")
        return value
    raise ValueError(f"unknown field type {f.type}")  # pragma: no cover


def parse_row(endpoint: Endpoint, raw: Any, index: int = 0) -> dict[str, Any]:
    """One raw row as a dict of canonical field names; extra fields are kept as they came."""
    if not isinstance(raw, dict):
        raise MalformedResponseError(f"row {index} is {type(raw).__name__}, expected an object",
                                     path=endpoint.path)
    row: dict[str, Any] = {}
    known: set[str] = set()
    for f in endpoint.fields:
        names = (f.name, *f.aliases)
        known.update(names)
        present = next((n for n in names if n in raw and raw[n] is not None), None)
        if present is None:
            if f.required:
                raise MalformedResponseError(
                    f"row {index} has no field {f.name!r} (fields: {', '.join(sorted(map(str, raw)))})",
                    path=endpoint.path,
                )
            continue
        try:
            row[f.name] = _coerce(raw[present], f, f"row {index}")
        except (TypeError, ValueError) as exc:
            raise MalformedResponseError(
                f"row {index} field {present!r}: {exc} ({raw[present]!r})", path=endpoint.path
            ) from None
    for name, value in raw.items():
        if name not in known:
            row[name] = value
    return row


def parse_rows(endpoint: Endpoint, data: Any) -> list[dict[str, Any]]:
    """Rows of a list endpoint, typed; MalformedResponseError names the row and field."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise MalformedResponseError(f"`data` is {type(data).__name__}, expected a list", path=endpoint.path)
    return [parse_row(endpoint, raw, i) for i, raw in enumerate(data)]


def parse_strings(endpoint: Endpoint, data: Any) -> list[str]:
    """A `data` that must be a list of strings (supported-coins, supported-exchanges)."""
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise MalformedResponseError("`data` should be a list of strings", path=endpoint.path)
    return list(data)


def parse_rows_by_exchange(endpoint: Endpoint, data: Any) -> dict[str, list[dict[str, Any]]]:
    """supported-exchange-pairs: exchange name -> typed instrument rows."""
    if not isinstance(data, dict):
        raise MalformedResponseError(f"`data` is {type(data).__name__}, expected an object keyed by exchange",
                                     path=endpoint.path)
    return {str(ex): parse_rows(endpoint, rows) for ex, rows in data.items()}


def parse_object(endpoint: Endpoint, data: Any) -> dict[str, Any]:
    """A `data` that is one object (account/subscription)."""
    return parse_row(endpoint, data)


def parse_data(endpoint: Endpoint, data: Any) -> Any:
    """Dispatch on the endpoint's declared data shape."""
    if endpoint.data == "rows":
        return parse_rows(endpoint, data)
    if endpoint.data == "strings":
        return parse_strings(endpoint, data)
    if endpoint.data == "rows_by_exchange":
        return parse_rows_by_exchange(endpoint, data)
    return parse_object(endpoint, data)


# -- the typed decoder of the run's hot path (msgspec: decoding and validation in C) -----------

_FINITE = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_TYPES: dict[str, Any] = {"number": _FINITE, "int": int, "str": str, "bool": bool, "list": list[Any]}
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?:\[(?P<row>\d+)\])?(?:\.(?P<field>[^`\[]+))?[^`]*`)?$")


@dataclass(frozen=True)
class RowType:
    """An endpoint's rows as a msgspec Struct: one attribute per canonical field (aliases folded in)."""

    endpoint: Endpoint
    struct: type[msgspec.Struct]
    rows: msgspec.json.Decoder[list[Any]]
    #: canonical field -> its alias attributes, for fields sent under more than one name
    aliased: tuple[tuple[str, tuple[str, ...], bool], ...]
    known: frozenset[str]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.endpoint.fields)


@cache
def row_type(endpoint: Endpoint) -> RowType:
    """The typed row of a `rows` endpoint (cached: one Struct class per endpoint)."""
    spec: list[tuple[str, Any, Any]] = []
    aliased: list[tuple[str, tuple[str, ...], bool]] = []
    for f in endpoint.fields:
        kind = _TYPES[f.type]
        if not f.aliases:
            spec.append((f.name, kind, msgspec.NODEFAULT) if f.required else (f.name, kind | None, None))
            continue
        attrs = tuple(f"{f.name}__{i}" for i in range(len(f.aliases)))
        spec.append((f.name, kind | None, None))
        spec += [(a, kind | None, msgspec.field(default=None, name=alias))
                 for a, alias in zip(attrs, f.aliases, strict=True)]
        aliased.append((f.name, attrs, f.required))
    struct = msgspec.defstruct(f"Row_{endpoint.id.replace('-', '_')}", spec, kw_only=True)
    known = frozenset(n for f in endpoint.fields for n in (f.name, *f.aliases))
    decoder: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[struct], strict=False)  # type: ignore[valid-type]
    return RowType(endpoint, struct, decoder, tuple(aliased), known)


_WORDS = (("Expected array", "expected a list"), ("Expected object", "expected an object"),
          ("Expected float", "expected a number"), ("Expected int", "expected a whole number"),
          ("Expected str", "expected a string"), ("Expected bool", "expected a boolean"),
          ("got object", "got dict"), ("got array", "got list"), ("got null", "got None"))
_RAW_ROWS = msgspec.json.Decoder(list[msgspec.Raw])
_OBJECT = msgspec.json.Decoder(dict[str, Any])


def _malformed(endpoint: Endpoint, exc: msgspec.ValidationError | msgspec.DecodeError) -> MalformedResponseError:
    """msgspec's "Expected `float`, got `str` - at `$[3].open`" as our one line naming row and field."""
    m = _AT.match(str(exc))
    what = (m.group("what") if m else str(exc)).replace("`", "")
    if "float >=" in what or "float <=" in what:
        what = "not a finite number"
    for a, b in _WORDS:
        what = what.replace(a, b)
    if m and m.group("row") is not None and what.startswith("Object missing required field"):
        name = what.rsplit(" ", 1)[-1]
        return MalformedResponseError(f"row {m.group('row')} has no field {name!r}", path=endpoint.path)
    if m and m.group("row") is not None and m.group("field"):
        return MalformedResponseError(f"row {m.group('row')} field {m.group('field')!r}: {what}", path=endpoint.path)
    if m and m.group("row") is not None:
        return MalformedResponseError(f"row {m.group('row')}: {what}", path=endpoint.path)
    if what.startswith("expected a list, got "):
        return MalformedResponseError(f"`data` is {what.rsplit(' ', 1)[-1]}, expected a list", path=endpoint.path)
    return MalformedResponseError(f"`data`: {what}", path=endpoint.path)


@dataclass(frozen=True)
class Decoded:
    """An answer's rows as typed Structs, and the field names the catalogue does not know."""

    rows: list[Any]
    unknown: tuple[str, ...] = ()


def decode_rows(endpoint: Endpoint, data: Any) -> Decoded:
    """Rows of a `rows` endpoint, typed and validated in C; `data` is the JSON text of the
    envelope's `data` (bytes) or already-parsed objects. Numbers may come as strings or numbers,
    every known spelling of a field is accepted; a malformed answer is a MalformedResponseError
    naming the row and field. Unknown fields (field drift) are looked for on the first and last row.
    """
    rt = row_type(endpoint)
    try:
        if isinstance(data, bytes):
            rows = rt.rows.decode(data) if data.strip() not in (b"null", b"") else []
            ends = _RAW_ROWS.decode(data) if rows else []
            samples = [_OBJECT.decode(ends[0]), _OBJECT.decode(ends[-1])] if ends else []
        else:
            if data is None:
                return Decoded([])
            rows = msgspec.convert(data, list[rt.struct], strict=False)  # type: ignore[name-defined]
            samples = [data[0], data[-1]] if rows and isinstance(data[0], dict) else []
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _malformed(endpoint, exc) from None
    for name, attrs, required in rt.aliased:
        for i, row in enumerate(rows):
            if getattr(row, name) is None:
                value = next((v for a in attrs if (v := getattr(row, a)) is not None), None)
                if value is None and required:
                    spellings = " or ".join(repr(n) for n in (name, *endpoint_aliases(endpoint, name)))
                    raise MalformedResponseError(f"row {i} has no field {spellings}", path=endpoint.path)
                setattr(row, name, value)
    unknown = sorted({k for s in samples for k in s if k not in rt.known})
    return Decoded(rows, tuple(unknown))


def endpoint_aliases(endpoint: Endpoint, name: str) -> tuple[str, ...]:
    return next((f.aliases for f in endpoint.fields if f.name == name), ())
