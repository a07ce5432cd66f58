"""`cgpreset doctor --probe`: is the API still the one our catalogue describes?

One small call per endpoint the key's plan allows (discovery's, and every layer of the active
catalogue: the shipped definitions and a repo's own; BTC, Binance, a few bars), and a comparison
of what came back with the definitions: real drift, in the words of run-preset's own decoder (a
required field gone, a number that is not one: the answer run-preset would refuse) and a time
not in the unit the definition names (seconds for milliseconds or the reverse); and what is
served: which spelling of each field (`longLiquidation_usd` as real answers have it, or
`long_liquidation_usd` as the docs do), which JSON types its values have (numbers as strings, or
mixed), fields we do not know. Run it once with a real key to settle what the docs leave open;
run it against `cgpreset emulator` to compare.

`inspect` is pure (data in, findings out); `run_probe` makes the calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cgpreset import layers
from cgpreset.api.catalogue import ENDPOINTS, Endpoint
from cgpreset.api.rows import decode_rows, parse_data
from cgpreset.errors import ApiError, ExitCode, MalformedResponseError, outcome_exit_code
from cgpreset.layers import LayerSpec
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
    problems: list[str]  # drift: what would make cgpreset fail (the decoder's words) or misread the data


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


def _rows(endpoint: Endpoint, data: Any) -> list[dict[str, Any]]:
    """The row objects of `data` whose fields are compared (nothing where its shape is wrong:
    the decoder names that)."""
    if endpoint.data == "rows":
        rows = data if isinstance(data, list) else []
    elif endpoint.data == "object":
        rows = [data]
    elif endpoint.data == "rows_by_exchange" and isinstance(data, dict):
        rows = [row for rows in data.values() if isinstance(rows, list) for row in rows]
    else:
        rows = []
    return [r for r in rows if isinstance(r, dict)]


def _unit(value: int) -> str:
    return "seconds" if value < _MS_LOW else "milliseconds" if value < _MS_HIGH else "micro- or nanoseconds"


def _time_problem(endpoint: Endpoint, rows: list[dict[str, Any]]) -> str | None:
    """The first time that is not in the unit the definition names (the decoder made it ms)."""
    tf = endpoint.time_field
    declared = {"ms": "milliseconds", "s": "seconds"}[endpoint.time_unit]
    for row in rows:
        if tf is None or row.get(tf) is None:
            continue
        sent = row[tf] // 1000 if endpoint.time_unit == "s" else row[tf]
        if _unit(sent) != declared:
            return f"{tf}: {sent!r} looks like {_unit(sent)}, not epoch {declared}"
    return None


def inspect(endpoint: Endpoint, data: Any) -> Inspection:
    """Compare one endpoint's `data` (its JSON text as it came, or parsed) with the definition
    (pure): run-preset's decoder takes it or says why not (the same words), the time is in the
    unit the definition names, and each field's spellings and JSON types as served."""
    problems: list[str] = []
    typed: Any = None
    try:
        typed = decode_rows(endpoint, data).dicts() if endpoint.data == "rows" else parse_data(endpoint, _parsed(data))
    except MalformedResponseError as exc:
        problems.append(exc.message)
    if endpoint.data == "rows" and typed and (problem := _time_problem(endpoint, typed)):
        problems.append(problem)
    try:
        data = _parsed(data)
    except MalformedResponseError:
        return Inspection(0, [], [], problems)
    if endpoint.data == "strings":
        return Inspection(len(data) if isinstance(data, list) else 0, [], [], problems)
    rows = _rows(endpoint, data)
    known: set[str] = set()
    seen: list[FieldSeen] = []
    for f in endpoint.fields:
        names = (f.name, *f.aliases)
        known.update(names)
        fs = FieldSeen(f.name)
        for row in rows:
            present = next((n for n in names if n in row), None)
            if present is None:
                continue
            if present not in fs.spellings:
                fs.spellings.append(present)
            kind = _json_type(row[present])
            if kind not in fs.types:
                fs.types.append(kind)
        fs.types.sort()
        seen.append(fs)
    unknown = sorted({str(k) for row in rows for k in row} - known)
    count = len(data) if endpoint.data == "rows" and isinstance(data, list) else len(rows)
    return Inspection(count, seen, unknown, problems)


def _parsed(data: Any) -> Any:
    """`data` as Python objects (JSON text is parsed; a number beyond a float is malformed)."""
    if not isinstance(data, bytes):
        return data
    try:
        return msgspec.json.decode(data) if data.strip() else None
    except msgspec.DecodeError as exc:
        raise MalformedResponseError(f"`data`: {exc}") from None


