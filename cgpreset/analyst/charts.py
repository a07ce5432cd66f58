"""Plotly figures (as JSON-ready dicts) for the report: one per series, findings drawn on it.

Each layer's chart is drawn as its definition's `chart` says (candles, line_close, lines, bars,
by_exchange, flows), its traces named by the stored columns' labels and units, its title the
definition's: a repo's own layer is charted like the shipped ones.

x values are bar opens in ms (a Plotly date axis reads them as UTC). Gaps are grey bands between
the bars around them, stale data a red band from the last closed bar to now, failed checks a red
note in the chart's corner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cgpreset.layers import Column, LayerSpec, spec

if TYPE_CHECKING:
    from cgpreset.analyst.report import SeriesReport

GREEN, RED, BLUE, GREY = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e"
PALETTE = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#558b2f")


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
Rows = list[dict[str, Any]]
#: The row of a per-exchange snapshot that is the sum of the others (not drawn: a stacked bar sums).
TOTAL_ROW = "All"
#: The fields of a candle, in Plotly's names.
OHLC = ("open", "high", "low", "close")


def unit_text(unit: str) -> str:
    """A unit as a chart writes it: percent as %, the others by name (USD, ratio, coin, ...)."""
    return "%" if unit == "percent" else unit


def trace_name(c: Column) -> str:
    """A stored column's trace name: its label (else its name, spaced) and its unit, unless the
    label already ends with it (`long %`)."""
    label, unit = c.label or c.name.replace("_", " "), unit_text(c.unit)
    return label if label.endswith(unit) else f"{label} {unit}".strip()


def _by_field(ls: LayerSpec) -> dict[str, Column]:
    return {c.field: c for c in ls.columns}


def _close(ls: LayerSpec) -> Column:
    """The column a one-line chart draws: the close of an OHLC layer, else the first stored."""
    return _by_field(ls).get("close", ls.columns[0])


def _series_name(ls: LayerSpec, close: Column) -> str:
    """What an OHLC layer's one trace is called: the close field's label, else the layer's name."""
    return close.label or ls.id.replace("_", " ")


def _beside_ohlc(ls: LayerSpec) -> list[Column]:
    """An OHLC layer's other stored columns (a price's volume): drawn as bars on a second axis."""
    by_field = _by_field(ls)
    return [c for c in ls.columns if c.field not in OHLC] if "close" in by_field else []


