"""`cgpreset doctor --probe`: is the API still the one our catalogue describes?

One small call per catalogue endpoint the key's plan allows (BTC, Binance, a few bars), and a
comparison of what came back with `catalogue.py`: which spelling of each field the server uses
(`longLiquidation_usd` or `long_liquidation_usd`, spec §6.7), which JSON types its values have
(numbers as strings, or mixed, spec §4), fields we do not know, and real drift: a required field
gone, a number that is not one, timestamps that are not milliseconds. Run it once with a real key
to settle what the spec marks UNCERTAIN; run it against `cgpreset emulator` to compare.

`inspect` is pure (data in, findings out); `run_probe` makes the calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cgpreset.api.catalogue import ENDPOINTS, Endpoint
from cgpreset.errors import ApiError, ExitCode, outcome_exit_code
from cgpreset.plans import Plan

MATCH, DRIFT, EMPTY, FAILED, SKIPPED = "match", "drift", "empty", "failed", "skipped"
PROBE_COIN, PROBE_EXCHANGE, PROBE_PAIR = "BTC", "Binance", "BTCUSDT"
_MS_LOW, _MS_HIGH = 10**11, 10**14  # plausible epoch milliseconds: 1973 .. 5138


@dataclass
class FieldSeen:
    """How one catalogue field came back: the spellings used and the JSON types of its values."""

    name: str
    spellings: list[str] = field(default_factory=list)  # empty: absent in every row
    types: list[str] = field(default_factory=list)  # JSON types: "string", "number", "boolean", "null", ...

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spellings": self.spellings, "types": self.types}


@dataclass
class Inspection:
    """What `inspect` found in one `data`."""

    rows: int
    fields: list[FieldSeen]
    unknown: list[str]  # fields the catalogue does not list
    problems: list[str]  # drift: what would make cgpreset fail or misread the data


@dataclass
class ProbeResult:
    """One endpoint's probe."""

    endpoint: Endpoint
    params: dict[str, Any]
    outcome: str
    reason: str | None = None
    latency_ms: float | None = None
    inspection: Inspection | None = None
    error: ApiError | None = None

    def as_dict(self) -> dict[str, Any]:
        ins = self.inspection
        return {
            "endpoint": self.endpoint.id,
            "path": self.endpoint.path,
            "params": self.params,
            "outcome": self.outcome,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "rows": None if ins is None else ins.rows,
            "fields": [] if ins is None else [f.as_dict() for f in ins.fields],
            "unknown_fields": [] if ins is None else ins.unknown,
            "problems": [] if ins is None else ins.problems,
            "error": None if self.error is None else {"kind": self.error.kind.value, "message": str(self.error)},
        }


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):  # JSON has one number type: 0 and 0.5 are both numbers
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _rows(endpoint: Endpoint, data: Any) -> tuple[list[Any], list[str]]:
    """The rows to inspect and any problem with the shape of `data` itself."""
    if endpoint.data == "rows":
        return (data, []) if isinstance(data, list) else ([], [f"`data` is {_json_type(data)}, expected a list"])
    if endpoint.data == "object":
        return ([data], []) if isinstance(data, dict) else ([], [f"`data` is {_json_type(data)}, expected an object"])
    if endpoint.data == "rows_by_exchange":
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            return [], ["`data` is not an object of exchange -> list of instruments"]
        return [row for rows in data.values() for row in rows], []
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):  # "strings"
        return [], ["`data` should be a list of strings"]
    return [], []


def _value_problem(endpoint: Endpoint, name: str, ftype: str, value: Any) -> str | None:
    if value is None:
        return None
    if ftype in ("number", "int"):
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            return f"{name}: {value!r} is not a number"
        if ftype == "int" and name in ("time", "timestamp") and not _MS_LOW <= number < _MS_HIGH:
            unit = "seconds" if number < _MS_LOW else "micro- or nanoseconds"
            return f"{name}: {value!r} looks like {unit}, not epoch milliseconds"
    elif ftype == "str" and not isinstance(value, str):
        return f"{name}: {value!r} is not a string"
    return None