def _layer(endpoint: Endpoint) -> LayerSpec | None:
    """The active catalogue's layer served by `endpoint` (None for discovery's endpoints)."""
    return next((ls for ls in layers.catalogue().values() if ls.endpoint_id == endpoint.id), None)


def probe_params(endpoint: Endpoint, plan: Plan) -> dict[str, Any]:
    """Small, valid parameters for one endpoint on a plan: BTC, Binance, a few bars, at an
    interval and a range the layer's definition allows, with the parameters it always sends."""
    ls = _layer(endpoint)
    if ls is None:
        interval = "1h" if plan.allows_interval("1h") else plan.interval_floor
    else:
        interval = "1h" if not ls.floor or ls.allows(plan, "1h") else ls.floor_for(plan)
    ranges = list(ls.range_buckets) if ls is not None else []
    candidates: dict[str, Any] = {
        "symbol": PROBE_PAIR if endpoint.scope == "pair" else PROBE_COIN,
        "exchange": PROBE_EXCHANGE,
        "exchange_list": PROBE_EXCHANGE,
        "interval": interval,
        "range": "1h" if not ranges or "1h" in ranges else ranges[0],
        "limit": 3,
        "per_page": 10,
        "page": 1,
    }
    wanted = [*endpoint.required, *(p for p in ("exchange", "symbol", "limit", "per_page", "page")
                                    if p in endpoint.optional)]
    params = {p: candidates[p] for p in wanted if p in candidates}
    return {**params, **(ls.fixed_params if ls is not None else {})}


def probe_one(client: Any, endpoint: Endpoint, plan: Plan) -> ProbeResult:
    params = probe_params(endpoint, plan)
    if not plan.at_least(endpoint.min_plan):
        return ProbeResult(endpoint, params, SKIPPED, reason=f"needs the {endpoint.min_plan.value} plan")
    try:
        response = client.request(endpoint, params)
    except ApiError as exc:
        return ProbeResult(endpoint, params, FAILED, reason=str(exc), error=exc)
    ins = inspect(endpoint, response.raw if response.raw is not None else response.data)
    latency = round(response.latency * 1000, 1)
    if ins.problems:
        return ProbeResult(endpoint, params, DRIFT, "; ".join(ins.problems), latency, ins)
    if ins.rows == 0:
        return ProbeResult(endpoint, params, EMPTY, "code 0 but no rows", latency, ins)
    return ProbeResult(endpoint, params, MATCH, None, latency, ins)


def run_probe(client: Any, plan: Plan, endpoints: Iterable[Endpoint] | None = None) -> list[ProbeResult]:
    """Probe every endpoint (discovery's, then each layer's of the active catalogue, a repo's own
    included) with the key's plan: one request each, none for what the plan lacks."""
    return [probe_one(client, ep, plan) for ep in (endpoints or ENDPOINTS.values())]


def probe_exit_code(results: list[ProbeResult]) -> ExitCode:
    """OK everything matches (or was skipped); API the API refused every call; FINDINGS otherwise."""
    return outcome_exit_code([r.error if r.outcome == FAILED else None for r in results if r.outcome != SKIPPED],
                             all_ok=all(r.outcome in (MATCH, SKIPPED) for r in results))


def describe_fields(result: ProbeResult) -> str:
    """A compact summary for the table: each field served, `name as spelling` where the server
    spells it differently, its JSON types (not for whole-number fields served as numbers, such as
    epoch times), and how many fields cgpreset does not use."""
    ins = result.inspection
    if ins is None:
        return ""
    whole = {f.name for f in result.endpoint.fields if f.type == "int"}
    parts = []
    for f in ins.fields:
        if not f.spellings:
            continue
        spelled = "/".join(f.spellings)
        shown = f.name if spelled == f.name else f"{f.name} as {spelled}"
        if f.types != ["number"] or f.name not in whole:
            shown += f" ({'+'.join(f.types)})"
        parts.append(shown)
    if ins.unknown:
        parts.append(f"+{len(ins.unknown)} field(s) cgpreset does not use")
    return "; ".join(parts)


__all__ = [
    "DRIFT", "EMPTY", "FAILED", "MATCH", "SKIPPED", "FieldSeen", "Inspection", "ProbeResult",
    "describe_fields", "inspect", "probe_exit_code", "probe_one", "probe_params", "run_probe",
]
