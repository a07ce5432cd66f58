"""The CoinGlass v4 endpoints cgpreset uses, as data: one place to change when CoinGlass changes.

Facts come from ../shared/coinglass-v4.md (§6); each entry names its spec section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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


#: The CoinGlass exchange names (case-sensitive, spec §5): what /api/futures/supported-exchanges
#: lists in the 2026 docs (29; the 20 keys of a real supported-exchange-pairs answer of 2025 among
#: them). `validate` checks configs against it when no discovery snapshot sits beside them.
KNOWN_EXCHANGES: tuple[str, ...] = (
    "OKX", "Binance", "HTX", "Bitmex", "Bitfinex", "Bybit", "Deribit", "Gate", "Kraken", "KuCoin",
    "CME", "Bitget", "dYdX", "CoinEx", "BingX", "Coinbase", "Gemini", "Crypto.com", "Hyperliquid",
    "Bitunix", "MEXC", "WhiteBIT", "Aster", "Lighter", "EdgeX", "Drift", "Paradex", "Extended",
    "ApeX Omni",
)

_OHLC = (
    Field("time", "int"),
    Field("open", "number"),
    Field("high", "number"),
    Field("low", "number"),
    Field("close", "number"),
)

ENDPOINTS: dict[str, Endpoint] = {
    e.id: e
    for e in (
        Endpoint(
            id="supported-coins",
            path="/api/futures/supported-coins",
            scope="global",
            data="strings",
            cache_seconds=60,
            spec="§6.1",
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
            spec="§6.2",
        ),
        Endpoint(
            id="supported-exchanges",
            path="/api/futures/supported-exchanges",
            scope="global",
            data="strings",
            spec="§6.2",
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
            spec="§1",
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
            spec="§6.9",
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
            spec="§6.9",
        ),
        Endpoint(
            id="funding-rate-history",
            path="/api/futures/funding-rate/history",
            scope="pair",
            data="rows",
            required=("exchange", "symbol", "interval"),
            optional=HISTORY_PARAMS,
            fields=_OHLC,
            interval_floor=True,
            time_field="time",
            spec="§6.3",
        ),
        Endpoint(
            id="open-interest-aggregated-history",
            path="/api/futures/open-interest/aggregated-history",
            scope="coin",
            data="rows",
            required=("symbol", "interval"),
            optional=(*HISTORY_PARAMS, "unit"),
            fields=_OHLC,
            interval_floor=True,
            time_field="time",
            spec="§6.4",
        ),
        Endpoint(
            id="liquidation-aggregated-history",
            path="/api/futures/liquidation/aggregated-history",
            scope="coin",
            data="rows",
            required=("exchange_list", "symbol", "interval"),
            optional=HISTORY_PARAMS,
            fields=(
                Field("time", "int"),
                Field("aggregated_long_liquidation_usd", "number"),
                Field("aggregated_short_liquidation_usd", "number"),
            ),
            interval_floor=True,
            time_field="time",
            spec="§6.5",
        ),
        Endpoint(
            id="aggregated-taker-buy-sell-volume-history",
            path="/api/futures/aggregated-taker-buy-sell-volume/history",
            scope="coin",
            data="rows",
            required=("exchange_list", "symbol", "interval"),
            optional=(*HISTORY_PARAMS, "unit"),
            fields=(
                Field("time", "int"),
                Field("aggregated_buy_volume_usd", "number"),
                Field("aggregated_sell_volume_usd", "number"),
            ),
            interval_floor=True,
            time_field="time",
            spec="§6.6",
        ),
        Endpoint(
            id="liquidation-exchange-list",
            path="/api/futures/liquidation/exchange-list",
            scope="coin",
            data="rows",
            required=("range",),
            optional=("symbol",),
            fields=(
                Field("exchange", "str"),
                Field("liquidation_usd", "number"),
                # Real responses say longLiquidation_usd; the docs say long_liquidation_usd (spec §6.7).
                Field("long_liquidation_usd", "number", aliases=("longLiquidation_usd",)),
                Field("short_liquidation_usd", "number", aliases=("shortLiquidation_usd",)),
            ),
            cache_seconds=10,
            spec="§6.7",
        ),
        Endpoint(
            id="etf-bitcoin-flow-history",
            path="/api/etf/bitcoin/flow-history",
            scope="global",
            data="rows",
            fields=(
                Field("timestamp", "int"),
                Field("flow_usd", "number"),
                Field("price_usd", "number", required=False),
                Field("etf_flows", "list", required=False),
            ),
            time_field="timestamp",
            spec="§6.8",
            notes=("no parameters: the full daily history since 2024-01-11 comes back every call",),
        ),
    )
}

BY_PATH: dict[str, Endpoint] = {e.path: e for e in ENDPOINTS.values()}


def endpoint(key: str) -> Endpoint:
    """Look an endpoint up by id or path."""
    if key in ENDPOINTS:
        return ENDPOINTS[key]
    if key in BY_PATH:
        return BY_PATH[key]
    raise KeyError(f"unknown endpoint {key!r}")
