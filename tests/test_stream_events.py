"""WebSocket frame parsing (spec §9): both liquidation variants, trades, pong, errors, junk."""

from __future__ import annotations

import json

import pytest

from cgpreset.stream.events import (
    ErrorFrame,
    Events,
    LiquidationEvent,
    Pong,
    TradeEvent,
    UnknownFrame,
    guess_base_asset,
    parse_frame,
    time_problem,
)
from tests.conftest import load_fixture

SAMPLE = load_fixture("ws_liquidation-orders.docs-example.json")
EXPECTED = {
    "exchange": "Binance",
    "symbol": "BTCUSDT",
    "base_asset": "BTC",
    "price": 56738.0,
    "side": "short",
    "side_raw": 2,
    "volume_usd": 3858.184,
    "time": 1725416318379,
}


@pytest.mark.parametrize(
    ("variant", "channel"),
    [
        ("variant_A_liquidationOrders_camelCase", "liquidationOrders"),
        ("variant_B_liquidation_orders_snake_case", "liquidation_orders"),
    ],
)
def test_both_documented_variants_parse_to_one_event_type(variant: str, channel: str) -> None:
    frame = parse_frame(json.dumps(SAMPLE[variant]["push"]))
    assert isinstance(frame, Events)
    assert frame.channel == channel and frame.skipped == []
    (event,) = frame.events
    assert isinstance(event, LiquidationEvent)
    assert event.as_dict() == {"type": "liquidation", "channel": channel, **EXPECTED}


def test_the_two_variants_share_a_natural_key() -> None:
    a = parse_frame(json.dumps(SAMPLE["variant_A_liquidationOrders_camelCase"]["push"]))
    b = parse_frame(json.dumps(SAMPLE["variant_B_liquidation_orders_snake_case"]["push"]))
    assert isinstance(a, Events) and isinstance(b, Events)
    assert a.events[0].key == b.events[0].key


def test_multi_event_data_array_keeps_order_and_skips_bad_items() -> None:
    good = SAMPLE["variant_B_liquidation_orders_snake_case"]["push"]["data"][0]
    data = [
        good,
        {**good, "side": 1, "time": good["time"] + 1, "base_asset": "ETH"},
        {**good, "price": "not a number"},
        {"exchange": "OKX"},
        "junk",
        {**good, "side": 7},
    ]
    frame = parse_frame(json.dumps({"channel": "liquidation_orders", "data": data}))
    assert isinstance(frame, Events)
    assert [(e.base_asset, e.side) for e in frame.events] == [("BTC", "short"), ("ETH", "long")]
    assert len(frame.skipped) == 4
    assert all(reason.startswith("liquidation_orders data[") for reason in frame.skipped)


def test_numbers_as_strings_and_a_missing_base_asset_are_tolerated() -> None:
    item = {"exName": "OKX", "price": "150.5", "side": "1", "symbol": "SOL-USDT-SWAP",
            "time": "1725416318379", "volUsd": "2000"}
    frame = parse_frame(json.dumps({"channel": "liquidationOrders", "data": [item]}))
    assert isinstance(frame, Events)
    (event,) = frame.events
    assert (event.base_asset, event.price, event.side, event.side_raw, event.time) == (
        "SOL", 150.5, "long", "1", 1725416318379)


def test_trade_channel_parses_with_buy_sell_sides_and_the_pair_from_the_channel() -> None:
    channel = "futures_trades@OKX_SOL-USDT-SWAP@10000"
    frame = parse_frame(json.dumps({"channel": channel, "data": [
        {"price": 150.0, "side": 2, "time": 1725416318379, "volUsd": 12000.0},
        {"exchange": "OKX", "symbol": "SOL-USDT-SWAP", "price": 149.0, "side": 1,
         "time": 1725416318380, "volume_usd": 15000.0},
    ]}))
    assert isinstance(frame, Events) and frame.skipped == []
    first, second = frame.events
    assert isinstance(first, TradeEvent)
    assert (first.exchange, first.symbol, first.base_asset, first.side) == ("OKX", "SOL-USDT-SWAP", "SOL", "buy")
    assert second.side == "sell" and second.as_dict()["type"] == "trade"


@pytest.mark.parametrize("text", ["pong", "PONG", " pong\n", b"pong"])
def test_pong_is_recognised(text: str | bytes) -> None:
    assert isinstance(parse_frame(text), Pong)


