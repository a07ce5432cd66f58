"""Typed rows: coerce numbers from strings or numbers, accept every known field spelling."""

from __future__ import annotations

import math
from typing import Any

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
