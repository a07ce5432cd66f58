"""Envelope unwrapping and failure classification (spec §2.1–2.3), incl. every observed error body."""

from __future__ import annotations

import json

import pytest

from cgpreset.api.envelope import unwrap
from cgpreset.errors import (
    AuthError,
    ExitCode,
    InvalidParameterError,
    MalformedResponseError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    ServerError,
    UnsupportedPairError,
)
from tests.conftest import load_fixture

P = "/api/x"


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "0", "data": [1]},
        {"code": "0", "msg": "success", "data": [1]},
        {"code": 0, "data": [1]},  # one client saw a numeric code
    ],
)
def test_success_is_code_zero_with_or_without_msg(payload: dict) -> None:
    assert unwrap(path=P, http_status=200, body=body(payload)) == [1]


def test_success_with_empty_data_is_not_an_error() -> None:
    assert unwrap(path=P, http_status=200, body=body({"code": "0", "data": []})) == []


EXPECTED = {
    "Too Many Requests": RateLimitedError,
    "Server Error": ServerError,
    "Please upgrade to startup": PlanError,
    "Please upgrade to standard": PlanError,
    "Please upgrade to professional": PlanError,
    "Required String parameter 'range' is not present": InvalidParameterError,
    "Required String parameter 'symbol' is not present": InvalidParameterError,
    "Required String parameter 'exchange' is not present": InvalidParameterError,
    "Required String parameter 'exchange_list' is not present": InvalidParameterError,
    "API key missing.": AuthError,
    "Invalid API key provided": AuthError,
    "Upgrade plan": PlanError,
    "The requested interval is not available for your current API plan.": PlanError,
}


@pytest.mark.parametrize("entry", [e for e in load_fixture("_errors_observed.json") if "body" in e],
                         ids=lambda e: e["trigger"][:40])
def test_every_observed_error_body_is_classified(entry: dict) -> None:
    payload = entry["body"]
    msg = payload["msg"]
    code = payload["code"] if payload["code"].isdigit() else "403"
    with pytest.raises(Exception) as info:
        unwrap(path=P, http_status=200, body=body({"code": code, "msg": msg}))
    if msg.startswith("Endpoint not found"):
        assert isinstance(info.value, NotFoundError)
    elif msg.startswith("The requested pair does not exist"):
        assert isinstance(info.value, UnsupportedPairError)
    else:
        assert isinstance(info.value, EXPECTED[msg]), (msg, type(info.value))


def test_interval_floor_403_with_details_is_plan() -> None:
    payload = {"code": "403", "msg": "whatever", "details": {"upgrade_required": "STANDARD"}}
    with pytest.raises(PlanError):
        unwrap(path=P, http_status=200, body=body(payload))


def test_api_key_missing_is_auth_and_exit_3() -> None:
    with pytest.raises(AuthError) as info:
        unwrap(path=P, http_status=200, body=body({"code": "401", "msg": "API key missing."}))
    assert info.value.exit_code == ExitCode.API
    assert not info.value.retryable
    assert str(info.value) == "auth: GET /api/x: API key missing. (code 401)"


def test_http_429_and_body_400_too_many_are_both_rate_limits() -> None:
    with pytest.raises(RateLimitedError):
        unwrap(path=P, http_status=429, body=b"")
    with pytest.raises(RateLimitedError) as info:
        unwrap(path=P, http_status=429, body=b"rate limited", headers={"Retry-After": "7"})
    assert info.value.retry_after == 7.0
    with pytest.raises(RateLimitedError):
        unwrap(path=P, http_status=200, body=body({"code": "400", "msg": "Too Many Requests"}))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_http_5xx_html_is_server_error(status: int) -> None:
    with pytest.raises(ServerError) as info:
        unwrap(path=P, http_status=status, body=b"<html><body>Bad gateway</body></html>")
    assert info.value.retryable


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"code":"0","data":[{"time":1', "invalid JSON"),
        (b"<!DOCTYPE html><html>Attention Required! | Cloudflare</html>", "an HTML page"),
        (b"[1,2]", "envelope"),
        (b'{"data":[]}', "no `code`"),
        (b'{"code":"0"}', "no `data`"),
    ],
)
def test_malformed_answers(raw: bytes, fragment: str) -> None:
    with pytest.raises(MalformedResponseError) as info:
        unwrap(path=P, http_status=200, body=raw)
    assert fragment in str(info.value)
    assert not info.value.retryable


def test_unknown_path_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        unwrap(path=P, http_status=200, body=body({"code": "404", "msg": "Endpoint not found. Please refer"}))
    with pytest.raises(NotFoundError):
        unwrap(path=P, http_status=404, body=b"Not Found")
