"""The CoinGlass v4 endpoints cgpreset uses, as data: one place to change when CoinGlass changes.

Facts come from the CoinGlass v4 docs and real answers; each entry's `spec` names where in the docs it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from cgpreset import layers
from cgpreset.layers import LayerSpec
from cgpreset.plans import Plan
from cgpreset.timeframes import MAX_LIMIT as MAX_LIMIT  # re-exported: the API's page size

Scope = Literal["coin", "pair", "global"]
FieldType = Literal["int", "number", "str", "bool", "list"]
DataShape = Literal["rows", "strings", "object", "rows_by_exchange"]

HISTORY_PARAMS = ("limit", "start_time", "end_time")


@dataclass(frozen=True)
class Field:
    """One field of a response row: canonical name, type, and other spellings seen in the wild."""

    name: str
    type: FieldType
    aliases: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True)
class Endpoint:
    """One GET endpoint: path, parameters, row shape, plan availability and cache period."""

    id: str
    path: str
    scope: Scope
    data: DataShape
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    min_plan: Plan = Plan.HOBBYIST
    interval_floor: bool = False  # the plan's interval floor applies to `interval`
    time_field: str | None = None  # set on time series; rows come ascending, last one forming
    time_unit: Literal["ms", "s"] = "ms"  # the unit the API sends the time field in (the decoder makes ms)
    cache_seconds: int | None = None
    spec: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def is_history(self) -> bool:
        return self.time_field is not None and "interval" in self.required

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


#: The CoinGlass exchange names (case-sensitive): what /api/futures/supported-exchanges
#: lists in the 2026 docs (29; the 20 keys of a real supported-exchange-pairs answer of 2025 among
#: them). `validate` checks configs against it when no discovery snapshot sits beside them.
KNOWN_EXCHANGES: tuple[str, ...] = (
    "OKX", "Binance", "HTX", "Bitmex", "Bitfinex", "Bybit", "Deribit", "Gate", "Kraken", "KuCoin",
    "CME", "Bitget", "dYdX", "CoinEx", "BingX", "Coinbase", "Gemini", "Crypto.com", "Hyperliquid",
    "Bitunix", "MEXC", "WhiteBIT", "Aster", "Lighter", "EdgeX", "Drift", "Paradex", "Extended",
    "ApeX Omni",
)


ENDPOINTS_STATIC: dict[str, Endpoint] = {
    e.id: e
    for e in (
        Endpoint(
            id="supported-coins",
            path="/api/futures/supported-coins",
            scope="global",
            data="strings",
            cache_seconds=60,
            spec="CoinGlass v4 docs, Futures - Trading Market - Supported Coins",
        ),
        Endpoint(
            id="supported-exchange-pairs",
            path="/api/futures/supported-exchange-pairs",
            scope="global",
            data="rows_by_exchange",
            optional=("exchange",),
            fields=(
                Field("instrument_id", "str"),
                Field("base_asset", "str"),
                Field("quote_asset", "str"),
                Field("settlement_currency", "str", required=False),
                Field("max_leverage", "number", required=False),
                Field("funding_interval", "number", required=False),
                Field("price_tick_size", "number", required=False),
            ),
            cache_seconds=60,
            spec="CoinGlass v4 docs, Futures - Trading Market - Supported Exchange and Pairs",
        ),
        Endpoint(
            id="supported-exchanges",
            path="/api/futures/supported-exchanges",
            scope="global",
            data="strings",
            spec="CoinGlass v4 docs, Futures - Trading Market",
        ),
        Endpoint(
            id="account-subscription",
            path="/api/user/account/subscription",
            scope="global",
            data="object",
            fields=(
                Field("level", "str"),
                Field("expire_time", "int", required=False),
                Field("expired", "bool", required=False),
            ),
            spec="CoinGlass v4 docs, Account",
        ),
        Endpoint(
            id="coins-markets",
            path="/api/futures/coins-markets",
            scope="global",
            data="rows",
            optional=("exchange_list", "per_page", "page"),
            fields=(
                Field("symbol", "str"),
                Field("open_interest_usd", "number"),
                Field("market_cap_usd", "number", required=False),
                Field("current_price", "number", required=False),
            ),
            min_plan=Plan.STANDARD,
            spec="CoinGlass v4 docs, Futures - Trading Market - Coins Markets",
        ),
        Endpoint(
            id="open-interest-exchange-list",
            path="/api/futures/open-interest/exchange-list",
            scope="coin",
            data="rows",
            required=("symbol",),
            fields=(
                Field("exchange", "str"),
                Field("symbol", "str", required=False),
                Field("open_interest_usd", "number"),
                Field("open_interest_quantity", "number", required=False),
            ),
            cache_seconds=10,
            spec="CoinGlass v4 docs, Futures - Open Interest",
        ),
    )
}

#: Endpoints of discovery and the account (the data layers' come from their definitions).
DISCOVERY: dict[str, Endpoint] = ENDPOINTS_STATIC


@lru_cache(maxsize=512)
def layer_endpoint(ls: LayerSpec) -> Endpoint:
    """A data layer's endpoint, from its definition: parameters by kind, fields with their types."""
    kind_params = tuple(p for p in ls.params if p not in ls.optional_params)
    required = (*kind_params, *(("interval",) if ls.windowed else ()), *ls.required_params)
    optional = (*(p for p in (HISTORY_PARAMS if ls.windowed else ()) if p not in ls.required_params),
                *(p for p in (*ls.optional_params, *ls.fixed_params) if p not in required))
    time = (Field(ls.time_field, "int"),) if ls.time_field else ()
    fields = time + tuple(Field(f.name, f.type, f.aliases, f.required) for f in ls.fields)
    return Endpoint(id=ls.endpoint_id, path=ls.path, scope="pair" if ls.kind == "pair" else
                    "global" if ls.macro else "coin", data="rows", required=required, optional=optional,
                    fields=fields, min_plan=ls.min_plan, interval_floor=ls.floor, time_field=ls.time_field,
                    time_unit=ls.time_unit,
                    cache_seconds=ls.cache_seconds, spec=ls.docs, notes=ls.notes)


class _Live(Mapping[str, Endpoint]):
    """A mapping computed afresh at each read (the catalogue in effect may change: a repo's own layers)."""

    def __init__(self, build: Callable[[], dict[str, Endpoint]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> Endpoint:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


def _by_id() -> dict[str, Endpoint]:
    """Every endpoint by id: discovery's, then each layer's of the catalogue in effect."""
    out = dict(DISCOVERY)
    for ls in layers.catalogue().values():
        out.setdefault(ls.endpoint_id, layer_endpoint(ls))
    return out


ENDPOINTS: Mapping[str, Endpoint] = _Live(_by_id)
BY_PATH: Mapping[str, Endpoint] = _Live(lambda: {e.path: e for e in _by_id().values()})


def endpoint(key: str) -> Endpoint:
    """Look an endpoint up by id or path."""
    found = ENDPOINTS.get(key) or BY_PATH.get(key)
    if found is None:
        raise KeyError(f"unknown endpoint {key!r}")
    return found
