"""Run history and cursors as the operator reads them: `cgpreset runs` and `cgpreset cursors` (pure: no I/O).

JSON schemas (stable; fields are only ever added):

    cgpreset.runs/1:    {"schema", "store", "runs": [RUN]}
    cgpreset.run-detail/1: {"schema", "store", "run": RUN + {"series": [{"id", "coin", "layer",
                        "outcome", "reason", "rows", "new_rows", "findings", "error_kind"}]}}
    RUN:                {"id", "status", "started_at", "ended_at" (ms, UTC), "duration_seconds",
                         "exit_code", "requests", "retries", "rate_limited", "rate_wait_seconds",
                         "plan", "outcomes": {"ok": 8, "failed": 1, ...},
                         "shard" ("0/4" or null), "job" (CGPRESET_JOB or null),
                         "rows", "new_rows" (stored by the run's series, those under way when it stopped too)}
    cgpreset.cursors/1: {"schema", "store", "cursors": [{"series", "coin", "layer", "last_closed",
                         "earliest", "latest"}]}   # times: ms since the epoch (UTC), or null
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.table import Table

from cgpreset.cli.present.text import droppable, format_age, format_time
from cgpreset.plans import INTERVAL_MS
from cgpreset.run.outcome import Outcome
from cgpreset.store.base import Coverage, Cursor

RUNS_SCHEMA = "cgpreset.runs/1"
RUN_DETAIL_SCHEMA = "cgpreset.run-detail/1"
CURSORS_SCHEMA = "cgpreset.cursors/1"
#: The order outcomes are counted in (any other outcome a store holds follows, by name).
OUTCOME_ORDER = tuple(o.value for o in Outcome)  # ok, empty, failed, skipped


def series_parts(key: str) -> tuple[str, str]:
    """(coin, layer) of a series key such as `funding/SOL/Binance:SOLUSDT/1h`."""
    parts = key.split("/")
    return (parts[1] if len(parts) > 1 else "-"), parts[0]


def outcome_counts(outcomes: Mapping[str, Any] | None) -> dict[str, int]:
    """How many series of a run ended in each outcome, in OUTCOME_ORDER."""
    counts = Counter(str(v.get("outcome")) for v in (outcomes or {}).values() if isinstance(v, Mapping))
    order = [o for o in OUTCOME_ORDER if counts[o]] + sorted(o for o in counts if o not in OUTCOME_ORDER)
    return {o: counts[o] for o in order}


def _series_entries(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in (row.get("outcomes") or {}).values() if isinstance(v, Mapping)]


def _label(row: Mapping[str, Any], name: str) -> str | None:
    """The run's shard or job, as its series' outcomes carry it (the runs row has no column for it)."""
    return next((str(v[name]) for v in _series_entries(row) if v.get(name) is not None), None)


def run_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """One runs-table row as the JSON documents show it."""
    start, end = row.get("started_at"), row.get("ended_at")
    entries = _series_entries(row)
    return {
        "id": int(row["id"]),
        "status": row.get("status") or "finished",
        "started_at": start,
        "ended_at": end,
        "duration_seconds": None if start is None or end is None else round((end - start) / 1000, 1),
        "exit_code": row.get("exit_code"),
        "requests": int(row.get("requests") or 0),
        "retries": int(row.get("retries") or 0),
        "rate_limited": int(row.get("rate_limited") or 0),
        "rate_wait_seconds": float(row.get("rate_wait_seconds") or 0.0),
        "plan": row.get("plan"),
        "source": row.get("source"),  # where the data came from: "emulator" or the API's host
        "outcomes": outcome_counts(row.get("outcomes")),
        "shard": _label(row, "shard"),
        "job": _label(row, "job"),
        "rows": sum(int(v.get("rows") or 0) for v in entries),
        "new_rows": sum(int(v.get("new_rows") or 0) for v in entries),
    }


def runs_json(rows: Iterable[Mapping[str, Any]], *, store: str) -> dict[str, Any]:
    return {"schema": RUNS_SCHEMA, "store": store, "runs": [run_dict(r) for r in rows]}


#: Short names of outcomes in the 80-column runs table.
_SHORT = {"failed": "fail", "skipped": "skip"}


def _counts_cell(counts: Mapping[str, int], *, short: bool = False) -> str:
    if short:
        return " ".join(f"{n} {_SHORT.get(o, o)}" for o, n in counts.items()) or "-"
    return ", ".join(f"{n} {o}" for o, n in counts.items()) or "-"


def _duration(d: Mapping[str, Any]) -> str:
    return "-" if d["duration_seconds"] is None else format_age(d["duration_seconds"])


def runs_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """One line per run, newest last; fits 80 columns (rate-limit answers as `429s`). Runs of a shard
    or a scheduler's job (CGPRESET_JOB) add a `shard` and a `job` column (`-` for the others; the job
    goes first where the table does not fit)."""
    runs = [run_dict(row) for row in rows]
    labels = [name for name in ("shard", "job") if any(d[name] is not None for d in runs)]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("id", "right"), ("status", "left"), ("start (UTC)", "left"), ("took", "right"),
                          ("exit", "right"), ("req", "right"), ("429s", "right"),
                          *((name, "left") for name in labels), ("series", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for d in runs:
        table.add_row(str(d["id"]), d["status"], format_time(d["started_at"]), _duration(d),
                      "-" if d["exit_code"] is None else str(d["exit_code"]), str(d["requests"]),
                      str(d["rate_limited"]), *(d[name] or "-" for name in labels),
                      _counts_cell(d["outcomes"], short=True))
    return droppable(table, "job")


def run_series(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A run's per-series outcomes, by series key."""
    out = []
    for key, v in sorted((row.get("outcomes") or {}).items()):
        v = v if isinstance(v, Mapping) else {}
        coin, layer = series_parts(key)
        out.append({"id": key, "coin": coin, "layer": layer, "outcome": v.get("outcome"),
                    "reason": v.get("reason"), "rows": v.get("rows"), "new_rows": v.get("new_rows"),
                    "findings": list(v.get("findings") or []), "error_kind": v.get("error_kind")})
    return out


