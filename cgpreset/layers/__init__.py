"""THE layer registry: one `LayerSpec` per data layer of a coin config.

Everything that differs between layers is data here: the endpoint behind it, how its request
and series key are built from the config, whether the plan's interval floor applies, which
checks run on it, and which store table and typed columns hold its rows. The runner, series
planning, the config and preset models, the checks, the store and the report read it; adding a
layer means adding one spec (and its store columns), not finding nine modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LayerId = Literal["funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges", "etf_flows"]

#: Where a layer's series interval comes from: the config (`interval`, or the layer's own), the
#: bucket of its `range` (the exchange-list snapshot), or a fixed daily bar (the ETF flows).
IntervalFrom = Literal["config", "range", "1d"]
#: Where a layer's backfill depth comes from: the config's history_days, the layer's own, or none
#: (a snapshot has no history).
HistoryFrom = Literal["config", "layer", "none"]
#: Checks a layer can run (see run/checks.py): time-series checks, snapshot invariants, ETF sums.
CheckId = Literal["gaps", "freshness", "ohlc", "exchange_sum", "long_short_total", "etf_sum", "all_zero"]


@dataclass(frozen=True)
class Column:
    """One typed store column: its name, the canonical API field it holds, its unit."""

    name: str
    field: str
    unit: str


@dataclass(frozen=True)
class Detail:
    """Rows nested in a layer's row (the ETF flows' per-ticker list), stored in a table of their own."""

    field: str  # the row's list field
    key: str  # the store column that keys a nested row (beside series and time)
    key_field: str  # the nested row's field that fills `key`
    table: str
    view: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class LayerSpec:
    """Everything about one layer that is not the same for all layers."""

    id: LayerId
    endpoint_id: str
    #: Config fields sent as request parameters, in order (lists are joined with ",").
    params: tuple[str, ...]
    #: The series' instrument label, formatted from the config's layer fields.
    key: str
    interval_from: IntervalFrom
    history_from: HistoryFrom
    #: The plan's interval floor applies to this layer's interval.
    floor: bool
    #: One of the runbook's "4 shots" (a minimal call per core layer in `health`).
    core: bool
    #: The `symbol` of a coin-aggregated layer must be the config's coin code.
    symbol_is_coin: bool
    #: Not per coin: the same request for every config (merged into one series, coin "*").
    macro: bool
    #: A snapshot of per-exchange rows (keyed by exchange, stored at the bar the run falls in).
    snapshot: bool
    #: Every call answers the whole history: the depth asked for is applied to the answer.
    whole_history: bool
    #: The config field naming which exchange rows to store (None: store every row).
    keep_field: str | None
    checks: tuple[CheckId, ...]
    #: Store table of the layer's rows and its typed columns (REAL), in order.
    table: str
    columns: tuple[Column, ...]
    #: Series columns the layer's analyst view shows (from the `series` table), before `time`.
    view_series: tuple[str, ...] = ("coin", "interval")
    #: A key column of the rows beside (series, time): the exchange of a per-exchange snapshot.
    row_key: str | None = None
    detail: Detail | None = None

    @property
    def value_fields(self) -> tuple[str, ...]:
        """The API fields the all-zero check looks at (every typed value but the ETF price)."""
        return tuple(c.field for c in self.columns if c.name != "price_usd")

    @property
    def typed_fields(self) -> dict[str, str]:
        """Store column -> canonical API field."""
        return {c.name: c.field for c in self.columns}


def _ohlc(unit: str) -> tuple[Column, ...]:
    return tuple(Column(n, n, unit) for n in ("open", "high", "low", "close"))


_SERIES_CHECKS: tuple[CheckId, ...] = ("gaps", "freshness", "all_zero")

REGISTRY: dict[LayerId, LayerSpec] = {
    s.id: s
    for s in (
        LayerSpec(
            id="funding", endpoint_id="funding-rate-history", params=("exchange", "symbol"),
            key="{exchange}:{symbol}", interval_from="config", history_from="config", floor=True, core=True,
            symbol_is_coin=False, macro=False, snapshot=False, whole_history=False, keep_field=None,
            checks=("gaps", "freshness", "ohlc", "all_zero"), table="data_funding",
            columns=_ohlc("percent"), view_series=("coin", "exchange", "instrument", "interval")),
        LayerSpec(
            id="open_interest", endpoint_id="open-interest-aggregated-history", params=("symbol",),
            key="all", interval_from="config", history_from="config", floor=True, core=True,
            symbol_is_coin=True, macro=False, snapshot=False, whole_history=False, keep_field=None,
            checks=("gaps", "freshness", "ohlc", "all_zero"), table="data_open_interest",
            columns=_ohlc("USD")),
        LayerSpec(
            id="liquidation", endpoint_id="liquidation-aggregated-history", params=("exchange_list", "symbol"),
            key="{exchange_list}", interval_from="config", history_from="config", floor=True, core=True,
            symbol_is_coin=True, macro=False, snapshot=False, whole_history=False, keep_field=None,
            checks=_SERIES_CHECKS, table="data_liquidation",
            columns=(Column("long_usd", "aggregated_long_liquidation_usd", "USD"),
                     Column("short_usd", "aggregated_short_liquidation_usd", "USD"))),
        LayerSpec(
            id="taker_volume", endpoint_id="aggregated-taker-buy-sell-volume-history",
            params=("exchange_list", "symbol"), key="{exchange_list}", interval_from="config",
            history_from="config", floor=True, core=True, symbol_is_coin=True, macro=False, snapshot=False,
            whole_history=False, keep_field=None, checks=_SERIES_CHECKS, table="data_taker_volume",
            columns=(Column("buy_usd", "aggregated_buy_volume_usd", "USD"),
                     Column("sell_usd", "aggregated_sell_volume_usd", "USD"))),
        LayerSpec(
            id="liquidation_exchanges", endpoint_id="liquidation-exchange-list", params=("range", "symbol"),
            key="range={range}", interval_from="range", history_from="none", floor=False, core=False,
            symbol_is_coin=True, macro=False, snapshot=True, whole_history=False, keep_field="exchanges",
            checks=("exchange_sum", "long_short_total", "all_zero"), table="data_liquidation_exchanges",
            columns=(Column("total_usd", "liquidation_usd", "USD"),
                     Column("long_usd", "long_liquidation_usd", "USD"),
                     Column("short_usd", "short_liquidation_usd", "USD")),
            view_series=("coin",), row_key="exchange"),
        LayerSpec(
            id="etf_flows", endpoint_id="etf-bitcoin-flow-history", params=(), key="{asset}",
            interval_from="1d", history_from="layer", floor=False, core=False, symbol_is_coin=False,
            macro=True, snapshot=False, whole_history=True, keep_field=None,
            checks=("gaps", "freshness", "etf_sum", "all_zero"), table="data_etf_flows",
            columns=(Column("flow_usd", "flow_usd", "USD"), Column("price_usd", "price_usd", "USD")),
            view_series=(), detail=Detail(field="etf_flows", key="ticker", key_field="etf_ticker",
                                          table="data_etf_tickers", view="etf_flows_by_ticker",
                                          columns=(Column("flow_usd", "flow_usd", "USD"),))),
    )
}

#: In report order.
LAYERS: tuple[LayerId, ...] = tuple(REGISTRY)

#: The runbook's "4 shots": one minimal call per core layer (plus the macro ETF layer in `health`).
CORE_LAYERS: tuple[LayerId, ...] = tuple(s.id for s in REGISTRY.values() if s.core)

#: Layers whose `interval` the plan's floor applies to.
FLOOR_LAYERS: tuple[LayerId, ...] = tuple(s.id for s in REGISTRY.values() if s.floor)

#: Coin-aggregated layers: their `symbol` is the config's coin code (funding takes a venue instrument id).
COIN_LAYERS: tuple[LayerId, ...] = tuple(s.id for s in REGISTRY.values() if s.symbol_is_coin)

LAYER_ENDPOINT: dict[LayerId, str] = {s.id: s.endpoint_id for s in REGISTRY.values()}

#: The bar each `range` of the exchange-list snapshot is bucketed into (one snapshot per bucket).
RANGE_BUCKET = {"1h": "1h", "4h": "4h", "12h": "12h", "24h": "1d"}


def spec(layer: str) -> LayerSpec:
    """The spec of a layer id (KeyError on an unknown one: the models validate layer names)."""
    return REGISTRY[layer]  # type: ignore[index]
