"""The Grafana dashboard of a base, built from the layer specs (pure: no I/O).

It reads the PostgreSQL store the workloads write, through the analyst views (one per layer,
named after it, see store/schema.py) and the `runs` and `stream_runs` tables. What a panel shows
comes from the spec, never from the layer's name: a layer whose columns are open/high/low/close
plots its close, any other its value columns; a view with a coin is filtered by the `coin`
variable; a time series counts closed bars only (`closed = 1`); the series columns beside the coin
(exchange, instrument) and a row key (the exchange of a snapshot) name the lines. A new layer
gets its panels with no change here. Times in the store are ms since the epoch (UTC).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cgpreset.layers import LayerSpec, layer_names, spec
from cgpreset.plans import INTERVAL_MS

UID = "cgpreset"
DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "${datasource}"}
OHLC = ("open", "high", "low", "close")
#: A column's unit as Grafana names it.
UNITS = {"USD": "currencyUSD", "percent": "percent"}
#: Bars from the dashboard's time range, in ms like the store's `time` column (Grafana's macros are
#: seconds as plain integers: times 1000 they overflow PostgreSQL's integer unless made bigint first).
IN_RANGE = "{col} >= $__unixEpochFrom()::bigint * 1000 AND {col} < $__unixEpochTo()::bigint * 1000"


@dataclass(frozen=True)
class ViewPanel:
    """A time series over one view: which columns plot, which name the lines, which filters apply."""

    title: str
    view: str
    values: tuple[str, ...]
    labels: tuple[str, ...]
    by_coin: bool
    closed: bool
    unit: str


def _unit(units: set[str]) -> str:
    return UNITS.get(units.pop(), "short") if len(units) == 1 else "short"


def layer_panels(ls: LayerSpec) -> list[ViewPanel]:
    """The panels of one layer: its view, and the view of its nested rows if it has them."""
    names = tuple(c.name for c in ls.columns)
    values = ("close",) if set(OHLC) <= set(names) else names
    by_coin = "coin" in ls.view_series
    labels = tuple(c for c in ls.view_series if c not in ("coin", "interval")) + ((ls.row_key,) if ls.row_key else ())
    where = "$coin" if by_coin else "every coin"
    plotted = ", ".join(values)
    out = [ViewPanel(f"{ls.id}: {plotted} ({where})", ls.id, values, labels, by_coin, not ls.snapshot,
                     _unit({c.unit for c in ls.columns if c.name in values}))]
    d = ls.detail
    if d is not None:
        cols = tuple(c.name for c in d.columns)
        out.append(ViewPanel(f"{d.view}: {', '.join(cols)} by {d.key} ({where})", d.view, cols, (d.key,),
                             False, False, _unit({c.unit for c in d.columns})))
    return out


def panel_sql(p: ViewPanel) -> str:
    """The panel's query: time (a timestamp), an optional `metric` naming the line, the values."""
    cols = ['to_timestamp("time" / 1000) AS "time"']
    if p.labels:
        cols.append(f"concat_ws(' ', {', '.join(p.labels)}) AS metric")
    cols += list(p.values)
    where = [IN_RANGE.format(col='"time"')]
    where += ["coin = '$coin'"] if p.by_coin else []
    where += ["closed = 1"] if p.closed else []
    return f"SELECT {', '.join(cols)}\nFROM {p.view}\nWHERE {' AND '.join(where)}\nORDER BY 1"


def _interval_ms() -> str:
    """A CASE giving an interval label's length in ms (the views carry the label, e.g. '1h')."""
    whens = " ".join(f"WHEN '{name}' THEN {ms}" for name, ms in INTERVAL_MS.items())
    return f'CASE "interval" {whens} END'


def _freshness(layer: str) -> str:
    """One layer's rows of the freshness table; a view without coin or interval shows '-' there."""
    ls = spec(layer)
    coin = "coin" if "coin" in ls.view_series else "'-'"
    interval = '"interval"' if "interval" in ls.view_series else "'-'"
    age_ms = 'extract(epoch FROM now()) * 1000 - max("time")'
    bars = f"round(({age_ms}) / {_interval_ms()}, 1)" if interval != "'-'" else "NULL::numeric"
    group = [c for c in (coin, interval) if c != "'-'"]
    return (f"SELECT '{layer}' AS layer, {coin} AS coin, {interval} AS \"interval\", "
            f'to_timestamp(max("time") / 1000) AS last_bar, round(({age_ms}) / 1000) AS age_seconds, '
            f"{bars} AS age_bars FROM {layer}" + ("" if ls.snapshot else " WHERE closed = 1")
            + (f" GROUP BY {', '.join(group)}" if group else ""))