def inspect(endpoint: Endpoint, data: Any) -> Inspection:
    """Compare one endpoint's `data` with the catalogue (pure)."""
    rows, problems = _rows(endpoint, data)
    if endpoint.data == "strings":
        return Inspection(len(data) if isinstance(data, list) else 0, [], [], problems)
    dict_rows = [r for r in rows if isinstance(r, dict)]
    if len(dict_rows) < len(rows):
        problems.append(f"{len(rows) - len(dict_rows)} of {len(rows)} rows are not objects")
    known: set[str] = set()
    seen: list[FieldSeen] = []
    for f in endpoint.fields:
        names = (f.name, *f.aliases)
        known.update(names)
        fs = FieldSeen(f.name)
        missing = 0
        for row in dict_rows:
            present = next((n for n in names if n in row), None)
            if present is None:
                missing += 1
                continue
            if present not in fs.spellings:
                fs.spellings.append(present)
            kind = _json_type(row[present])
            if kind not in fs.types:
                fs.types.append(kind)
            problem = _value_problem(endpoint, present, f.type, row[present])
            if problem and problem not in problems:
                problems.append(problem)
        if missing and f.required:
            problems.append(f"no field {f.name!r} in {missing} of {len(dict_rows)} rows"
                            + (f" (nor {', '.join(map(repr, f.aliases))})" if f.aliases else ""))
        fs.types.sort()
        seen.append(fs)
    unknown = sorted({str(k) for row in dict_rows for k in row} - known)
    return Inspection(len(rows), seen, unknown, problems)


def probe_params(endpoint: Endpoint, plan: Plan) -> dict[str, Any]:
    """Small, valid parameters for one endpoint on a plan: BTC, Binance, a few bars."""
    interval = "1h" if plan.allows_interval("1h") else plan.interval_floor
    candidates: dict[str, Any] = {
        "symbol": PROBE_PAIR if endpoint.scope == "pair" else PROBE_COIN,
        "exchange": PROBE_EXCHANGE,
        "exchange_list": PROBE_EXCHANGE,
        "interval": interval,
        "range": "1h",
        "limit": 3,
        "per_page": 10,
        "page": 1,
    }
    wanted = [*endpoint.required, *(p for p in ("exchange", "symbol", "limit", "per_page", "page")
                                    if p in endpoint.optional)]
    return {p: candidates[p] for p in wanted if p in candidates}


def probe_one(client: Any, endpoint: Endpoint, plan: Plan) -> ProbeResult:
    params = probe_params(endpoint, plan)
    if not plan.at_least(endpoint.min_plan):
        return ProbeResult(endpoint, params, SKIPPED, reason=f"needs the {endpoint.min_plan.value} plan")
    try:
        response = client.request(endpoint, params)
    except ApiError as exc:
        return ProbeResult(endpoint, params, FAILED, reason=str(exc), error=exc)
    ins = inspect(endpoint, response.data)
    latency = round(response.latency * 1000, 1)
    if ins.problems:
        return ProbeResult(endpoint, params, DRIFT, "; ".join(ins.problems), latency, ins)
    if ins.rows == 0:
        return ProbeResult(endpoint, params, EMPTY, "code 0 but no rows", latency, ins)
    return ProbeResult(endpoint, params, MATCH, None, latency, ins)


def run_probe(client: Any, plan: Plan, endpoints: Iterable[Endpoint] | None = None) -> list[ProbeResult]:
    """Probe every catalogue endpoint (in catalogue order) with the key's plan."""
    return [probe_one(client, ep, plan) for ep in (endpoints or ENDPOINTS.values())]


def probe_exit_code(results: list[ProbeResult]) -> ExitCode:
    """OK everything matches (or was skipped); API the API refused every call; FINDINGS otherwise."""
    return outcome_exit_code([r.error if r.outcome == FAILED else None for r in results if r.outcome != SKIPPED],
                             all_ok=all(r.outcome in (MATCH, SKIPPED) for r in results))


def describe_fields(result: ProbeResult) -> str:
    """A compact summary for the table: each field served, `name as spelling` where the server
    spells it differently, its JSON types (not for epoch-number time fields), and how many fields
    cgpreset does not use."""
    ins = result.inspection
    if ins is None:
        return ""
    parts = []
    for f in ins.fields:
        if not f.spellings:
            continue
        spelled = "/".join(f.spellings)
        shown = f.name if spelled == f.name else f"{f.name} as {spelled}"
        if f.types != ["number"] or f.name not in ("time", "timestamp", "expire_time"):
            shown += f" ({'+'.join(f.types)})"
        parts.append(shown)
    if ins.unknown:
        parts.append(f"+{len(ins.unknown)} field(s) cgpreset does not use")
    return "; ".join(parts)


__all__ = [
    "DRIFT", "EMPTY", "FAILED", "MATCH", "SKIPPED", "FieldSeen", "Inspection", "ProbeResult",
    "describe_fields", "inspect", "probe_exit_code", "probe_one", "probe_params", "run_probe",
]
