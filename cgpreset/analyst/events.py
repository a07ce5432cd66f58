"""The stream's liquidation events in the report: per coin, USD by exchange and side, with counts.

Read from the store's `liquidation_events` view (one row per event `cgpreset stream --store`
kept: coin, exchange, symbol, side, usd, price, time, ts), summed in the database (a busy stream
keeps millions of events; the page needs a few numbers a coin). Shown only when the store holds
events: a store that never streamed has no such section. The window is each config's
`history_days` back from now, the depth its bars are kept at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgpreset.analyst.charts import GREEN, PALETTE, RED
from cgpreset.analyst.views import EVENTS, exists, placeholder, store_columns
from cgpreset.models.config import CoinConfig

DAY_MS = 86_400_000
#: How each side is drawn, in this order (a side the stream adds later takes the palette).
SIDES = {"long": GREEN, "short": RED}


@dataclass(frozen=True)
class SideTotal:
    """The events of one exchange and side: how many, their USD sum."""

    exchange: str
    side: str
    events: int
    usd: float


@dataclass
class EventsReport:
    """One coin's liquidation events over [start_ms, now]: totals per exchange and side."""

    coin: str
    start_ms: int
    totals: list[SideTotal]
    first: int | None = None
    last: int | None = None
    layer: str = EVENTS.name
    verdict: str = "info"  # not a health verdict: the events are shown, not checked

    @property
    def events(self) -> int:
        return sum(t.events for t in self.totals)

    @property
    def usd(self) -> float:
        return sum(t.usd for t in self.totals)

    @property
    def chart_id(self) -> str:
        return f"chart-{self.coin}-{self.layer}".replace(" ", "_")

    @property
    def summary(self) -> str:
        return f"{_count(self.events)}, {self.usd:,.0f} USD" if self.totals else "no events in the window"


def has_events(conn: Any) -> bool:
    """The store has the events view (with its columns) and at least one event in it."""
    if not exists(conn, EVENTS.name) or store_columns(conn, EVENTS.name) is None:
        return False
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT 1 FROM {EVENTS.name} LIMIT 1")
        return cur.fetchone() is not None
    finally:
        cur.close()


def coin_events(conn: Any, coin: str, start_ms: int, now_ms: int) -> EventsReport:
    """A coin's events in [start_ms, now_ms], summed per exchange and side by the database."""
    m = placeholder(conn)
    cur = conn.cursor()
    try:
        cur.execute(f"SELECT exchange, side, count(*), sum(usd), min(time), max(time) FROM {EVENTS.name} "
                    f"WHERE coin = {m} AND time >= {m} AND time <= {m} GROUP BY exchange, side "
                    "ORDER BY exchange, side", (coin, start_ms, now_ms))
        rows = cur.fetchall()
    finally:
        cur.close()
    totals = [SideTotal(str(ex), str(side), int(n), float(usd or 0.0)) for ex, side, n, usd, _, _ in rows]
    return EventsReport(coin, start_ms, totals, min((int(r[4]) for r in rows), default=None),
                        max((int(r[5]) for r in rows), default=None))


def collect_events(conn: Any, configs: Sequence[tuple[Path, CoinConfig]], *, now_ms: int) -> list[EventsReport]:
    """Each config's coin's events over its history_days (none at all when the store holds no events)."""
    if not has_events(conn):
        return []
    out: dict[str, EventsReport] = {}
    for _, cfg in configs:
        if cfg.coin not in out:
            out[cfg.coin] = coin_events(conn, cfg.coin, now_ms - cfg.history_days * DAY_MS, now_ms)
    return list(out.values())


def _count(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def events_figure(e: EventsReport, since: str) -> dict[str, Any]:
    """Grouped bars: USD per exchange (largest first), one series per side, each bar with its count."""
    by_exchange: dict[str, float] = {}
    for t in e.totals:
        by_exchange[t.exchange] = by_exchange.get(t.exchange, 0.0) + t.usd
    exchanges = sorted(by_exchange, key=lambda ex: (-by_exchange[ex], ex))
    sides = [*(s for s in SIDES if any(t.side == s for t in e.totals)),
             *sorted({t.side for t in e.totals} - set(SIDES))]
    data = []
    for i, side in enumerate(sides):
        cell = {t.exchange: t for t in e.totals if t.side == side}
        data.append({"type": "bar", "name": f"{side} liquidations USD", "x": exchanges,
                     "y": [cell[ex].usd if ex in cell else None for ex in exchanges],  # no bar: none
                     "text": [_count(cell[ex].events) if ex in cell else "" for ex in exchanges],
                     "textposition": "auto", "marker": {"color": SIDES.get(side, PALETTE[i % len(PALETTE)])}})
    notes = [] if e.totals else [{
        "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False, "font": {"size": 12},
        "text": f"no liquidation events of {e.coin} streamed since {since}"}]
    title = f"Liquidation events by exchange (USD, streamed) · {_count(e.events)} since {since}"
    layout = {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 13, "color": "#222"}},
              "height": 300, "margin": {"l": 60, "r": 20, "t": 40, "b": 30}, "barmode": "group",
              "xaxis": {"type": "category"}, "yaxis": {"automargin": True}, "legend": {"orientation": "h", "y": -0.15},
              "annotations": notes, "plot_bgcolor": "#fafafa"}
    return {"data": data, "layout": layout}
