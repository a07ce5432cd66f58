"""Typed rows: the one decoder of every answer cgpreset reads (msgspec: decoding and validation in C).

The run's page builder, `health`'s shots, `doctor --probe` and `CoinGlassClient.fetch` all read
an answer here, so they accept and refuse the same rows with the same words and read the same
values. The rows' shape comes from the endpoint's definition: its fields, their types and other
spellings, its time field and that time's unit.

The value rule (msgspec's `strict=False`, pinned by tests/test_decoder.py for every path):

- `number`: a JSON number, or a JSON string whose whole text is a JSON number
  (`-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?`): "1", "-0.5", "1e3", "1E-3". Nothing else
  is a number: not " 1" or "1 " (spaces), "1_000" or "1,000" (separators), "+1", ".5", "5.",
  "007", "0x10", "" or a boolean. The value must be finite: "nan", "inf", "Infinity" and "1e400"
  (beyond a float) are refused.
- `int`: as `number`, with a whole value: "1.0" and "1e3" are 1 and 1000; "1.5" is refused.
- `str`: a JSON string. `list`: a JSON array, its items as they came. `bool`: true or false, the
  text "true", "false", "1" or "0" (any case), or the number 0 or 1.
- null is no value: an optional field may be absent or null, a required one may be neither.
- A time field in seconds (`time: {unit: s}` in the layer's definition) becomes milliseconds
  here, once: the window and grid checks, the checks and the store see milliseconds only.

A refusal is one MalformedResponseError naming the row and the field, e.g.
`row 3 field 'open': expected a number, got str`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import msgspec

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.session import Response
from cgpreset.errors import MalformedResponseError

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
    """The typed row of an endpoint (cached: one Struct class per endpoint definition)."""
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
          (" | null", ""), ("got object", "got dict"), ("got array", "got list"), ("got null", "got None"))
_RAW_ROWS = msgspec.json.Decoder(list[msgspec.Raw])
_OBJECT = msgspec.json.Decoder(dict[str, Any])


def _malformed(endpoint: Endpoint, exc: msgspec.ValidationError | msgspec.DecodeError) -> MalformedResponseError:
    """msgspec's "Expected `float`, got `str` - at `$[3].open`" as our one line naming row and field
    (`data` for an endpoint whose `data` is one object)."""
    m = _AT.match(str(exc))
    what = (m.group("what") if m else str(exc)).replace("`", "")
    if "float >=" in what or "float <=" in what or what == "Number out of range":
        what = "not a finite number"
    for a, b in _WORDS:
        what = what.replace(a, b)
    row = None if m is None or m.group("row") is None else f"row {m.group('row')}"
    at = row or ("`data`" if m is not None and (m.group("field") or what.startswith("Object missing")) else None)
    if at is not None and what.startswith("Object missing required field"):
        return MalformedResponseError(f"{at} has no field {what.rsplit(' ', 1)[-1]!r}", path=endpoint.path)
    if at is not None and m is not None and m.group("field"):
        return MalformedResponseError(f"{at} field {m.group('field')!r}: {what}", path=endpoint.path)
    if row is not None:
        return MalformedResponseError(f"{row}: {what}", path=endpoint.path)
    if what.startswith(("expected a list, got ", "expected an object, got ")):
        expected, got = what.removeprefix("expected ").split(", got ")
        return MalformedResponseError(f"`data` is {got}, expected {expected}", path=endpoint.path)
    return MalformedResponseError(f"`data`: {what}", path=endpoint.path)


@dataclass(frozen=True)
class Decoded:
    """An answer's rows as typed Structs, and the field names the catalogue does not know."""

    rows: list[Any]
    unknown: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def as_dict(self, row: Any) -> dict[str, Any]:
        """One row as a dict of its canonical fields; a field without a value is left out."""
        return {f: v for f in self.fields if (v := getattr(row, f)) is not None}

    def dicts(self) -> list[dict[str, Any]]:
        return [self.as_dict(r) for r in self.rows]


