"""Prometheus text-format metrics of a run or a health sign-off (pure: no I/O, no clock).

`run-preset --metrics FILE` and `health --metrics FILE` write these for node_exporter's textfile
collector (the file is replaced atomically, as the collector requires). Every value is a gauge
describing the latest run; names and labels are stable:

    cgpreset_run_source{source}, cgpreset_health_source{source}   1, labelled with the data's source:
                                  "emulator" (the embedded one) or the API's host name
    cgpreset_run_exit_code, cgpreset_run_end_timestamp_seconds, cgpreset_run_duration_seconds,
    cgpreset_run_requests, cgpreset_run_retries, cgpreset_run_rate_limited,
    cgpreset_run_rate_wait_seconds, cgpreset_run_series{outcome}, cgpreset_run_rows,
    cgpreset_run_new_rows
    cgpreset_series_outcome{coin,layer,series,outcome}   1 for the series' outcome, 0 for the others
    cgpreset_series_rows / _new_rows / _findings / _requests {coin,layer,series}
    cgpreset_series_last_bar_age_seconds {coin,layer,series}   absent when nothing is stored yet
    cgpreset_series_latency_seconds {coin,layer,series}        absent when no request was made

    cgpreset_health_exit_code, cgpreset_health_signed_off, cgpreset_health_timestamp_seconds,
    cgpreset_health_rate_limit_per_minute, cgpreset_health_rate_used
    cgpreset_health_shot_ok / _latency_seconds / _last_bar_age_seconds {coin,layer,target}
                                  (target: the call's parameters, e.g. "exchange=OKX,interval=1h,symbol=...")
    cgpreset_stream_events, cgpreset_stream_events_per_minute, cgpreset_stream_reconnects,
    cgpreset_stream_last_event_age_seconds                      when a stream has run on the store

Alert examples: `cgpreset_series_outcome{outcome="failed"} == 1`,
`cgpreset_series_last_bar_age_seconds > 3 * 3600`, `time() - cgpreset_run_end_timestamp_seconds > 7200`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from cgpreset.errors import ExitCode
from cgpreset.run.health import HealthReport
from cgpreset.run.outcome import EMPTY, FAILED, OK, SKIPPED, RunResult
from cgpreset.run.report import totals

OUTCOMES = (OK, EMPTY, FAILED, SKIPPED)

Sample = tuple[Mapping[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _family(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    rows = [(dict(labels), value) for labels, value in samples]
    if not rows:
        return []
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in rows:
        inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
    return lines


def render(families: Iterable[list[str]]) -> str:
    return "\n".join(line for family in families for line in family) + "\n"


def run_metrics(result: RunResult, *, end_s: float) -> str:
    """The metrics of one run-preset run that ended at `end_s` (Unix seconds)."""
    t = totals(result)
    ordered = sorted(result.results, key=lambda r: r.series.id)

    def per_series(value: Any) -> list[Sample]:
        out: list[Sample] = []
        for r in ordered:
            v = value(r)
            if v is not None:
                out.append(({"coin": r.series.coin, "layer": r.series.layer, "series": r.series.id}, float(v)))
        return out

    outcome_samples: list[Sample] = [
        ({"coin": r.series.coin, "layer": r.series.layer, "series": r.series.id, "outcome": o},
         1.0 if r.outcome == o else 0.0)
        for r in ordered for o in OUTCOMES
    ]
    return render([
        _family("cgpreset_run_source", "Where the latest run's data came from (emulator, or the API host).",
                [({"source": result.source}, 1.0)] if result.source else []),
        _family("cgpreset_run_exit_code", "Exit code of the latest run (0 ok, 1 findings, 3 refused).",
                [({}, float(result.exit_code))]),
        _family("cgpreset_run_end_timestamp_seconds", "When the latest run ended (Unix seconds).", [({}, end_s)]),
        _family("cgpreset_run_duration_seconds", "Duration of the latest run.", [({}, float(t["seconds"]))]),
        _family("cgpreset_run_requests", "HTTP requests the latest run made (retries included).",
                [({}, float(t["requests"]))]),
        _family("cgpreset_run_retries", "Retried requests in the latest run.", [({}, float(t["retries"]))]),
        _family("cgpreset_run_rate_limited", "Rate-limit answers received in the latest run.",
                [({}, float(t["rate_limited"]))]),
        _family("cgpreset_run_rate_wait_seconds", "Wall-clock seconds the latest run waited for the rate budget.",
                [({}, float(t["rate_wait_seconds"]))]),
        _family("cgpreset_run_series", "Series of the latest run by outcome.",
                [({"outcome": o}, float(t[o])) for o in OUTCOMES]),
        _family("cgpreset_run_rows", "Rows the latest run received.", [({}, float(t["rows"]))]),
        _family("cgpreset_run_new_rows", "Rows the latest run added to the store.", [({}, float(t["new_rows"]))]),
        _family("cgpreset_series_outcome", "1 for the series' outcome in the latest run, 0 for the others.",
                outcome_samples),
        _family("cgpreset_series_rows", "Rows received for the series.", per_series(lambda r: r.rows)),
        _family("cgpreset_series_new_rows", "Rows the series added to the store.", per_series(lambda r: r.new_rows)),
        _family("cgpreset_series_findings", "Failed health checks of the series.",
                per_series(lambda r: len(r.findings))),
        _family("cgpreset_series_requests", "Requests made for the series.", per_series(lambda r: r.requests)),
        _family("cgpreset_series_last_bar_age_seconds", "Seconds since the series' last stored bar closed.",
                per_series(lambda r: r.last_bar_age_s(result.now_ms))),
        _family("cgpreset_series_latency_seconds", "Mean request latency of the series.",
                per_series(lambda r: None if r.latency_ms is None else r.latency_ms / 1000)),
    ])


def health_metrics(report: HealthReport) -> str:
    """The metrics of one health sign-off."""
    def target(params: Mapping[str, Any]) -> str:  # what was asked: two configs of one coin may differ
        return ",".join(f"{k}={params[k]}" for k in sorted(params) if k != "limit")

    shots = sorted(report.shots, key=lambda s: (s.coin, s.layer, target(s.params)))

    def per_shot(value: Any) -> list[Sample]:
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
    stream = [
        _family("cgpreset_stream_events", "Events of the latest stream run.",
                [({}, float(live["events"]))] if live.get("events") is not None else []),
        _family("cgpreset_stream_events_per_minute", "Events per minute of the latest stream run.",
                [({}, float(live["events_per_minute"]))] if live.get("events_per_minute") is not None else []),
        _family("cgpreset_stream_reconnects", "Reconnects of the latest stream run.",
                [({}, float(live["reconnects"]))] if live.get("reconnects") is not None else []),
        _family("cgpreset_stream_last_event_age_seconds", "Seconds since the latest stream event.",
                [({}, float(live["last_event_age_s"]))] if live.get("last_event_age_s") is not None else []),
    ]
    return render([
        _family("cgpreset_health_source", "Where the latest sign-off's shots went (emulator, or the API host).",
                [({"source": report.source}, 1.0)] if report.source else []),
        _family("cgpreset_health_exit_code", "Exit code of the latest sign-off.", [({}, float(report.exit_code))]),
        _family("cgpreset_health_signed_off", "1 if the latest sign-off passed.",
                [({}, 1.0 if report.exit_code == ExitCode.OK else 0.0)]),
        _family("cgpreset_health_timestamp_seconds", "When the latest sign-off ran (Unix seconds).",
                [({}, report.now_ms / 1000)]),
        _family("cgpreset_health_rate_limit_per_minute", "The key's request budget per minute.",
                [({}, float(rate_max))] if rate_max is not None else []),
        _family("cgpreset_health_rate_used", "Requests used this minute, per API-KEY-USE-LIMIT.",
                [({}, float(report.rate_used))] if report.rate_used is not None else []),
        _family("cgpreset_health_shot_ok", "1 if the layer's shot came back ok.",
                per_shot(lambda s: 1.0 if s.outcome == OK else 0.0)),
        _family("cgpreset_health_shot_latency_seconds", "Latency of the layer's shot.",
                per_shot(lambda s: None if s.latency_ms is None else s.latency_ms / 1000)),
        _family("cgpreset_health_shot_last_bar_age_seconds", "Seconds since the shot's last bar opened.",
                per_shot(lambda s: None if s.last_bar is None else max(0.0, (report.now_ms - s.last_bar) / 1000))),
        *stream,
    ])
