"""Plotly figures (as JSON-ready dicts) for the report: one per series, findings drawn on it.

x values are bar opens in ms (a Plotly date axis reads them as UTC). Gaps are grey bands between
the bars around them, stale data a red band from the last closed bar to now, failed checks a red
note in the chart's corner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cgpreset.layers import spec

if TYPE_CHECKING:
    from cgpreset.analyst.report import SeriesReport

GREEN, RED, BLUE, ORANGE, GREY = "#2e7d32", "#c62828", "#1565c0", "#ef6c00", "#9e9e9e"
_PALETTE = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#558b2f")


#: Charts carry values to this many significant digits (the eye sees no more; exports stay exact):
#: it keeps the 10-coin, 90-day page well under 12 MB.
DIGITS = 6


def _num(v: Any) -> Any:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    r = float(f"{v:.{DIGITS}g}")
    return int(r) if r.is_integer() and abs(r) < 1e15 else r


def _col(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [_num(r[name]) for r in rows]


def _compact_x(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evenly spaced bars as x0 + dx instead of a list of times (scatter and bar take both)."""
    for t in traces:
        x = t.get("x")
        if t["type"] in ("scatter", "bar") and isinstance(x, list) and len(x) > 2:
            step = x[1] - x[0]
            if step > 0 and all(b - a == step for a, b in zip(x, x[1:], strict=False)):
                t.pop("x")
                t["x0"], t["dx"] = x[0], step
    return traces


Traces = list[dict[str, Any]]


def _funding(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    return [{"type": "candlestick", "name": "funding %", "x": x, "open": _col(rows, "open"),
             "high": _col(rows, "high"), "low": _col(rows, "low"), "close": _col(rows, "close")}]


def _open_interest(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    return [{"type": "scatter", "mode": "lines", "name": "open interest (close, USD)", "x": x,
             "y": _col(rows, "close"), "line": {"color": BLUE, "width": 1.5}}]


def _liquidation(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    return [{"type": "bar", "name": "long liquidations USD", "x": x, "y": _col(rows, "long_usd"),
             "marker": {"color": GREEN}},
            {"type": "bar", "name": "short liquidations USD", "x": x, "y": _col(rows, "short_usd"),
             "marker": {"color": RED}}]


def _taker_volume(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    return [{"type": "scatter", "mode": "lines", "name": "taker buy USD", "x": x, "y": _col(rows, "buy_usd"),
             "line": {"color": GREEN, "width": 1}},
            {"type": "scatter", "mode": "lines", "name": "taker sell USD", "x": x, "y": _col(rows, "sell_usd"),
             "line": {"color": RED, "width": 1}}]


def _by_exchange(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    """One stacked bar series per exchange; the "All" row is their sum, so it is not drawn."""
    by_exchange: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["exchange"] != "All":
            by_exchange[r["exchange"]].append(r)
    return [{"type": "bar", "name": ex, "x": [r["time"] for r in ex_rows], "y": _col(ex_rows, "total_usd"),
             "marker": {"color": _PALETTE[i % len(_PALETTE)]}}
            for i, (ex, ex_rows) in enumerate(sorted(by_exchange.items()))]


def _etf_flows(rows: list[dict[str, Any]], x: list[int]) -> Traces:
    flows = _col(rows, "flow_usd")
    return [{"type": "bar", "name": "net flow USD", "x": x, "y": flows,
             "marker": {"color": [GREEN if (v or 0) >= 0 else RED for v in flows]}}]


#: The traces of each layer's chart.
TRACES: dict[str, Callable[[list[dict[str, Any]], list[int]], Traces]] = {
    "funding": _funding, "open_interest": _open_interest, "liquidation": _liquidation,
    "taker_volume": _taker_volume, "liquidation_exchanges": _by_exchange, "etf_flows": _etf_flows}


TITLES = {"funding": "Funding rate OHLC (%)", "open_interest": "Open interest (USD)",
          "liquidation": "Liquidations long / short (USD)", "taker_volume": "Taker buy / sell volume (USD)",
          "liquidation_exchanges": "Liquidations by exchange (USD, per snapshot)", "etf_flows": "ETF net flows (USD)"}


def figure_for(s: SeriesReport, now_ms: int) -> dict[str, Any]:
    """The series' figure: its traces, gap and staleness bands, and a note of failed checks."""
    shapes: list[dict[str, Any]] = [
        {"type": "rect", "xref": "x", "yref": "paper", "x0": a, "x1": b, "y0": 0, "y1": 1,
         "fillcolor": GREY, "opacity": 0.35, "line": {"width": 0}, "layer": "below"} for a, b in s.gaps]
    if s.stale_from is not None:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": s.stale_from, "x1": now_ms, "y0": 0,
                       "y1": 1, "fillcolor": RED, "opacity": 0.15, "line": {"width": 0}, "layer": "below"})
    notes = []
    if s.findings or not s.rows:
        text = "<br>".join(s.findings) if s.rows else "no rows stored"
        notes.append({"xref": "paper", "yref": "paper", "x": 0, "y": 1, "xanchor": "left", "yanchor": "top",
                      "text": text, "showarrow": False, "align": "left", "font": {"color": RED, "size": 11},
                      "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": RED})
    if s.gaps:
        notes.append({"xref": "paper", "yref": "paper", "x": 1, "y": 1, "xanchor": "right", "yanchor": "top",
                      "text": f"{len(s.gaps)} gap(s) shaded grey", "showarrow": False, "font": {"size": 10}})
    title = f"{TITLES[s.layer]}{' · ' + s.label if s.label else ''} · {s.verdict.upper()}"
    font = {"size": 13, "color": RED if s.verdict != "ok" else "#222"}
    layout = {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": font},
              "height": 300, "margin": {"l": 60, "r": 20, "t": 40, "b": 30},
              "xaxis": {"type": "date", "rangeslider": {"visible": False}},
              "yaxis": {"automargin": True}, "barmode": "stack" if spec(s.layer).snapshot else "group",
              "legend": {"orientation": "h", "y": -0.15}, "shapes": shapes, "annotations": notes,
              "plot_bgcolor": "#fafafa"}
    return {"data": _compact_x(TRACES[s.layer](s.rows, [r["time"] for r in s.rows])), "layout": layout}
