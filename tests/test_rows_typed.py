"""The typed decoder of the run's hot path: both spellings, numbers as text or numbers, one-line errors."""

from __future__ import annotations

import pytest

from cgpreset.api.catalogue import endpoint
from cgpreset.api.envelope import unwrap_raw
from cgpreset.api.rows import decode_rows
from cgpreset.errors import MalformedResponseError

FUNDING = endpoint("funding-rate-history")
LIQ_LIST = endpoint("liquidation-exchange-list")


def test_numbers_as_strings_or_numbers_from_the_json_text_or_from_objects() -> None:
    body = b'{"code":"0","data":[{"time":"7200000","open":"0.01","high":0.02,"low":"0.005","close":1}]}'
    raw = unwrap_raw(path=FUNDING.path, http_status=200, body=body)
    for data in (raw, [{"time": 7200000, "open": "0.01", "high": 0.02, "low": "0.005", "close": 1}]):
        row = decode_rows(FUNDING, data).rows[0]
        assert (row.time, row.open, row.high, row.low, row.close) == (7200000, 0.01, 0.02, 0.005, 1.0)
        assert isinstance(row.time, int) and isinstance(row.close, float)


def test_both_spellings_of_a_field() -> None:
    docs = b'[{"exchange":"All","liquidation_usd":"3","long_liquidation_usd":1,"short_liquidation_usd":"2"}]'
    real = b'[{"exchange":"All","liquidation_usd":3,"longLiquidation_usd":"1","shortLiquidation_usd":2}]'
    for data in (docs, real):
        row = decode_rows(LIQ_LIST, data).rows[0]
        assert (row.long_liquidation_usd, row.short_liquidation_usd) == (1.0, 2.0)
    assert decode_rows(LIQ_LIST, docs).unknown == ()


def test_unknown_fields_are_named() -> None:
    data = b'[{"time":1,"open":1,"high":1,"low":1,"close":1,"volume":"5"}]'
    assert decode_rows(FUNDING, data).unknown == ("volume",)


@pytest.mark.parametrize(("data", "message"), [
    (b'[{"time":1,"open":1,"high":1,"low":1,"close":1},{"time":2,"open":1,"high":"x","low":1,"close":1}]',
     "row 1 field 'high': expected a number, got str"),
    (b'[{"time":1,"open":1,"high":1,"low":1}]', "row 0 has no field 'close'"),
    (b'[{"time":1,"open":"NaN","high":1,"low":1,"close":1}]', "row 0 field 'open': not a finite number"),
    (b'[{"time":1.5,"open":1,"high":1,"low":1,"close":1}]', "row 0 field 'time': expected a whole number"),
    (b'{"a":1}', "`data` is dict, expected a list"),
    (b'[3]', "row 0: expected an object, got int"),
    (b'[{"exchange":"All","liquidation_usd":3,"shortLiquidation_usd":2}]',
     "row 0 has no field 'long_liquidation_usd' or 'longLiquidation_usd'"),
])
def test_a_malformed_answer_names_row_and_field_in_one_line(data: bytes, message: str) -> None:
    ep = LIQ_LIST if b"exchange" in data else FUNDING
    with pytest.raises(MalformedResponseError) as info:
        decode_rows(ep, data)
    text = str(info.value)
    assert message in text and "\n" not in text and ep.path in text


def test_every_shape_of_data_goes_through_the_same_rule() -> None:
    from cgpreset.api.rows import parse_data
    from cgpreset.api.session import Response

    pairs, account = endpoint("supported-exchange-pairs"), endpoint("account-subscription")
    good = {"OKX": [{"instrument_id": "BTC-USDT-SWAP", "base_asset": "BTC", "quote_asset": "USDT",
                     "max_leverage": "100"}]}
    assert parse_data(pairs, good)["OKX"][0]["max_leverage"] == 100.0
    with pytest.raises(MalformedResponseError, match="OKX: row 0 field 'max_leverage': expected a number, got str"):
        parse_data(pairs, {"OKX": [{**good["OKX"][0], "max_leverage": " 100"}]})
    assert parse_data(account, {"level": "standard", "expire_time": "1.7e12"}) == {
        "level": "standard", "expire_time": 1_700_000_000_000}
    with pytest.raises(MalformedResponseError, match="`data` has no field 'level'"):
        parse_data(account, {"expired": False})
    with pytest.raises(MalformedResponseError, match="`data` field 'expire_time': expected a whole number"):
        parse_data(account, {"level": "standard", "expire_time": "1_700"})
    with pytest.raises(MalformedResponseError, match=r"`data`: Number out of range"):
        _ = Response("/x", {}, None, 0.0, 1, raw=b"[1e400]").data  # parsed on use: no crash


def test_a_time_in_seconds_becomes_milliseconds() -> None:
    from dataclasses import replace

    seconds = replace(FUNDING, time_unit="s")
    data = b'[{"time":"1764000000","open":1,"high":1,"low":1,"close":1}]'
    assert decode_rows(seconds, data).rows[0].time == 1_764_000_000_000
    assert decode_rows(FUNDING, data).rows[0].time == 1_764_000_000