def _bars_beside(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    return [{"type": "bar", "name": trace_name(c), "x": x, "y": _col(rows, c.name), "yaxis": "y2",
             "opacity": 0.35, "marker": {"color": PALETTE[(i + 1) % len(PALETTE)]}}
            for i, c in enumerate(_beside_ohlc(ls))]


def _candles(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    col = {f: c.name for f, c in _by_field(ls).items()}
    close = _close(ls)
    return [{"type": "candlestick", "name": f"{_series_name(ls, close)} {unit_text(close.unit)}".strip(), "x": x,
             **{f: _col(rows, col[f]) for f in OHLC}}, *_bars_beside(ls, rows, x)]


def _line_close(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    close = _close(ls)
    name = (f"{_series_name(ls, close)} (close, {unit_text(close.unit)})" if close.field == "close"
            else trace_name(close))
    return [{"type": "scatter", "mode": "lines", "name": name, "x": x, "y": _col(rows, close.name),
             "line": {"color": BLUE, "width": 1.5}}, *_bars_beside(ls, rows, x)]


def _colours(n: int) -> tuple[str, ...]:
    """Two series read as a pair (long / short, buy / sell): green and red; more take the palette."""
    return (GREEN, RED) if n == 2 else PALETTE


def _second_axis(ls: LayerSpec) -> set[str]:
    """Columns drawn on a right-hand axis: those whose unit is not the first column's."""
    return {c.name for c in ls.columns if c.unit != ls.columns[0].unit}


def _each_column(ls: LayerSpec, rows: Rows, x: list[int], trace: dict[str, Any], style: str) -> Traces:
    """One trace per stored column (`trace`: the type; `style`: `line` or `marker`, coloured)."""
    colours, right = _colours(len(ls.columns)), _second_axis(ls)
    out = []
    for i, c in enumerate(ls.columns):
        colour: dict[str, Any] = {"color": colours[i % len(colours)]}
        if style == "line":
            colour["width"] = 1
        t = {**trace, "name": trace_name(c), "x": x, "y": _col(rows, c.name), style: colour}
        out.append({**t, "yaxis": "y2"} if c.name in right else t)
    return out


def _lines(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    return _each_column(ls, rows, x, {"type": "scatter", "mode": "lines"}, "line")


def _bars(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    return _each_column(ls, rows, x, {"type": "bar"}, "marker")


def _by_exchange(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    """One stacked bar series per exchange (the row key) of the first stored column; the total row
    is their sum, so it is not drawn."""
    key, value = ls.row_key or "exchange", ls.columns[0].name
    by_key: dict[str, Rows] = defaultdict(list)
    for r in rows:
        if r[key] != TOTAL_ROW:
            by_key[r[key]].append(r)
    return [{"type": "bar", "name": k, "x": [r["time"] for r in k_rows], "y": _col(k_rows, value),
             "marker": {"color": PALETTE[i % len(PALETTE)]}}
            for i, (k, k_rows) in enumerate(sorted(by_key.items()))]


def _flows(ls: LayerSpec, rows: Rows, x: list[int]) -> Traces:
    """Net flows as bars, green in and red out: the first signed column (else the first)."""
    c = next((c for c in ls.columns if c.signed), ls.columns[0])
    flows = _col(rows, c.name)
    return [{"type": "bar", "name": trace_name(c), "x": x, "y": flows,
             "marker": {"color": [GREEN if (v or 0) >= 0 else RED for v in flows]}}]


#: The traces of each kind of chart a layer definition may name (`chart:`).
TRACES: dict[str, Callable[[LayerSpec, Rows, list[int]], Traces]] = {
    "candles": _candles, "line_close": _line_close, "lines": _lines, "bars": _bars, "by_exchange": _by_exchange,
    "flows": _flows}


def traces(ls: LayerSpec, rows: Rows) -> Traces:
    """The layer's chart of `rows` (view rows, ascending), as its definition's `chart` draws it."""
    return _compact_x(TRACES[ls.chart](ls, rows, [r["time"] for r in rows]))


def _axes(ls: LayerSpec) -> dict[str, Any]:
    """A second y axis, each titled with its unit, for what is drawn on it: the columns of a second
    unit (lines, bars), the columns beside an OHLC (candles, a close line)."""
    left, right = ls.columns[0], []
    if ls.chart in ("lines", "bars"):
        right = [c for c in ls.columns if c.name in _second_axis(ls)]
    elif ls.chart in ("candles", "line_close"):
        left, right = _close(ls), _beside_ohlc(ls)
    if not right:
        return {"yaxis": {"automargin": True}}
    return {"yaxis": {"automargin": True, "title": {"text": unit_text(left.unit)}},
            "yaxis2": {"automargin": True, "overlaying": "y", "side": "right",
                       "title": {"text": ", ".join(dict.fromkeys(unit_text(c.unit) for c in right))}}}


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
        text = "<br>".join(s.findings) if s.rows else s.missing or "no rows stored"
        notes.append({"xref": "paper", "yref": "paper", "x": 0, "y": 1, "xanchor": "left", "yanchor": "top",
                      "text": text, "showarrow": False, "align": "left", "font": {"color": RED, "size": 11},
                      "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": RED})
    if s.gaps:
        notes.append({"xref": "paper", "yref": "paper", "x": 1, "y": 1, "xanchor": "right", "yanchor": "top",
                      "text": f"{len(s.gaps)} gap(s) shaded grey", "showarrow": False, "font": {"size": 10}})
    ls = spec(s.layer)
    title = f"{ls.title}{' · ' + s.label if s.label else ''} · {s.verdict.upper()}"
    font = {"size": 13, "color": RED if s.verdict != "ok" else "#222"}
    layout = {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": font},
              "height": 300, "margin": {"l": 60, "r": 20, "t": 40, "b": 30},
              "xaxis": {"type": "date", "rangeslider": {"visible": False}},
              **_axes(ls), "barmode": "stack" if ls.snapshot else "group",
              "legend": {"orientation": "h", "y": -0.15}, "shapes": shapes, "annotations": notes,
              "plot_bgcolor": "#fafafa"}
    return {"data": traces(ls, s.rows), "layout": layout}
