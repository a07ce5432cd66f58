"""Helpers shared by the emulator tests (no tests here)."""

from __future__ import annotations

from typing import Any

import requests

#: A fixed "now" (2026-11-25 12:34:56.789 UTC, a Wednesday): not aligned to any bar.
NOW = 1795610096789


class MovableNow:
    """A `now_ms` callable that tests can move."""

    def __init__(self, value: int = NOW) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


def get(emu: Any, path: str, key: str | None = "", **params: Any) -> requests.Response:
    """GET with the emulator's key (key="" means emu.api_key, None means no header)."""
    headers = {} if key is None else {"CG-API-KEY": key or emu.api_key}
    return requests.get(emu.base_url + path, params=params, headers=headers, timeout=5)


def body(emu: Any, path: str, **params: Any) -> dict[str, Any]:
    """The JSON envelope of a GET with the right key."""
    return get(emu, path, **params).json()


def shape(value: Any) -> Any:
    """A value's type shape: "str" / "number" / "bool" / "null", lists and dicts recursively.

    Dicts keep their key order (as a list of pairs), so equal shapes mean equal keys, order and types.
    """
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if value is None:
        return "null"
    if isinstance(value, list):
        return ["list", shape(value[0])] if value else ["list"]
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    return type(value).__name__