def decode_rows(endpoint: Endpoint, data: Any) -> Decoded:
    """Rows of a `rows` endpoint, typed and validated in C (see the module's value rule); `data`
    is the JSON text of the envelope's `data` (bytes) or already-parsed objects. Every known
    spelling of a field is accepted; a time in seconds becomes milliseconds; a malformed answer is
    a MalformedResponseError naming the row and field. Unknown fields (field drift) are looked for
    on the first and last row.
    """
    rt = row_type(endpoint)
    try:
        if isinstance(data, bytes):
            rows = rt.rows.decode(data) if data.strip() not in (b"null", b"") else []
            ends = _RAW_ROWS.decode(data) if rows else []
            samples = [_OBJECT.decode(ends[0]), _OBJECT.decode(ends[-1])] if ends else []
        else:
            if data is None:
                return Decoded([], (), rt.fields)
            rows = msgspec.convert(data, list[rt.struct], strict=False)  # type: ignore[name-defined]
            samples = [data[0], data[-1]] if rows and isinstance(data[0], dict) else []
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _malformed(endpoint, exc) from None
    _fold(endpoint, rt, rows)
    if endpoint.time_unit == "s" and endpoint.time_field:
        tf = endpoint.time_field
        for row in rows:
            setattr(row, tf, getattr(row, tf) * 1000)
    unknown = sorted({k for s in samples for k in s if k not in rt.known})
    return Decoded(rows, tuple(unknown), rt.fields)


def _fold(endpoint: Endpoint, rt: RowType, rows: list[Any], at: str | None = None) -> None:
    """Each aliased field takes the first spelling that came with a value; a required one without
    any is refused, naming every spelling."""
    for name, attrs, required in rt.aliased:
        for i, row in enumerate(rows):
            if getattr(row, name) is None:
                value = next((v for a in attrs if (v := getattr(row, a)) is not None), None)
                if value is None and required:
                    spellings = " or ".join(repr(n) for n in (name, *endpoint_aliases(endpoint, name)))
                    raise MalformedResponseError(f"{at or f'row {i}'} has no field {spellings}", path=endpoint.path)
                setattr(row, name, value)


def decode_response(endpoint: Endpoint, response: Response) -> Decoded:
    """An answer's rows: from the JSON text as it came (the real client), or its parsed `data`."""
    return decode_rows(endpoint, response.raw if response.raw is not None else response.data)


def decode_object(endpoint: Endpoint, data: Any) -> dict[str, Any]:
    """A `data` that is one object (account/subscription), by the same rule as rows."""
    rt = row_type(endpoint)
    try:
        row = msgspec.convert(data, rt.struct, strict=False)
    except msgspec.ValidationError as exc:
        raise _malformed(endpoint, exc) from None
    _fold(endpoint, rt, [row], "`data`")
    return Decoded([row], (), rt.fields).as_dict(row)


def parse_strings(endpoint: Endpoint, data: Any) -> list[str]:
    """A `data` that must be a list of strings (supported-coins, supported-exchanges)."""
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise MalformedResponseError("`data` should be a list of strings", path=endpoint.path)
    return list(data)


def parse_rows_by_exchange(endpoint: Endpoint, data: Any) -> dict[str, list[dict[str, Any]]]:
    """supported-exchange-pairs: exchange name -> typed instrument rows (a refusal names the exchange)."""
    if not isinstance(data, dict):
        raise MalformedResponseError(f"`data` is {type(data).__name__}, expected an object keyed by exchange",
                                     path=endpoint.path)
    out: dict[str, list[dict[str, Any]]] = {}
    for ex, rows in data.items():
        try:
            out[str(ex)] = decode_rows(endpoint, rows).dicts()
        except MalformedResponseError as exc:
            raise MalformedResponseError(f"{ex}: {exc.message}", path=endpoint.path) from None
    return out


def parse_data(endpoint: Endpoint, data: Any) -> Any:
    """`data` by the endpoint's declared shape: rows as dicts of canonical fields (CoinGlassClient.fetch)."""
    if endpoint.data == "rows":
        return decode_rows(endpoint, data).dicts()
    if endpoint.data == "strings":
        return parse_strings(endpoint, data)
    if endpoint.data == "rows_by_exchange":
        return parse_rows_by_exchange(endpoint, data)
    return decode_object(endpoint, data)


def number(value: Any) -> float:
    """One value by the `number` rule of every row (for code that judges values one by one, like
    discovery's ranking); ValueError says what is wrong with it."""
    try:
        return msgspec.convert(value, _FINITE, strict=False)
    except msgspec.ValidationError as exc:
        what = str(exc)
        raise ValueError("is not a finite number" if "float" in what and ("<=" in what or ">=" in what)
                         or what == "Number out of range" else "is not a number") from None


def number_or_none(value: Any) -> float | None:
    """A nested value (an ETF ticker's flow: inside a `list` field, not typed by the decoder) by
    the `number` rule; None if it is none or not a number."""
    try:
        return None if value is None else number(value)
    except ValueError:
        return None


def endpoint_aliases(endpoint: Endpoint, name: str) -> tuple[str, ...]:
    return next((f.aliases for f in endpoint.fields if f.name == name), ())
