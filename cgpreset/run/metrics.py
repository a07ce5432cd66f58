"""Prometheus metrics of a run or a health sign-off, built with prometheus_client (pure: no I/O, no clock).

Each call builds a fresh CollectorRegistry (no process-wide state: two runs in one process never
mix). Delivery: `--metrics FILE` writes its text exposition for node_exporter's textfile collector
(replaced atomically); `--pushgateway URL` pushes it (run/push.py); the stream serves its own
(stream/metrics.py). Every value here is a gauge describing the latest run; names and labels are
stable, and this is their list (the README points here; the generated alert rules use them):

    cgpreset_run_source{source}, cgpreset_health_source{source}   1, labelled with the data's source:
                                  "emulator" (the embedded one) or the API's host name
    cgpreset_run_exit_code, cgpreset_run_start_timestamp_seconds, cgpreset_run_end_timestamp_seconds,
    cgpreset_run_duration_seconds, cgpreset_run_requests, cgpreset_run_retries, cgpreset_run_rate_limited,
    cgpreset_run_rate_wait_seconds, cgpreset_run_series{outcome}, cgpreset_run_rows, cgpreset_run_new_rows,
    cgpreset_run_shards                 the N of --shard I/N (1 when not sharded)

    per series, labels {coin,layer,series,interval} (interval: the config's, e.g. "1h"):
    cgpreset_series_outcome{...,outcome}        1 for the series' outcome, 0 for the others
    cgpreset_series_rows / _new_rows / _findings / _requests
    cgpreset_series_last_bar_age_seconds        seconds since the last stored bar closed (at the run's start)
    cgpreset_series_last_closed_bar_timestamp_seconds   OPEN time of the last closed bar stored
    cgpreset_series_age_bars                    (run end - that open time) / interval
    cgpreset_series_interval_seconds            the bar length
    cgpreset_series_freshness_limit_bars        the age the freshness check allows (the config's
                                  health.freshness_intervals; at least 5 for the daily ETF flows)
    cgpreset_series_missing_bars                closed bars of the wanted range the store lacks, not
                                  known holes (0 when complete); the wanted range is the config's
                                  history_days within the plan, at the run's start
    cgpreset_series_known_hole_bars             closed bars of the wanted range the API never had
    cgpreset_series_latency_seconds             mean request latency
    (age and timestamp are absent while nothing is stored; missing and known-hole bars for time series
    only, and only when the run knew the key's plan; latency only when a request was made)

    cgpreset_health_exit_code, cgpreset_health_signed_off, cgpreset_health_timestamp_seconds,
    cgpreset_health_rate_limit_per_minute, cgpreset_health_rate_used
    cgpreset_health_shot_ok / _latency_seconds / _last_bar_age_seconds {coin,layer,target}
                                  (target: the call's parameters, e.g. "exchange=OKX,interval=1h,symbol=...")
    cgpreset_stream_events, cgpreset_stream_events_per_minute, cgpreset_stream_reconnects,
    cgpreset_stream_last_event_age_seconds      when a stream has run on the store (read by `health`)

Alert examples: `cgpreset_series_outcome{outcome="failed"} == 1`,
`cgpreset_series_age_bars > cgpreset_series_freshness_limit_bars`, `cgpreset_series_missing_bars > 0`,
`time() - cgpreset_run_end_timestamp_seconds > 7200`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cgpreset.errors import ExitCode
from cgpreset.plans import interval_ms
from cgpreset.run.checks import freshness_limit
from cgpreset.run.health import HealthReport
from cgpreset.run.outcome import EMPTY, FAILED, OK, SKIPPED, RunResult, SeriesResult, totals
from cgpreset.run.series import wanted_range
from cgpreset.store.base import Coverage, spans_in
from cgpreset.timeframes import bar_count, intersect

OUTCOMES = (OK, EMPTY, FAILED, SKIPPED)

Sample = tuple[Mapping[str, str], float]


class _Fixed(Collector):
    """Metric families computed once: a registry serves them as they are (nothing to update)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = [f for f in families if f.samples]  # a family without samples is left out

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


def registry_of(families: Iterable[Metric]) -> CollectorRegistry:
    """A fresh registry holding exactly these families."""
    registry = CollectorRegistry(auto_describe=True)  # checks the names are unique
    registry.register(_Fixed(families))
    return registry


def exposition(registry: CollectorRegistry) -> str:
    """The Prometheus text format (0.0.4) of a registry: what the textfile collector reads."""
    return generate_latest(registry).decode("utf-8")


def gauge(name: str, help_text: str, samples: Iterable[Sample]) -> GaugeMetricFamily:
    """A gauge family; every sample has the same label names (those of the first)."""
    rows = [(dict(labels), value) for labels, value in samples]
    names = list(rows[0][0]) if rows else []
    family = GaugeMetricFamily(name, help_text, labels=names)
    for labels, value in rows:
        family.add_metric([str(labels[k]) for k in names], float(value))
    return family