@pytest.mark.parametrize(
    ("body", "auth", "plan"),
    [
        ({"code": "401", "msg": "API key missing."}, True, False),
        ({"code": "400", "msg": "Invalid API key provided"}, True, False),
        ({"code": 403, "msg": "Upgrade your plan to use this channel"}, True, True),
        ({"code": "400", "msg": "unknown channel"}, False, False),
    ],
)
def test_error_frames_are_classified(body: dict[str, object], auth: bool, plan: bool) -> None:
    frame = parse_frame(json.dumps(body))
    assert isinstance(frame, ErrorFrame)
    assert frame.code == str(body["code"])
    assert (frame.is_auth, frame.is_plan) == (auth, plan)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"channel": "liquidation_orders", "data": [', "not JSON"),
        ("hello", "not JSON"),
        ("[1, 2]", "JSON but not an object"),
        ('{"foo": 1}', "no channel"),
        ('{"code": "0", "msg": "success"}', "acknowledgement"),
        ('{"channel": "futures_ticker@Binance_BTCUSDT", "data": []}', "unsupported channel"),
        ('{"channel": "liquidation_orders", "data": "oops"}', "data is not an array"),
        (b"\xff\xfe", "binary frame that is not UTF-8"),
    ],
)
def test_unknown_and_malformed_frames_never_raise(text: str | bytes, reason: str) -> None:
    frame = parse_frame(text)
    assert isinstance(frame, UnknownFrame)
    assert reason in frame.reason


def test_single_object_data_is_accepted() -> None:
    item = SAMPLE["variant_B_liquidation_orders_snake_case"]["push"]["data"][0]
    frame = parse_frame(json.dumps({"channel": "liquidation_orders", "data": item}))
    assert isinstance(frame, Events) and len(frame.events) == 1


@pytest.mark.parametrize(
    ("symbol", "base"),
    [("BTCUSDT", "BTC"), ("SOL-USDT-SWAP", "SOL"), ("1000PEPEUSDT", "1000PEPE"), ("ETH_USD", "ETH"),
     ("XBTUSD", "XBT"), ("BTCUSDTPERP", "BTC"), ("USDT", "USDT")],
)
def test_guess_base_asset(symbol: str, base: str) -> None:
    assert guess_base_asset(symbol) == base


# -- event times: epoch milliseconds, as in REST --------------------------------------------------

NOW_MS = 1_764_000_000_000  # 2025-11-24


@pytest.mark.parametrize(
    ("time_ms", "problem"),
    [
        (NOW_MS, None),
        (NOW_MS + 5 * 60_000, None),  # a clock a little ahead of ours
        (1_420_070_400_000, None),  # 2015-01-01
        (NOW_MS // 1000, "time in seconds, not milliseconds"),
        (1_400_000_000_000, "time before 2015"),
        (NOW_MS + 5 * 60_000 + 1, "time more than 5 min ahead of our clock"),
        (NOW_MS + 3 * 365 * 86_400_000, "time more than 5 min ahead of our clock"),  # years ahead
        (NOW_MS * 1000, "time in micro- or nanoseconds, not milliseconds"),
    ],
)
def test_time_problem(time_ms: int, problem: str | None) -> None:
    assert time_problem(time_ms, NOW_MS) == problem


def test_events_with_implausible_times_are_refused_with_their_reason() -> None:
    good, secs, ahead = ({**SAMPLE["variant_B_liquidation_orders_snake_case"]["push"]["data"][0], "time": t}
                         for t in (NOW_MS - 1000, NOW_MS // 1000, NOW_MS + 2 * 365 * 86_400_000))
    text = json.dumps({"channel": "liquidation_orders", "data": [good, secs, ahead]})
    frame = parse_frame(text, now_ms=NOW_MS)
    assert isinstance(frame, Events)
    assert [e.time for e in frame.events] == [NOW_MS - 1000]
    assert frame.rejected == [
        ("time in seconds, not milliseconds", f"liquidation_orders data[1]: BTCUSDT at {NOW_MS // 1000}"),
        ("time more than 5 min ahead of our clock",
         f"liquidation_orders data[2]: BTCUSDT at {NOW_MS + 2 * 365 * 86_400_000}"),
    ]
    unchecked = parse_frame(text)  # without a clock: parsing only
    assert isinstance(unchecked, Events) and len(unchecked.events) == 3 and unchecked.rejected == []
