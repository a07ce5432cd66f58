"""Value types of the committed YAML vocabulary: intervals, coin codes, instrument ids, exchange
names, strict numbers. Shared by the config, the preset and the layer blocks built from the
catalogue, each with the one error wording `validate` prints."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from cgpreset.plans import INTERVALS, LIQUIDATION_RANGES

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"]
LiqRange = Literal["1h", "4h", "12h", "24h"]
assert set(Interval.__args__) == set(INTERVALS)  # type: ignore[attr-defined]
assert set(LiqRange.__args__) == set(LIQUIDATION_RANGES)  # type: ignore[attr-defined]


COIN_PATTERN = r"^[A-Za-z0-9]+$"
_COIN_RE = re.compile(COIN_PATTERN)
TOKEN_PATTERN = r"^\S+$"
NAME_PATTERN = r"^\S(.*\S)?$"


def _coin_code(value: str) -> str:
    if not _COIN_RE.fullmatch(value):
        raise PydanticCustomError(
            "coin_code", "{value} is not a CoinGlass coin code (letters and digits only, e.g. BTC, 1000PEPE, kPEPE)",
            {"value": repr(value)},
        )
    return value


def _token(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise PydanticCustomError("token", "{value} must be non-empty, without whitespace", {"value": repr(value)})
    return value


def _name(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise PydanticCustomError("name", "{value} must be non-empty, without surrounding whitespace",
                                  {"value": repr(value)})
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


#: A CoinGlass coin code as CoinGlass spells it: letters and digits (BTC, 1000PEPE, kPEPE).
CoinCode = Annotated[str, AfterValidator(_coin_code), Field(json_schema_extra={"pattern": COIN_PATTERN})]
#: A venue's own instrument id (SOL-USDT-SWAP, 1000PEPEUSDT): non-empty, no whitespace.
InstrumentId = Annotated[str, AfterValidator(_token), Field(json_schema_extra={"pattern": TOKEN_PATTERN})]
#: A CoinGlass exchange name (OKX, Binance; "All" in a liquidation breakdown): non-blank, trimmed.
ExchangeName = Annotated[str, AfterValidator(_name), Field(json_schema_extra={"pattern": NAME_PATTERN})]
#: Whole numbers are whole numbers: `true` is not 1 and 30.0 is not 30.
StrictInt = Annotated[int, Field(strict=True)]
#: Finite numbers (no .inf / .nan); an int is fine, a boolean is not.
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
