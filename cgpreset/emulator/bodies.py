"""What the emulated API answers when something is wrong, and its success envelope.

Error bodies byte for byte as observed where they were observed (tests/fixtures/_errors_observed.json),
all over HTTP 200; shared by the hand-written answers (api.py), the answers built from a layer's
definition (layered.py), the HTTP side (rest.py) and the WebSocket (ws.py).
"""

from __future__ import annotations

from typing import Any

from cgpreset.plans import Plan

Body = dict[str, Any]

#: `limit` above this is refused with code 400 (a real probe saw that above 4500). Up to it,
#: `limit` is honoured (a real Hobbyist probe got 1080 rows for limit=2000), although the docs say
#: "max 1000": cgpreset's client stays at 1000 (catalogue.MAX_LIMIT). Without `limit`: 1000 rows.
LIMIT_HARD_MAX = 4500
DEFAULT_LIMIT = 1000

# Error bodies, byte-for-byte as observed where they were observed (tests/fixtures/_errors_observed.json).
API_KEY_MISSING: Body = {"code": "401", "msg": "API key missing."}
API_KEY_INVALID: Body = {"code": "400", "msg": "Invalid API key provided"}
UPGRADE_PLAN: Body = {"code": "401", "msg": "Upgrade plan"}
TOO_MANY_REQUESTS: Body = {"code": "400", "msg": "Too Many Requests"}
SERVER_ERROR: Body = {"code": "500", "msg": "Server Error"}
ENDPOINT_NOT_FOUND: Body = {
    "code": "404",
    "msg": "Endpoint not found. Please refer to the API documentation: https://docs.coinglass.com",
}
PAIR_NOT_FOUND: Body = {
    "code": "400",
    "msg": "The requested pair does not exist on the exchange. "
    "Please check the documentation to view supported pairs.",
}
INTERVAL_NOT_IN_PLAN_MSG = "The requested interval is not available for your current API plan."


def missing_param(name: str) -> Body:
    """The Spring-style message CoinGlass sends for an absent required parameter."""
    return {"code": "400", "msg": f"Required String parameter '{name}' is not present"}


def bad_param(name: str, value: str, expected: str) -> Body:
    """A parameter that is present but not acceptable (wording not observed; code 400 is)."""
    return {"code": "400", "msg": f"Invalid parameter '{name}': {value!r}. Expected {expected}."}


def interval_not_in_plan(interval: str, needed: Plan = Plan.STANDARD) -> Body:
    """Code 403 with `details.upgrade_required`, as recorded: "STANDARD", the first plan with no
    interval floor (a Hobbyist probe at 1h was told STANDARD although Startup allows 1h)."""
    return {
        "code": "403",
        "msg": INTERVAL_NOT_IN_PLAN_MSG,
        "details": {"upgrade_required": needed.name},
    }


def ok(data: Any, *, with_msg: bool = False) -> Body:
    """A success envelope; real ones mostly omit `msg`."""
    return {"code": "0", "msg": "success", "data": data} if with_msg else {"code": "0", "data": data}
