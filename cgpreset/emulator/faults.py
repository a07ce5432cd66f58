"""Scripted faults, per path: what goes wrong, on which call, how often. Deterministic with the seed.

A faults file is YAML or JSON (`cgpreset emulator --faults FILE`, or `serve(faults=...)` with the
same structure, or a list of FaultRule):

    seed: 7                  # optional; default: the emulator's seed
    rules:
      - path: /api/futures/funding-rate/history     # exact path, or a glob: "/api/futures/*", "*"
        kind: http_5xx
        status: 502
        nth: 1               # fire on the 1st matching call only
      - path: "*"
        kind: latency
        ms: 250
        probability: 0.1     # seeded: the same calls fire on every run
      - path: /api/futures/liquidation/aggregated-history
        kind: drift
        rename: {aggregated_long_liquidation_usd: long_liq_usd}
        every: 2             # the 2nd, 4th, 6th... matching call
        times: 3             # at most 3 firings in all

A bare list of rules works too. When to fire: `nth`, `every` and `probability` must all agree
(unset ones agree); none set = every matching call; `times` caps the firings.

Kinds and their parameters:

    latency     ms (default 1000): added delay, then the normal answer
    http_5xx    status 500 | 502 | 503 (default 503): an HTML (502/503) or text (500) body
    code_500    HTTP 200 + {"code":"500","msg":"Server Error"}
    rate_limit  {"code":"400","msg":"Too Many Requests"}; status (default: the emulator's
                rate_limit_status, 200 or 429)
    hang        seconds (default 5): wait, then answer normally (the client has given up by then)
    trickle     rate (bytes a second, default 4): headers at once, then the body a few bytes a second
    redirect    status (default 302) to location (default http://elsewhere.invalid) + the same path
    reset       close the connection without an answer (TCP reset)
    truncated   the JSON cut in half; declared: "cut" (default: Content-Length of the cut body,
                so the client sees invalid JSON) or "full" (of the whole body: the connection
                closes early, an incomplete read)
    html        status (default 200): a Cloudflare-like HTML error page
    empty       {"code":"0","data":[]}
    drift       rename: {old: new} field renames in rows (default: DEFAULT_RENAME, unless `add`);
                add: {field: value} fields added to every row (one CoinGlass starts sending)
    drop        fields: remove these fields from rows (e.g. the docs-only supported-exchange-pairs
                fields settlement_currency, max_leverage, funding_interval, price_tick_size)
    body        any error envelope {"code": code, "msg": msg} (defaults "400" / "Please upgrade
                to standard"), at HTTP status (default 200): the other observed wordings
                (tests/fixtures/_errors_observed.json), or the documented non-200 form (e.g.
                status 401 with a JSON body)
    types       mode: flip (default: numbers <-> numeric strings) | to_str | to_num | bad
                (non-numeric "-"); fields: only these fields (default: all but time fields)
    hole        bars (default 3) rows missing from the answer from row `at` (default: its middle):
                a time series with a gap inside an answer
    late_start  the first `bars` (default 10) rows missing: an answer that starts late in its window
    misaligned  every row's time moved by shift_ms (default 1800000: to :30 of an hourly bar), off
                the interval's bar grid
    echo_key    every row gains a field `echo` quoting the request's key ("served for <key>"), as a
                debugging proxy might: what a client keeps of an answer (field drift: this new
                field is one) must not keep the key

Faults apply before the key check (as an edge proxy would) and use no rate budget, except
latency, drift, drop, types, empty and echo_key, which shape an otherwise normal answer.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from cgpreset._io import read_text
from cgpreset._yaml import MAX_FILE_BYTES, parse
from cgpreset.errors import ConfigError

KINDS: tuple[str, ...] = (
    "latency", "http_5xx", "code_500", "rate_limit", "hang", "trickle", "redirect", "reset", "truncated", "html",
    "empty", "drift", "drop", "types", "body", "hole", "late_start", "misaligned", "echo_key",
)
#: Kinds that change a normal answer rather than replace it.
SHAPING = frozenset({"latency", "hang", "trickle", "empty", "drift", "drop", "types", "truncated", "hole",
                     "late_start", "misaligned", "echo_key"})
#: Kinds that rewrite the rows of a success envelope.
ROW_SHAPING = frozenset({"empty", "drift", "drop", "types", "hole", "late_start", "misaligned", "echo_key"})

DEFAULT_RENAME: dict[str, str] = {
    "aggregated_long_liquidation_usd": "long_liq_usd",
    "aggregated_buy_volume_usd": "buy_vol_usd",
    "longLiquidation_usd": "long_liq_usd",
    "open_interest_usd": "oi_usd",
    "close": "c",
    "flow_usd": "net_flow_usd",
    "instrument_id": "instId",
    "level": "plan_level",
}
_TIME_FIELDS = frozenset({"time", "timestamp", "expire_time"})


@dataclass
class FaultRule:
    """One scripted fault: where (path glob), what (kind + parameters) and when."""

    path: str
    kind: str
    nth: int | None = None
    every: int | None = None
    probability: float | None = None
    times: int | None = None
    ms: float = 1000.0
    status: int | None = None
    seconds: float = 5.0
    rename: dict[str, str] | None = None
    add: dict[str, Any] | None = None
    mode: str = "flip"
    fields: list[str] | None = None
    declared: str = "cut"
    code: str = "400"
    msg: str = "Please upgrade to standard"
    rate: float = 4.0
    location: str = "http://elsewhere.invalid"
    at: int | None = None
    bars: int | None = None
    shift_ms: int = 30 * 60_000

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"fault kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("nth", "every", "times"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"fault {self.kind}: {name} must be a whole number >= 1")
        if self.status is not None and (isinstance(self.status, bool) or not isinstance(self.status, int)):
            raise ConfigError(f"fault {self.kind}: status must be a whole number, not {self.status!r}")
        if self.rename is not None and (not isinstance(self.rename, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.rename.items())):
            raise ConfigError(f"fault {self.kind}: rename must map field names to field names")
        if self.add is not None and (not isinstance(self.add, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str | int | float | bool))
                for k, v in self.add.items())):
            raise ConfigError(f"fault {self.kind}: add must map field names to plain values")
        if self.fields is not None and (not isinstance(self.fields, list) or not all(
                isinstance(f, str) for f in self.fields)):
            raise ConfigError(f"fault {self.kind}: fields must be a list of field names")
        if not isinstance(self.msg, str):
            raise ConfigError(f"fault {self.kind}: msg must be text, not {self.msg!r}")
        for name in ("ms", "seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 3600:
                raise ConfigError(f"fault {self.kind}: {name} must be a number from 0 to 3600, not {value!r}")
        if self.probability is not None and (
            isinstance(self.probability, bool) or not isinstance(self.probability, int | float)
            or not 0.0 <= float(self.probability) <= 1.0
        ):
            raise ConfigError(f"fault {self.kind}: probability must be between 0 and 1")
        if self.kind == "http_5xx" and self.status is not None and not 500 <= self.status <= 599:
            raise ConfigError(f"fault http_5xx: status must be 5xx, not {self.status}")
        if self.mode not in ("flip", "to_str", "to_num", "bad"):
            raise ConfigError(f"fault types: mode {self.mode!r} is not flip, to_str, to_num or bad")
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or not 0 < self.rate <= 10**6:
            raise ConfigError(f"fault {self.kind}: rate must be bytes a second, more than 0, not {self.rate!r}")
        if self.kind == "redirect" and self.status is not None and not 300 <= self.status <= 399:
            raise ConfigError(f"fault redirect: status must be 3xx, not {self.status}")
        if not isinstance(self.location, str) or "://" not in self.location:
            raise ConfigError(f"fault {self.kind}: location must be a URL like http://host, not {self.location!r}")
        for name, least in (("at", 0), ("bars", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"fault {self.kind}: {name} must be a whole number >= {least}")
        if isinstance(self.shift_ms, bool) or not isinstance(self.shift_ms, int):
            raise ConfigError(f"fault {self.kind}: shift_ms must be a whole number of milliseconds")
        if self.kind == "drop" and not self.fields:
            raise ConfigError("fault drop: `fields` must name at least one field")
        if self.kind == "body" and self.status is not None and not 100 <= self.status <= 599:
            raise ConfigError(f"fault body: status must be an HTTP status, not {self.status}")
        self.code = str(self.code)
        if self.declared not in ("cut", "full"):
            raise ConfigError(f"fault truncated: declared {self.declared!r} is not cut or full")

    def matches(self, path: str) -> bool:
        return self.path == path or fnmatchcase(path, self.path)


@dataclass
class _RuleState:
    rule: FaultRule
    rng: random.Random
    calls: int = 0
    fired: int = 0


@dataclass
class FaultPlan:
    """Rules plus their counters; `decide` is called once per request, from any thread."""

    rules: list[FaultRule]
    seed: int = 0
    _states: list[_RuleState] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._states = [
            _RuleState(r, random.Random(f"{self.seed}:{i}:{r.kind}:{r.path}")) for i, r in enumerate(self.rules)
        ]

    def decide(self, path: str) -> list[FaultRule]:
        """The rules that fire for this call, in file order."""
        fired = []
        with self._lock:
            for st in self._states:
                r = st.rule
                if not r.matches(path):
                    continue
                st.calls += 1
                roll = st.rng.random() if r.probability is not None else 0.0
                if r.times is not None and st.fired >= r.times:
                    continue
                if r.nth is not None and st.calls != r.nth:
                    continue
                if r.every is not None and st.calls % r.every != 0:
                    continue
                if r.probability is not None and roll >= r.probability:
                    continue
                st.fired += 1
                fired.append(r)
        return fired


def parse_faults(spec: Any, *, default_seed: int = 0) -> FaultPlan:
    """A FaultPlan from None, a list of FaultRule/dicts, or {"seed": .., "rules": [..]}."""
    seed = default_seed
    items: Iterable[Any]
    if spec is None:
        items = []
    elif isinstance(spec, FaultPlan):
        return FaultPlan(list(spec.rules), spec.seed)
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"seed", "rules"}
        if unknown:
            raise ConfigError(f"faults: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}")
        seed_value = spec.get("seed", default_seed)
        if isinstance(seed_value, bool) or not isinstance(seed_value, int):
            raise ConfigError(f"faults: seed: expected a whole number, not {seed_value!r}")
        seed = seed_value
        items = spec.get("rules") or []
        if not isinstance(items, list):
            raise ConfigError(f"faults: rules: expected a list of rules, not {type(items).__name__}")
    elif isinstance(spec, (list, tuple)):
        items = spec
    else:
        raise ConfigError("faults: expected a list of rules or a mapping with `rules`")
    return FaultPlan([_rule(item, i) for i, item in enumerate(items)], seed)


def _rule(item: Any, index: int) -> FaultRule:
    if isinstance(item, FaultRule):
        return item
    if not isinstance(item, Mapping):
        raise ConfigError(f"faults: rule {index + 1} is not a mapping")
    allowed = {f.name for f in fields(FaultRule)}
    unknown = set(item) - allowed
    if unknown:
        raise ConfigError(f"faults: rule {index + 1} has unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if "kind" not in item:
        raise ConfigError(f"faults: rule {index + 1} has no `kind`")
    try:
        return FaultRule(**{"path": "*", **item})
    except TypeError as exc:
        raise ConfigError(f"faults: rule {index + 1}: {exc}") from None


def load_faults(path: str | Path, *, default_seed: int = 0) -> FaultPlan:
    """Read a YAML or JSON faults file; any problem is a one-line ConfigError."""
    p = Path(path)
    text = read_text(p, label="faults file ", max_bytes=MAX_FILE_BYTES)
    try:
        spec = json.loads(text) if p.suffix == ".json" else parse(text, f"faults file {p}")
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"faults file {p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {first}") from None
    try:
        return parse_faults(spec, default_seed=default_seed)
    except ConfigError as exc:
        raise ConfigError(f"faults file {p}: {exc}") from None


# -- body transforms (copies; never mutate what the generator returned) ----------------------------


def shape_body(body: dict[str, Any], rule: FaultRule, key: str | None = None,
               clock: tuple[str, str] | None = None) -> dict[str, Any]:
    """Apply an empty / drift / drop / types / echo_key / hole / late_start / misaligned fault to a
    success envelope (`key`: the request's, for echo_key; `clock`: the layer's time field and its
    unit, "ms" or "s", so `types` leaves it alone and `misaligned` shifts it in its own unit)."""
    if body.get("code") != "0":
        return body
    if rule.kind == "empty":
        return {"code": "0", "data": []}
    times = _TIME_FIELDS | ({clock[0]} if clock else set())
    out = copy.deepcopy(body)
    if rule.kind == "drift":
        mapping = rule.rename or ({} if rule.add else DEFAULT_RENAME)
        added = rule.add or {}
        out["data"] = _walk_rows(out["data"], lambda row: {**{mapping.get(k, k): v for k, v in row.items()}, **added})
    elif rule.kind == "echo_key":
        out["data"] = _walk_rows(out["data"], lambda row: {**row, "echo": f"served for {key}"})
    elif rule.kind == "drop":
        gone = set(rule.fields or ())
        out["data"] = _walk_rows(out["data"], lambda row: {k: v for k, v in row.items() if k not in gone})
    elif rule.kind == "types":
        out["data"] = _walk_rows(out["data"], lambda row: _retype(row, rule, times))
    elif rule.kind in ("hole", "late_start", "misaligned") and isinstance(out["data"], list):
        shift = rule.shift_ms // 1000 if clock and clock[1] == "s" else rule.shift_ms
        out["data"] = _gap_rows(out["data"], rule, times - {"expire_time"}, shift)
    return out


def _gap_rows(rows: list[Any], rule: FaultRule, times: frozenset[str], shift: int) -> list[Any]:
    """A time series' answer with a hole inside, a late start, or its times off the bar grid."""
    if rule.kind == "misaligned":
        return [{k: v + shift if k in times and isinstance(v, int) else v
                 for k, v in r.items()} if isinstance(r, dict) else r for r in rows]
    if rule.kind == "late_start":
        return rows[rule.bars or 10:]
    bars = rule.bars or 3
    at = len(rows) // 2 if rule.at is None else rule.at
    return rows[:at] + rows[at + bars:]


def _walk_rows(data: Any, fn: Any) -> Any:
    if isinstance(data, list):
        return [fn(r) if isinstance(r, dict) else r for r in data]
    if isinstance(data, dict):
        if all(isinstance(v, list) for v in data.values()):  # exchange -> rows
            return {k: _walk_rows(v, fn) for k, v in data.items()}
        return fn(data)
    return data


def _retype(row: dict[str, Any], rule: FaultRule, times: frozenset[str]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        chosen = k in rule.fields if rule.fields else k not in times
        out[k] = _retype_value(v, rule.mode) if chosen else v
    return out


def _retype_value(v: Any, mode: str) -> Any:
    is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
    numeric_str = isinstance(v, str) and _is_number(v)
    if mode == "bad" and (is_num or numeric_str):
        return "-"
    if is_num and mode in ("flip", "to_str"):
        return str(v)
    if numeric_str and mode in ("flip", "to_num"):
        number = float(v)
        return int(number) if number.is_integer() and "." not in v else number
    return v


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