def freshness_sql(layers: Sequence[str]) -> str:
    """Per layer, coin and interval: the open of the last closed bar stored, and its age (s and bars)."""
    return "\nUNION ALL\n".join(_freshness(layer) for layer in layers) + "\nORDER BY age_seconds DESC"


#: A run's length in seconds (ms in the store), to a tenth.
SECONDS = "round((ended_at - started_at) / 1000.0, 1) AS seconds"
RUNS_SQL = (
    f"SELECT id AS run, to_timestamp(started_at / 1000) AS started, {SECONDS}, "
    "status, exit_code, requests, retries, rate_limited, rate_wait_seconds, source\nFROM runs\n"
    f"WHERE {IN_RANGE.format(col='started_at')}\nORDER BY id DESC\nLIMIT 200")
RUN_TIMES_SQL = (
    f'SELECT to_timestamp(started_at / 1000) AS "time", {SECONDS}, requests, '
    f"rate_limited\nFROM runs\nWHERE ended_at IS NOT NULL AND {IN_RANGE.format(col='started_at')}\nORDER BY 1")
STREAM_SQL = (
    "SELECT id AS stream_run, to_timestamp(started_at / 1000) AS started, to_timestamp(updated_at / 1000) AS updated, "
    "status, stop_reason, events, events_per_minute, reconnects, to_timestamp(last_event_at / 1000) AS last_event\n"
    f"FROM stream_runs\nWHERE {IN_RANGE.format(col='updated_at')}\nORDER BY id DESC\nLIMIT 50")


def coin_sql(layers: Sequence[str]) -> str:
    """The `coin` variable's choices: every coin in the views of the layers that have one."""
    views = [layer for layer in layers if "coin" in spec(layer).view_series]
    return "\nUNION\n".join(f"SELECT DISTINCT coin FROM {v}" for v in views) + "\nORDER BY 1"


def _target(sql: str, fmt: str) -> dict[str, Any]:
    return {"refId": "A", "datasource": DATASOURCE, "editorMode": "code", "format": fmt, "rawQuery": True,
            "rawSql": sql}


def _panel(pid: int, title: str, kind: str, sql: str, pos: tuple[int, int, int, int],
           unit: str = "short") -> dict[str, Any]:
    x, y, w, h = pos
    return {"id": pid, "title": title, "type": kind, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [_target(sql, "time_series" if kind == "timeseries" else "table")]}


def _row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {"id": pid, "title": title, "type": "row", "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def dashboard(layers: Sequence[str]) -> dict[str, Any]:
    """The dashboard for configs running `layers` (in the registry's order, whatever order given)."""
    ordered = [layer for layer in layer_names() if layer in set(layers)]
    panels = [_row(1, "Freshness and runs", 0),
              _panel(2, "Freshness: the last closed bar of every series", "table", freshness_sql(ordered),
                     (0, 1, 24, 8)),
              _panel(3, "Runs", "table", RUNS_SQL, (0, 9, 12, 8)),
              _panel(4, "Runs: seconds, requests and 429s", "timeseries", RUN_TIMES_SQL, (12, 9, 12, 8)),
              _panel(5, "Stream runs", "table", STREAM_SQL, (0, 17, 24, 6)),
              _row(6, "$coin", 23)]
    for i, p in enumerate(vp for layer in ordered for vp in layer_panels(spec(layer))):
        panels.append(_panel(7 + i, p.title, "timeseries", panel_sql(p), (12 * (i % 2), 24 + 8 * (i // 2), 12, 8),
                             p.unit))
    templating = [
        {"name": "datasource", "label": "PostgreSQL store", "type": "datasource",
         "query": DATASOURCE["type"], "current": {}, "hide": 0, "refresh": 1, "regex": ""},
        {"name": "coin", "label": "Coin", "type": "query", "datasource": DATASOURCE, "query": coin_sql(ordered),
         "definition": coin_sql(ordered), "refresh": 1, "sort": 1, "multi": False, "includeAll": False,
         "current": {}, "hide": 0}]
    return {"uid": UID, "title": "cgpreset", "tags": ["cgpreset"], "timezone": "utc", "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "5m", "time": {"from": "now-7d", "to": "now"},
            "templating": {"list": templating}, "annotations": {"list": []}, "panels": panels}


def dashboard_json(layers: Sequence[str]) -> str:
    """The dashboard as the ConfigMap's file holds it: sorted keys, so the bytes are deterministic."""
    return json.dumps(dashboard(layers), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, SQL) of every query a dashboard runs: each panel's and each query variable's."""
    found = [(p["title"], t["rawSql"]) for p in doc["panels"] for t in p.get("targets", [])]
    found += [(f"variable {v['name']}", v["query"]) for v in doc["templating"]["list"] if v["type"] == "query"]
    return found
