"""The data layers of a coin config and the endpoint behind each (names used in configs and reports)."""

from __future__ import annotations

from typing import Literal

LayerId = Literal["funding", "open_interest", "liquidation", "taker_volume", "liquidation_exchanges", "etf_flows"]

#: In report order.
LAYERS: tuple[LayerId, ...] = (
    "funding",
    "open_interest",
    "liquidation",
    "taker_volume",
    "liquidation_exchanges",
    "etf_flows",
)

#: The runbook's "4 shots": one minimal call per core layer (plus the macro ETF layer in `health`).
CORE_LAYERS: tuple[LayerId, ...] = ("funding", "open_interest", "liquidation", "taker_volume")

LAYER_ENDPOINT: dict[LayerId, str] = {
    "funding": "funding-rate-history",
    "open_interest": "open-interest-aggregated-history",
    "liquidation": "liquidation-aggregated-history",
    "taker_volume": "aggregated-taker-buy-sell-volume-history",
    "liquidation_exchanges": "liquidation-exchange-list",
    "etf_flows": "etf-bitcoin-flow-history",
}