def run_detail_json(row: Mapping[str, Any], *, store: str) -> dict[str, Any]:
    return {"schema": RUN_DETAIL_SCHEMA, "store": store, "run": {**run_dict(row), "series": run_series(row)}}


def run_detail_lines(row: Mapping[str, Any]) -> list[str]:
    """The lines above `runs show`'s table."""
    d = run_dict(row)
    where = "".join(f", {name} {d[name]}" for name in ("shard", "job") if d[name] is not None)
    return [
        f"run {d['id']}: {d['status']}, exit {'-' if d['exit_code'] is None else d['exit_code']}, "
        f"started {format_time(d['started_at'])}, took {_duration(d)}{where}",
        f"{d['requests']} requests, {d['retries']} retries, {d['rate_limited']} rate-limit answers, "
        f"{d['rate_wait_seconds']:.1f}s waiting for the rate budget; plan {d['plan'] or '-'}, "
        f"source {d['source'] or '-'}",
        f"series: {_counts_cell(d['outcomes'])}; {d['rows']} rows stored ({d['new_rows']} new)",
    ]


def run_detail_table(row: Mapping[str, Any]) -> Table:
    """coin × layer of one run: outcome, rows, new, findings or reason."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in (("coin", "left"), ("layer", "left"), ("outcome", "left"), ("rows", "right"),
                          ("new", "right"), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for s in run_series(row):
        note = s["reason"] or (("findings: " + ", ".join(s["findings"])) if s["findings"] else "")
        if s["error_kind"]:
            note = f"{s['error_kind']}: {note}" if note else s["error_kind"]
        table.add_row(s["coin"], s["layer"], str(s["outcome"]), "-" if s["rows"] is None else str(s["rows"]),
                      "-" if s["new_rows"] is None else str(s["new_rows"]), note)
    return droppable(table, "new")


#: A series as `cursors` shows it: where it stands, and what it holds and lacks.
SeriesState = tuple[Cursor, Coverage | None]


def cursor_rows(states: Mapping[str, SeriesState]) -> list[dict[str, Any]]:
    out = []
    for key in sorted(states):
        c, cov = states[key]
        coin, layer = series_parts(key)
        step = INTERVAL_MS.get(key.rsplit("/", 1)[-1], 0)
        holes = [{"start": h.start, "end": h.end, "bars": (h.end - h.start) // step if step else None,
                  "attempts": h.attempts, "known": h.known, "reason": h.reason} for h in (cov.holes if cov else ())]
        out.append({"series": key, "coin": coin, "layer": layer, "last_closed": c.last_closed,
                    "earliest": c.earliest, "latest": c.latest, "retired_at": c.retired_at,
                    "spans": [list(sp) for sp in (cov.spans if cov else ())], "holes": holes})
    return out


def cursors_json(states: Mapping[str, SeriesState], *, store: str) -> dict[str, Any]:
    return {"schema": CURSORS_SCHEMA, "store": store, "cursors": cursor_rows(states)}


def _holes_cell(holes: list[dict[str, Any]]) -> str:
    """`-`, or e.g. `1 known (1200 bars), 1 pending (3 bars)`."""
    parts = []
    for known, word in ((True, "known"), (False, "pending")):
        these = [h for h in holes if h["known"] == known]
        if these:
            bars = sum(h["bars"] or 0 for h in these)
            parts.append(f"{len(these)} {word} ({bars} bar{'s' if bars != 1 else ''})")
    return ", ".join(parts) or "-"


def cursors_table(states: Mapping[str, SeriesState]) -> Table:
    """One line per series: its cursor (last closed bar), the earliest bar stored, the holes the
    API answered without (known ones are no longer asked for), and whether it is retired."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("series", "cursor (UTC)", "earliest (UTC)", "holes", "status"):
        table.add_column(name, overflow="fold")
    for c in cursor_rows(states):
        status = "current" if c["retired_at"] is None else f"retired {format_time(c['retired_at'])}"
        table.add_row(c["series"], format_time(c["last_closed"]), format_time(c["earliest"]),
                      _holes_cell(c["holes"]), status)
    return droppable(table, "earliest (UTC)")


def match_series(keys: Iterable[str], pattern: str) -> list[str]:
    """Series keys matching a shell-style PATTERN (`funding/*`, `*/SOL/*`, or one exact key), sorted."""
    return sorted(k for k in keys if fnmatch.fnmatchcase(k, pattern) or k == pattern)