def one(value: float | None) -> list[Sample]:
    """The single unlabelled sample of a value, none when it is unknown."""
    return [] if value is None else [({}, float(value))]


# -- run-preset ------------------------------------------------------------------------------------

def _labels(r: SeriesResult) -> dict[str, str]:
    s = r.series
    return {"coin": s.coin, "layer": s.layer, "series": s.id, "interval": s.interval}


def _bars(result: RunResult, r: SeriesResult, cov: Coverage | None) -> tuple[int, int] | None:
    """(missing, known-hole) closed bars of the series' wanted range (no --backfill-days cap: what
    the config wants), at the run's start; None for snapshots or when the plan is unknown."""
    s = r.series
    if not s.is_history or result.plan is None:
        return None
    step = interval_ms(s.interval)
    lo, end = wanted_range(s, now_ms=result.now_ms, plan=result.plan)
    _held, known, pending = spans_in(cov, (lo, end - step))
    return bar_count(pending, step), bar_count(intersect([(h.start, h.end) for h in known], (lo, end - step)), step)


def _age_bars(r: SeriesResult, end_ms: int) -> float | None:
    if r.last_closed is None:
        return None
    return max(0.0, (end_ms - r.last_closed) / interval_ms(r.series.interval))


EXIT_CODE_HELP = "Exit code of the latest run (0 ok, 1 findings, 2 config, 3 refused, 75 store or gateway down)."
END_HELP = "When the latest run ended (Unix seconds)."


def stopped_registry(exit_code: int, *, end_s: float) -> CollectorRegistry:
    """A run-preset that ended before it had a result (a config, key or store error): its exit code
    and end time only, pushed beside the group's last metrics (the series' stay as they were)."""
    return registry_of([gauge("cgpreset_run_exit_code", EXIT_CODE_HELP, one(exit_code)),
                        gauge("cgpreset_run_end_timestamp_seconds", END_HELP, one(end_s))])


def run_registry(result: RunResult, *, coverage: Mapping[str, Coverage], end_s: float,
                 shards: int = 1) -> CollectorRegistry:
    """The metrics of one run-preset run that ended at `end_s` (Unix seconds).

    `coverage` is the store's, by series key, read after the run (Store.coverage()): the missing
    and known-hole bars come from it. `shards` is the N of --shard I/N.
    """
    t = totals(result)
    ordered = sorted(result.results, key=lambda r: r.series.id)
    end_ms = int(end_s * 1000)
    bars = {r.series.id: _bars(result, r, coverage.get(r.series.id)) for r in ordered}

    def per_series(value: Callable[[SeriesResult], Any]) -> list[Sample]:
        return [(_labels(r), float(v)) for r in ordered if (v := value(r)) is not None]

    def limit(r: SeriesResult) -> float | None:
        return freshness_limit(r.series.layer, r.series.health) if "freshness" in r.series.spec.checks else None

    return registry_of([
        gauge("cgpreset_run_source", "Where the latest run's data came from (emulator, or the API host).",
              [({"source": result.source}, 1.0)] if result.source else []),
        gauge("cgpreset_run_exit_code", EXIT_CODE_HELP, one(int(result.exit_code))),
        gauge("cgpreset_run_start_timestamp_seconds", "When the latest run started (Unix seconds).",
              one(result.now_ms / 1000)),
        gauge("cgpreset_run_end_timestamp_seconds", END_HELP, one(end_s)),
        gauge("cgpreset_run_duration_seconds", "Duration of the latest run.", one(t["seconds"])),
        gauge("cgpreset_run_requests", "HTTP requests the latest run made (retries included).", one(t["requests"])),
        gauge("cgpreset_run_retries", "Retried requests in the latest run.", one(t["retries"])),
        gauge("cgpreset_run_rate_limited", "Rate-limit answers received in the latest run.", one(t["rate_limited"])),
        gauge("cgpreset_run_rate_wait_seconds", "Wall-clock seconds the latest run waited for the rate budget.",
              one(t["rate_wait_seconds"])),
        gauge("cgpreset_run_series", "Series of the latest run by outcome.",
              [({"outcome": o.value}, float(t[o.value])) for o in OUTCOMES]),
        gauge("cgpreset_run_rows", "Rows the latest run received.", one(t["rows"])),
        gauge("cgpreset_run_new_rows", "Rows the latest run added to the store.", one(t["new_rows"])),
        gauge("cgpreset_run_shards", "Shards the series are split over (the N of --shard I/N; 1 unsharded).",
              one(shards)),
        gauge("cgpreset_series_outcome", "1 for the series' outcome in the latest run, 0 for the others.",
              [({**_labels(r), "outcome": o.value}, float(r.outcome == o)) for r in ordered for o in OUTCOMES]),
        gauge("cgpreset_series_rows", "Rows received for the series.", per_series(lambda r: r.rows)),
        gauge("cgpreset_series_new_rows", "Rows the series added to the store.", per_series(lambda r: r.new_rows)),
        gauge("cgpreset_series_findings", "Failed health checks of the series.", per_series(lambda r: len(r.findings))),
        gauge("cgpreset_series_requests", "Requests made for the series.", per_series(lambda r: r.requests)),
        gauge("cgpreset_series_last_bar_age_seconds", "Seconds since the series' last stored bar closed.",
              per_series(lambda r: r.last_bar_age_s(result.now_ms))),
        gauge("cgpreset_series_last_closed_bar_timestamp_seconds",
              "Open time of the series' last closed bar stored (Unix seconds).",
              per_series(lambda r: None if r.last_closed is None else r.last_closed / 1000)),
        gauge("cgpreset_series_age_bars", "Bars since the last closed bar stored opened, at the run's end.",
              per_series(lambda r: _age_bars(r, end_ms))),
        gauge("cgpreset_series_interval_seconds", "The series' bar length.",
              per_series(lambda r: interval_ms(r.series.interval) / 1000)),
        gauge("cgpreset_series_freshness_limit_bars", "The age in bars the series' freshness check allows.",
              per_series(limit)),
        gauge("cgpreset_series_missing_bars", "Closed bars of the wanted range the store lacks (not known holes).",
              per_series(lambda r: None if (b := bars[r.series.id]) is None else b[0])),
        gauge("cgpreset_series_known_hole_bars", "Closed bars of the wanted range the API answered without, "
              "repeatedly (known holes).", per_series(lambda r: None if (b := bars[r.series.id]) is None else b[1])),
        gauge("cgpreset_series_latency_seconds", "Mean request latency of the series.",
              per_series(lambda r: None if r.latency_ms is None else r.latency_ms / 1000)),
    ])


