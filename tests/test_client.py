"""The CoinGlass client: headers, retries per failure class, rate limiting, plan detection, paging."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from cgpreset.api.client import CoinGlassClient
from cgpreset.errors import (
    ApiError,
    AuthError,
    ConfigError,
    DeadlineExceededError,
    ExitCode,
    InvalidParameterError,
    MalformedResponseError,
    NotFoundError,
    PlanError,
    ServerError,
    TransportError,
    UnsupportedPairError,
)
from cgpreset.plans import Plan
from cgpreset.settings import Settings
from tests.conftest import FakeClock, load_fixture

BASE = "https://api.test"
KEY = "sekrit-KEY-0123456789abcdef"
COINS = BASE + "/api/futures/supported-coins"
FUNDING = BASE + "/api/futures/funding-rate/history"


def make_client(clock: FakeClock, **overrides: object) -> CoinGlassClient:
    settings = Settings(**{"api_key": KEY, "base_url": BASE, "plan": "standard", "max_attempts": 4, **overrides})
    return CoinGlassClient(settings, sleep=clock.sleep, clock=clock)


def ok(data: object, **extra: object) -> dict:
    return {"json": {"code": "0", "data": data}, "status": 200, **extra}


@responses.activate
def test_sends_key_user_agent_and_accept_headers(clock: FakeClock) -> None:
    responses.get(
        COINS,
        match=[matchers.header_matcher({"CG-API-KEY": KEY, "accept": "application/json"})],
        **ok(["BTC"]),
    )
    with make_client(clock) as client:
        assert client.fetch("supported-coins") == ["BTC"]
    assert responses.calls[0].request.headers["User-Agent"].startswith("cgpreset/")


@responses.activate
def test_no_key_sends_no_key_header(clock: FakeClock) -> None:
    responses.get(COINS, json={"code": "401", "msg": "API key missing."})
    client = CoinGlassClient(Settings(base_url=BASE, plan="standard"), sleep=clock.sleep, clock=clock)
    with pytest.raises(AuthError):
        client.request("supported-coins")
    assert "CG-API-KEY" not in responses.calls[0].request.headers


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"code": "401", "msg": "API key missing."}, AuthError),
        ({"code": "400", "msg": "Invalid API key provided"}, AuthError),
        ({"code": "401", "msg": "Upgrade plan"}, PlanError),
        ({"code": "403", "msg": "The requested interval is not available for your current API plan.",
          "details": {"upgrade_required": "STANDARD"}}, PlanError),
        ({"code": "400", "msg": "Required String parameter 'symbol' is not present"}, InvalidParameterError),
        ({"code": "400", "msg": "The requested pair does not exist on the exchange. Please check"},
         UnsupportedPairError),
        ({"code": "404", "msg": "Endpoint not found. Please refer to the API documentation"}, NotFoundError),
    ],
)
@responses.activate
def test_refusals_are_not_retried(clock: FakeClock, body: dict, error: type[ApiError]) -> None:
    responses.get(COINS, json=body)
    with make_client(clock) as client, pytest.raises(error):
        client.request("supported-coins")
    assert len(responses.calls) == 1
    assert clock.sleeps == []
    assert client.stats.retries == 0


@responses.activate
def test_server_error_is_retried_with_backoff_then_succeeds(clock: FakeClock) -> None:
    responses.get(COINS, json={"code": "500", "msg": "Server Error"})
    responses.get(COINS, body="<html>502 Bad Gateway</html>", status=502)
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        resp = client.request("supported-coins")
    assert resp.data == ["BTC"] and resp.attempts == 3
    assert len(responses.calls) == 3
    assert client.stats.retries == 2
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] > 0


@responses.activate
def test_server_error_gives_up_after_max_attempts(clock: FakeClock) -> None:
    responses.get(COINS, json={"code": "500", "msg": "Server Error"})
    with make_client(clock) as client, pytest.raises(ServerError) as info:
        client.request("supported-coins")
    assert len(responses.calls) == 4
    assert info.value.exit_code == ExitCode.API


@pytest.mark.parametrize("exc", [requests.ConnectTimeout("ct"), requests.ReadTimeout("rt"),
                                 requests.ConnectionError("Connection reset by peer")])
@responses.activate
def test_transport_failures_are_retried(clock: FakeClock, exc: Exception) -> None:
    responses.get(COINS, body=exc)
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        assert client.request("supported-coins").attempts == 2
    assert client.stats.retries == 1


@responses.activate
def test_transport_failure_final_message(clock: FakeClock) -> None:
    responses.get(COINS, body=requests.ReadTimeout("read timed out"))
    with make_client(clock) as client, pytest.raises(TransportError) as info:
        client.request("supported-coins")
    assert str(info.value) == "transport: GET /api/futures/supported-coins: timed out after 30s"
    assert len(responses.calls) == 4


@pytest.mark.parametrize("form", ["body", "http429"])
@responses.activate
def test_rate_limit_both_forms_wait_for_the_window(clock: FakeClock, form: str) -> None:
    if form == "body":
        responses.get(COINS, json={"code": "400", "msg": "Too Many Requests"})
    else:
        responses.get(COINS, body="Too Many Requests", status=429)
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        assert client.request("supported-coins").attempts == 2
    assert client.stats.rate_limited == 1
    # No blind exponential backoff: the limiter holds the next request until the window frees up.
    assert sum(clock.sleeps) == pytest.approx(client.limiter.span)


@responses.activate
def test_rate_limit_honours_retry_after(clock: FakeClock) -> None:
    responses.get(COINS, body="slow down", status=429, headers={"Retry-After": "3"})
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        client.request("supported-coins")
    assert sum(clock.sleeps) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "raw",
    ['{"code":"0","data":[{"time":16759872', "<!DOCTYPE html><title>Just a moment...</title>", "[]"],
)
@responses.activate
def test_malformed_answers_are_not_retried(clock: FakeClock, raw: str) -> None:
    responses.get(COINS, body=raw, status=200)
    with make_client(clock) as client, pytest.raises(MalformedResponseError):
        client.request("supported-coins")
    cut_short = raw.startswith("{")  # a body cut on the way is tried once more, then it is an error
    assert len(responses.calls) == (2 if cut_short else 1)


@responses.activate
def test_wrong_shape_rows_are_malformed_naming_the_field(clock: FakeClock) -> None:
    responses.get(FUNDING, **ok([{"time": 1, "open": "0.01", "high": "x", "low": "0", "close": "0"}]))
    with make_client(clock) as client, pytest.raises(MalformedResponseError) as info:
        client.fetch("funding-rate-history", {"exchange": "OKX", "symbol": "SOL-USDT-SWAP", "interval": "1h"})
    assert "field 'high'" in str(info.value)


@responses.activate
def test_key_never_in_errors_logs_or_repr(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    responses.get(COINS, body=requests.ConnectionError(f"failed for header CG-API-KEY: {KEY}"))
    caplog.set_level(logging.DEBUG)
    with make_client(clock) as client, pytest.raises(TransportError) as info:
        client.request("supported-coins")
    assert KEY not in str(info.value)
    assert KEY not in repr(client) and "<set>" in repr(client)
    assert KEY not in caplog.text
    assert KEY not in repr(client.settings)


def test_missing_or_unknown_parameters_fail_before_any_request(clock: FakeClock) -> None:
    with make_client(clock) as client:
        with pytest.raises(ConfigError, match="missing required parameter"):
            client.request("funding-rate-history", {"exchange": "OKX", "interval": "1h"})
        with pytest.raises(ConfigError, match="unknown parameter"):
            client.request("open-interest-aggregated-history", {"coin": "SOL", "symbol": "SOL", "interval": "1h"})


@responses.activate
def test_typed_rows_accept_both_field_spellings(clock: FakeClock) -> None:
    url = BASE + "/api/futures/liquidation/exchange-list"
    responses.get(url, json=load_fixture("futures_liquidation_exchange-list.json"))
    responses.get(url, **ok([{"exchange": "All", "liquidation_usd": "3", "long_liquidation_usd": 1,
                              "short_liquidation_usd": "2"}]))
    with make_client(clock) as client:
        real = client.fetch("liquidation-exchange-list", {"range": "1h", "symbol": "BTC"})
        docs = client.fetch("liquidation-exchange-list", {"range": "1h", "symbol": "BTC"})
    assert real[0]["long_liquidation_usd"] == 50328.1749
    assert docs[0] == {"exchange": "All", "liquidation_usd": 3.0, "long_liquidation_usd": 1.0,
                       "short_liquidation_usd": 2.0}


@responses.activate
def test_mixed_string_and_number_ohlc_are_coerced(clock: FakeClock) -> None:
    rows = load_fixture("futures_open-interest_aggregated-history.rows-observed.json")
    rows[1]["time"] = 1773849600000
    responses.get(BASE + "/api/futures/open-interest/aggregated-history", **ok(rows))
    with make_client(clock) as client:
        got = client.fetch("open-interest-aggregated-history", {"symbol": "BTC", "interval": "4h"})
    assert got[1]["high"] == 45740423.0381 and got[1]["open"] == 45714242.0


@responses.activate
def test_plan_from_subscription(clock: FakeClock) -> None:
    responses.get(BASE + "/api/user/account/subscription",
                  json=load_fixture("user_account_subscription.docs-example.json"))
    client = CoinGlassClient(Settings(api_key=KEY, base_url=BASE), sleep=clock.sleep, clock=clock)
    assert client.plan() is Plan.PROFESSIONAL
    assert client.plan() is Plan.PROFESSIONAL
    assert len(responses.calls) == 1  # read once
    assert client.limiter.limit == 1200


@responses.activate
def test_plan_falls_back_to_rate_limit_header(clock: FakeClock) -> None:
    responses.get(BASE + "/api/user/account/subscription", json={"code": "401", "msg": "Upgrade plan"})
    responses.get(COINS, headers={"API-KEY-MAX-LIMIT": "80", "API-KEY-USE-LIMIT": "2"}, **ok(["BTC"]))
    client = CoinGlassClient(Settings(api_key=KEY, base_url=BASE), sleep=clock.sleep, clock=clock)
    assert client.plan() is Plan.STARTUP
    assert client.rate_max == 80 and client.rate_used == 2


@responses.activate
def test_rate_headers_resize_the_limiter(clock: FakeClock) -> None:
    responses.get(COINS, headers={"API-KEY-MAX-LIMIT": "30", "API-KEY-USE-LIMIT": "29"}, **ok([]))
    with make_client(clock) as client:
        client.request("supported-coins")
        assert client.limiter.limit == 30
        # Another process used 28 of the 30: our next two requests must wait for the window.
        assert client.limiter.in_window() == 29


@responses.activate
def test_deadline_stops_retries_instead_of_sleeping_past_it(clock: FakeClock) -> None:
    responses.get(COINS, json={"code": "500", "msg": "Server Error"})
    with make_client(clock, backoff_max=30) as client:
        client.deadline = client.clock + 1.2
        with pytest.raises(DeadlineExceededError) as info:
            client.request("supported-coins")
    assert info.value.exit_code == ExitCode.FINDINGS
    assert clock() <= client.deadline  # never slept past it
    assert "Server Error" in str(info.value)


@responses.activate
def test_deadline_is_not_waited_out_in_the_limiter(clock: FakeClock) -> None:
    responses.get(COINS, json={"code": "400", "msg": "Too Many Requests"})
    with make_client(clock) as client:
        client.deadline = client.clock + 10
        with pytest.raises(DeadlineExceededError, match=r"the next wait for the rate budget \(61 s\) would pass "
                                                        "the deadline") as info:
            client.request("supported-coins")
    assert info.value.early  # stopped before the deadline, and says why
    assert len(responses.calls) == 1 and sum(clock.sleeps) == 0  # the 61 s window is past the deadline


def test_deadline_in_the_past_sends_nothing(clock: FakeClock) -> None:
    with make_client(clock) as client:
        client.deadline = client.clock - 1
        with pytest.raises(DeadlineExceededError, match="before the request could start"):
            client.request("supported-coins")
    assert client.stats.requests == 0


@responses.activate
def test_deadline_shortens_the_socket_timeout(clock: FakeClock) -> None:
    responses.get(COINS, **ok(["BTC"]))
    with make_client(clock) as client:
        client.deadline = client.clock + 2.5
        client.request("supported-coins")
    assert responses.calls[0].request.req_kwargs["timeout"] == (2.5, 2.5)


@responses.activate
def test_non_json_error_page_message_does_not_repeat_the_status(clock: FakeClock) -> None:
    responses.get(COINS, body="<html>bad gateway</html>", status=502)
    with make_client(clock, max_attempts=1) as client, pytest.raises(ServerError) as info:
        client.request("supported-coins")
    assert str(info.value) == "server_error: GET /api/futures/supported-coins: an HTML error page (HTTP 502)"


def test_the_session_reads_proxy_and_ca_settings_once_and_never_netrc(monkeypatch: Any) -> None:
    from cgpreset.api.session import _session_for

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem")
    s = _session_for("https://open-api-v4.coinglass.com")
    assert s.proxies.get("https") == "http://proxy.example:3128" and s.verify == "/etc/ssl/custom.pem"
    assert s.trust_env is False  # no os.environ scan and no ~/.netrc lookup per request
    monkeypatch.setenv("NO_PROXY", "open-api-v4.coinglass.com")
    assert "https" not in _session_for("https://open-api-v4.coinglass.com").proxies
