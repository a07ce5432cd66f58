"""`cgpreset report`: one self-contained HTML page of the stored data, its health and findings.

Per coin of the configs: a Plotly chart of every layer the coin's config runs, over the stored
window (then each macro layer once); the stream's liquidation events when the store holds any.
Which layers, how each is drawn and checked, all comes from the layer catalogue. Each series
gets the checks of `run/checks.py` over its stored rows; gaps and stale data are shaded on its
chart, failed checks written on it. plotly.js is inlined once and the charts are JSON figures:
the page needs no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from cgpreset.analyst.charts import figure_for
from cgpreset.analyst.events import EventsReport, collect_events, events_figure
from cgpreset.analyst.views import Selection, read_view
from cgpreset.layers import LayerSpec, catalogue, spec
from cgpreset.models.config import CoinConfig, HealthSpec
from cgpreset.plans import interval_ms
from cgpreset.run.checks import Check, run_checks

#: How the page names where the data came from.
SOURCES = {"api": "the CoinGlass API", "emulator": "the embedded CoinGlass emulator (synthetic data, not CoinGlass)"}


@dataclass
class SeriesReport:
    """One chart: a layer of a coin (or a macro layer, coin "*"), its rows, checks and findings."""

    coin: str
    layer: str
    label: str
    interval: str
    rows: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (last bar before, first bar after)
    stale_from: int | None = None  # last closed bar, when the freshness check failed
    missing: str | None = None  # the store has no view for the layer yet: why there are no rows
    details: list[dict[str, Any]] = field(default_factory=list)  # its detail view's rows (the checks read them)

    @property
    def verdict(self) -> str:
        if not self.rows:
            return "empty"
        return "failed" if any(not c.ok for c in self.checks) else "ok"

    @property
    def findings(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    @property
    def summary(self) -> str:
        """The findings column: what failed, or why there are no rows."""
        return "; ".join(self.findings) or ("" if self.rows else self.missing or "no rows stored")

    @property
    def chart_id(self) -> str:
        return f"chart-{self.coin}-{self.layer}".replace("*", "macro").replace(" ", "_")


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _fetch(conn: Any, view: str, coin: str | None, interval: str | None = None
           ) -> tuple[list[dict[str, Any]], str | None]:
    """The view's rows of a coin (all for None) at an interval (any for None), and the note for a
    view the store does not have yet."""
    columns, batches, missing = read_view(conn, view, Selection(coins=(coin,) if coin else ()))
    rows = [dict(zip(columns, r, strict=True)) for b in batches for r in b]
    return [r for r in rows if interval is None or r.get("interval") == interval], missing


def _check_rows(ls: LayerSpec, rows: Sequence[dict[str, Any]], details: Sequence[dict[str, Any]] = ()
                ) -> list[dict[str, Any]]:
    """View rows in the API's field names, as the checks read them (long_usd ->
    aggregated_long_liquidation_usd), with the time under its API name too and the nested rows of
    a detail (the ETF flows' tickers) back in their list field."""
    fields = ls.typed_fields
    nested = _nested(ls, details)
    out = []
    for r in rows:
        row = {"time": r["time"], **{f: r[c] for c, f in fields.items() if c in r and r[c] is not None}}
        if ls.row_key:
            row[ls.row_key] = r.get(ls.row_key)
        if ls.time_field:
            row[ls.time_field] = r["time"]
        if ls.detail is not None and r["time"] in nested:
            row[ls.detail.field] = nested[r["time"]]
        out.append(row)
    return out


def _nested(ls: LayerSpec, details: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The detail view's rows by time, in the API's field names."""
    d = ls.detail
    out: dict[int, list[dict[str, Any]]] = {}
    if d is None:
        return out
    for r in details:
        out.setdefault(r["time"], []).append({d.key_field: r[d.key], **{c.field: r.get(c.name) for c in d.columns}})
    return out


def _gaps(times: Sequence[int], step: int) -> list[tuple[int, int]]:
    return [(a, b) for a, b in zip(times, times[1:], strict=False) if b - a > step]


def check_series(s: SeriesReport, health: HealthSpec, now_ms: int) -> SeriesReport:
    """Run the layer's checks over the stored rows; note gaps and staleness for the chart."""
    if not s.rows:
        return s
    ls = spec(s.layer)
    rows = s.rows
    if ls.snapshot:  # the checks compare one snapshot's rows: the latest
        latest = max(r["time"] for r in rows)
        rows = [r for r in rows if r["time"] == latest]
    closed = [r["time"] for r in s.rows if r.get("closed", True)]
    last_closed = max(closed) if closed else None
    s.checks = run_checks(s.layer, _check_rows(ls, rows, s.details), interval=s.interval, health=health,
                          now_ms=now_ms, last_closed=last_closed)
    # The store keeps only the configured exchanges of a snapshot, so "All = sum of the exchanges"
    # (checked by run-preset on the whole answer) cannot hold over stored rows: not a finding.
    s.checks = [c for c in s.checks if c.name != "all_equals_sum"]
    if ls.windowed:  # a snapshot or a whole (daily, trading days only) history has no bar gaps to shade
        s.gaps = _gaps(sorted({r["time"] for r in s.rows}), interval_ms(s.interval) * (health.max_gap_bars + 1))
    if any(c.name == "freshness" and not c.ok for c in s.checks):
        s.stale_from = last_closed if last_closed is not None else s.rows[0]["time"]
    return s


def _layer_interval(cfg: CoinConfig, ls: LayerSpec) -> str:
    """The series' bar: a whole history's fixed one, else the layer's own interval or the config's."""
    if ls.whole_history and ls.bar:
        return ls.bar
    return getattr(cfg.layers.get(ls.id), "interval", None) or cfg.interval


def _series(conn: Any, cfg: CoinConfig, ls: LayerSpec, coin: str | None) -> SeriesReport:
    """One layer's stored series for a config: a coin's (or, coin None, a macro layer's)."""
    sub = cfg.layers.get(ls.id)
    interval = _layer_interval(cfg, ls)
    rows, missing = _fetch(conn, ls.id, coin, None if ls.snapshot or ls.whole_history else interval)
    label = ""
    if "instrument" in ls.view_series:  # a pair layer: the config's own pair only
        rows = [r for r in rows if r["exchange"] == sub.exchange and r["instrument"] == sub.symbol]
        label = f"{sub.exchange} {sub.symbol}"
    elif ls.macro:  # named after what it sums (the ETF flows: the ETFs), if its definition says
        label = next((f.label for f in ls.fields if ls.detail and f.name == ls.detail.field and f.label), "")
    # A detail view has no series columns: its rows are a macro layer's one series' (the ETF tickers).
    details = _fetch(conn, ls.detail.view, None)[0] if ls.detail is not None and ls.macro and rows else []
    return SeriesReport(coin or "*", ls.id, label, interval, rows, missing=missing, details=details)


def collect(conn: Any, configs: Sequence[tuple[Path, CoinConfig]], *, now_ms: int) -> list[SeriesReport]:
    """Every chart of the report: each layer of each coin's config, in the configs' and the
    catalogue's order, then each macro layer once (with the first config's health that runs it)."""
    out: list[SeriesReport] = []
    macro: dict[str, CoinConfig] = {}
    for _, cfg in configs:
        for name in cfg.layers.enabled():
            ls = spec(name)
            if ls.macro:
                macro.setdefault(name, cfg)
                continue
            out.append(check_series(_series(conn, cfg, ls, cfg.coin), cfg.health, now_ms))
    for name in [n for n in catalogue() if n in macro]:
        cfg = macro[name]
        out.append(check_series(_series(conn, cfg, spec(name), None), cfg.health, now_ms))
    return out


def summary_rows(series: Sequence[SeriesReport], events: Sequence[EventsReport] = ()) -> list[dict[str, Any]]:
    """The table on top: one line per chart (the stream's events after the series)."""
    return [{"coin": "macro" if s.coin == "*" else s.coin, "layer": s.layer, "label": s.label,
             "rows": len(s.rows), "first": _ts(min((r["time"] for r in s.rows), default=None)),
             "last": _ts(max((r["time"] for r in s.rows), default=None)), "verdict": s.verdict,
             "findings": s.summary, "chart_id": s.chart_id} for s in series] + [
            {"coin": e.coin, "layer": e.layer, "label": f"stream, since {_ts(e.start_ms)}", "rows": e.events,
             "first": _ts(e.first), "last": _ts(e.last), "verdict": e.verdict, "findings": e.summary,
             "chart_id": e.chart_id} for e in events]


def source_text(source: str | None) -> str:
    """The page's plain statement of where the data came from."""
    if source is None:
        return "not recorded in this store: it may be the CoinGlass API or the emulator"
    return SOURCES.get(source, f"the API at {source}")


def render_html(series: Sequence[SeriesReport], *, source: str | None, store_label: str, now_ms: int,
                events: Sequence[EventsReport] = ()) -> str:
    """The whole page (pure but for reading the template and plotly.js from the installed packages)."""
    import jinja2
    from plotly.offline import get_plotlyjs

    figures = {s.chart_id: figure_for(s, now_ms) for s in series}
    figures.update({e.chart_id: events_figure(e, _ts(e.start_ms)) for e in events})
    template = resources.files("cgpreset.analyst").joinpath("report.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    coins: dict[str, list[SeriesReport | EventsReport]] = {}
    for s in series:  # each coin's layers, then its liquidation events; the macro layers last
        if s.coin != "*":
            coins.setdefault(s.coin, []).append(s)
    for e in events:
        coins.setdefault(e.coin, []).append(e)
    for s in series:
        if s.coin == "*":
            coins.setdefault("macro", []).append(s)
    verdicts = [s.verdict for s in series]
    return env.from_string(template).render(
        plotly_js=jinja2_safe(get_plotlyjs()),
        figures_json=jinja2_safe(json.dumps(figures, separators=(",", ":")).replace("</", "<\\/")),
        summary=summary_rows(series, events), coins=coins, source=source_text(source),
        from_emulator=source == "emulator", store=store_label, generated=_ts(now_ms) + " UTC",
        counts={v: verdicts.count(v) for v in ("ok", "failed", "empty")}, chart_count=len(series),
        events=len(events))


def jinja2_safe(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)


@dataclass(frozen=True)
class ReportResult:
    """What `write_report` wrote."""

    path: Path
    size_bytes: int
    charts: int
    failed: int
    empty: int
    missing: tuple[str, ...] = ()  # one note per layer the store has no view for yet


def recorded_source(conn: Any) -> str | None:
    """The source the store recorded for its last run ("api"/"emulator"), if it records one."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT * FROM runs WHERE 1 = 0")
        if "source" not in [d[0] for d in cur.description]:
            return None
        cur.close()
        cur = conn.cursor()
        cur.execute("SELECT source FROM runs WHERE source IS NOT NULL ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        return str(row[0]) if row else None
    except Exception as exc:  # a store without a runs table: nothing recorded
        from cgpreset.analyst.source import is_db_error

        if not is_db_error(exc):
            raise
        if hasattr(conn, "rollback"):
            conn.rollback()
        return None
    finally:
        cur.close()


def write_report(configs: Sequence[tuple[Path, CoinConfig]], store: Any, html_path: Path, *,
                 source: str | None, now_ms: int) -> ReportResult:
    """Read the store, check every series, and write the page atomically."""
    from cgpreset._io import write_atomic
    from cgpreset.analyst.source import connect, label

    with connect(store) as conn:
        series = collect(conn, configs, now_ms=now_ms)
        events = collect_events(conn, configs, now_ms=now_ms)
        if source is None:
            source = recorded_source(conn)
    page = render_html(series, source=source, store_label=label(store), now_ms=now_ms, events=events).encode()
    write_atomic(html_path, page)
    verdicts = [s.verdict for s in series]
    missing = tuple(dict.fromkeys(s.missing for s in series if s.missing))
    return ReportResult(html_path, len(page), len(series) + len(events), verdicts.count("failed"),
                        verdicts.count("empty"), missing)