# -- health ----------------------------------------------------------------------------------------

def health_registry(report: HealthReport) -> CollectorRegistry:
    """The metrics of one health sign-off."""
    def target(params: Mapping[str, Any]) -> str:  # what was asked: two configs of one coin may differ
        return ",".join(f"{k}={params[k]}" for k in sorted(params) if k != "limit")

    shots = sorted(report.shots, key=lambda s: (s.coin, s.layer, target(s.params)))

    def per_shot(value: Callable[[Any], Any]) -> list[Sample]:
        out: list[Sample] = []
        seen: set[tuple[str, str, str]] = set()
        for s in shots:
            v, key = value(s), (s.coin, s.layer, target(s.params))
            if v is not None and key not in seen:  # the same call twice is one series
                seen.add(key)
                out.append(({"coin": s.coin, "layer": s.layer, "target": key[2]}, float(v)))
        return out

    rate_max = report.rate_max or (report.plan.rate_per_minute if report.plan else None)
    live = report.liveness or {}
    return registry_of([
        gauge("cgpreset_health_source", "Where the latest sign-off's shots went (emulator, or the API host).",
              [({"source": report.source}, 1.0)] if report.source else []),
        gauge("cgpreset_health_exit_code", "Exit code of the latest sign-off.", one(int(report.exit_code))),
        gauge("cgpreset_health_signed_off", "1 if the latest sign-off passed.",
              one(1.0 if report.exit_code == ExitCode.OK else 0.0)),
        gauge("cgpreset_health_timestamp_seconds", "When the latest sign-off ran (Unix seconds).",
              one(report.now_ms / 1000)),
        gauge("cgpreset_health_rate_limit_per_minute", "The key's request budget per minute.", one(rate_max)),
        gauge("cgpreset_health_rate_used", "Requests used this minute, per API-KEY-USE-LIMIT.", one(report.rate_used)),
        gauge("cgpreset_health_shot_ok", "1 if the layer's shot came back ok.",
              per_shot(lambda s: 1.0 if s.outcome == OK else 0.0)),
        gauge("cgpreset_health_shot_latency_seconds", "Latency of the layer's shot.",
              per_shot(lambda s: None if s.latency_ms is None else s.latency_ms / 1000)),
        gauge("cgpreset_health_shot_last_bar_age_seconds", "Seconds since the shot's last closed bar opened.",
              per_shot(lambda s: None if s.last_bar is None else max(0.0, (report.now_ms - s.last_bar) / 1000))),
        gauge("cgpreset_stream_events", "Events of the latest stream run.", one(live.get("events"))),
        gauge("cgpreset_stream_events_per_minute", "Events per minute of the latest stream run.",
              one(live.get("events_per_minute"))),
        gauge("cgpreset_stream_reconnects", "Reconnects of the latest stream run.", one(live.get("reconnects"))),
        gauge("cgpreset_stream_last_event_age_seconds", "Seconds since the latest stream event.",
              one(live.get("last_event_age_s"))),
    ])
