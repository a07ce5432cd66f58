"""One decoder for every path: run-preset's page builder, a `health` shot, `doctor --probe` and
CoinGlassClient.fetch accept and refuse the same answers, in the same words, with the same values;
the number rule itself; a time in seconds becomes milliseconds once."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import responses
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cgpreset import layers
from cgpreset.api.catalogue import layer_endpoint
from cgpreset.api.client import CoinGlassClient
from cgpreset.api.rows import decode_response, decode_rows
from cgpreset.api.session import Response
from cgpreset.diagnose.probe import DRIFT, EMPTY, MATCH, probe_one, probe_params
from cgpreset.errors import MalformedResponseError
from cgpreset.layers import LayerSpec
from cgpreset.layers.definition import parse_definition
from cgpreset.models.config import CoinConfig, HealthSpec
from cgpreset.plans import DAY_MS, HOUR_MS, Plan, bar_open
from cgpreset.run.engine import Runner
from cgpreset.run.health import _shot_for, fire
from cgpreset.run.pages import SeriesRows, build_page
from cgpreset.run.series import Series, expand, plan_series
from cgpreset.settings import Settings
from cgpreset.store.base import Coverage, Page, WriteResult
from tests.fakes import NOW, FakeClient
from tests.test_series import make_config

#: The JSON number grammar (RFC 8259), ASCII digits only: what a numeric string must be, whole.
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
REFUSED = object()
#: A layer whose API sends its time in seconds (the Coinbase premium index's shape).
PREMIUM = {
    "name": "premium_index", "title": "Coinbase premium index", "order": 70,
    "endpoint": {"path": "/api/own/premium-index"},
    "kind": "macro", "history": "windows", "min_plan": "hobbyist", "core": False,
    "time": {"field": "time", "unit": "s"},
    "fields": [{"name": "premium", "type": "number", "unit": "USD", "signed": True},
               {"name": "premium_rate", "type": "number", "unit": "percent", "signed": True}],
    "checks": ["gaps", "freshness", "all_zero"], "chart": "lines",
}


@pytest.fixture(autouse=True)
def _shipped_layers() -> Iterator[None]:
    layers.reset()
    yield
    layers.reset()


def expected_number(text: str) -> Any:
    """The documented rule for a `number` field sent as text (api/rows.py)."""
    if not JSON_NUMBER.fullmatch(text):
        return REFUSED
    value = float(text)
    return value if math.isfinite(value) else REFUSED


def expected_int(text: str) -> Any:
    """An `int` field: an integer literal exactly; another number form if its value is whole and
    exact in a float (at most 2**53)."""
    if not JSON_NUMBER.fullmatch(text):
        return REFUSED
    if re.fullmatch(r"-?(?:0|[1-9][0-9]*)", text):
        return int(text)
    value = float(text)
    return int(value) if math.isfinite(value) and value.is_integer() and abs(value) <= 2**53 else REFUSED


TEXTS = st.one_of(
    st.from_regex(JSON_NUMBER, fullmatch=True),
    st.text(alphabet="0123456789-+.eE_, xnaif", max_size=12),
    st.text(max_size=6),
    st.sampled_from([" 1", "1 ", "1_000", "1e3", "0x10", "nan", "inf", "-inf", "Infinity", "", "1,000", "+1",
                     ".5", "5.", "007", "1e400", "-0", "1E-3", "١", "１"]),
)


@given(TEXTS, st.booleans())
def test_the_number_rule(text: str, as_text: bool) -> None:
    """Every field type's rule, from the JSON text and from parsed objects alike."""
    ep = layer_endpoint(layers.spec("funding"))
    for field, want in (("open", expected_number(text)), ("time", expected_int(text))):
        row = {"time": HOUR_MS, "open": 1, "high": 1, "low": 1, "close": 1, field: text}
        data = msgspec.json.encode([row]) if as_text else [row]
        try:
            got = getattr(decode_rows(ep, data).rows[0], field)
        except MalformedResponseError as exc:
            assert want is REFUSED, (field, text, str(exc))
            assert f"row 0 field '{field}': " in exc.message
        else:
            assert want is not REFUSED and got == want and type(got) is type(want), (field, text, got)


# -- every path over one answer ------------------------------------------------------------------


class Serving(FakeClient):
    """Answers every request with one body: as JSON text (the real client) or parsed (`parsed`)."""

    def __init__(self, body: bytes, parsed: bool = False) -> None:
        super().__init__(NOW)
        self.body, self.parsed = body, parsed

    def request(self, key: Any, params: Any = None, **kw: Any) -> Response:
        data = msgspec.json.decode(self.body)["data"]
        raw = msgspec.json.encode(data)
        return Response(key.path, dict(params or {}), data if self.parsed else None, 0.01, 1,
                        raw=None if self.parsed else raw)


@dataclass(frozen=True)
class Verdict:
    """What one path made of an answer: refused (with its words) or the rows it read."""

    refused: str | None
    rows: int | None = None
    values: list[tuple[Any, ...]] | None = None  # the stored columns, per row (where the path has them)


def series_for(ls: LayerSpec) -> tuple[Series, tuple[int, int] | None]:
    """A series of the layer as run-preset builds it, and the window its request asks for."""
    interval = {"windows": "1h", "whole": ls.bar or "1d"}.get(ls.history) or next(iter(ls.range_buckets.values()))
    params = tuple(probe_params(layer_endpoint(ls), Plan.STANDARD).items())
    s = Series(ls.id, "BTC", "x", interval, ls.endpoint_id, params, None, HealthSpec())
    forming = bar_open(NOW, "1h")
    return s, ((forming - 5 * HOUR_MS, forming + HOUR_MS) if ls.windowed else None)


def run_path(ls: LayerSpec, body: bytes, parsed: bool) -> Verdict:
    s, window = series_for(ls)
    resp = Serving(body, parsed).request(s.endpoint)
    try:
        page = build_page(s, decode_response(s.endpoint, resp), SeriesRows(s), now_ms=NOW, window=window)
    except MalformedResponseError as exc:
        return Verdict(exc.message)
    at = 2 if ls.row_key else 1
    return Verdict(None, len(page.rows), [tuple(r[at:at + len(ls.columns)]) for r in page.rows])


def health_path(ls: LayerSpec, body: bytes) -> Verdict:
    s, _ = series_for(ls)
    shot = fire(Serving(body), s, _shot_for(s, Plan.STANDARD), NOW)
    if shot.error is not None:
        assert isinstance(shot.error, MalformedResponseError)
        return Verdict(shot.error.message)
    return Verdict(None, shot.rows)


def probe_path(ls: LayerSpec, body: bytes) -> Verdict:
    result = probe_one(Serving(body), layer_endpoint(ls), Plan.STANDARD)
    if result.outcome == DRIFT:
        assert result.inspection is not None
        return Verdict(result.inspection.problems[0])
    assert result.outcome in (MATCH, EMPTY) and result.inspection is not None, result.as_dict()
    return Verdict(None, result.inspection.rows)


def fetch_path(ls: LayerSpec, body: bytes) -> Verdict:
    ep = layer_endpoint(ls)
    client = CoinGlassClient(Settings(api_key="k", base_url="https://api.test", plan="standard", max_attempts=1),
                             sleep=lambda _: None)
    with responses.RequestsMock() as mock, client:
        mock.get("https://api.test" + ep.path, body=body, status=200)
        try:
            rows = client.fetch(ep, probe_params(ep, Plan.STANDARD))
        except MalformedResponseError as exc:
            return Verdict(exc.message)
    return Verdict(None, len(rows), [tuple(r.get(c.field) for c in ls.columns) for r in rows])


# -- answers of any catalogue layer, from its field types ------------------------------------------

JUNK_NUMBERS = st.one_of(st.sampled_from([" 1", "1 ", "1_000", "0x10", "nan", "inf", "", "1,000", "+1", ".5", "5.",
                                          "007", "1e400", "Infinity", "-", None]),
                         st.booleans(), st.just([]), st.just({}))
JUNK = {"number": JUNK_NUMBERS, "int": st.sampled_from(["x", 1.5, "1.5", None, True, " 7"]),
        "str": st.sampled_from([1, 2.5, None, True, []]), "bool": st.sampled_from(["yes", 2, []]),
        "list": st.sampled_from(["x", 1, {}])}


def numbers() -> st.SearchStrategy[Any]:
    """A valid number in every form the rule accepts: a JSON number or a string holding one."""
    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
    return st.one_of(finite, st.integers(-10**6, 10**6), finite.map(repr), st.integers(-10**6, 10**6).map(str),
                     st.from_regex(JSON_NUMBER, fullmatch=True).filter(lambda t: expected_number(t) is not REFUSED))


def valid(f: Any, t: int | None) -> st.SearchStrategy[Any]:
    if t is not None:  # the time field: a bar open, in the definition's unit, as a number or text
        return st.sampled_from([t, str(t), f"{t}.0"])
    return {"number": numbers(), "int": st.integers(0, 10**6), "str": st.text(max_size=4), "bool": st.booleans(),
            "list": st.lists(st.fixed_dictionaries({"etf_ticker": st.sampled_from(["IBIT", "FBTC"]),
                                                    "flow_usd": numbers()}), max_size=2)}[f.type]


@st.composite
def answers(draw: st.DrawFn, ls: LayerSpec) -> bytes:
    """An answer of `ls`: rows with every field (any spelling; optional ones maybe absent or
    null) valid in every accepted form, or one value junk; now and then a `data` of another shape."""
    ep = layer_endpoint(ls)
    shape = draw(st.sampled_from(["rows"] * 8 + ["null", "object", "text"]))
    if shape != "rows":
        return msgspec.json.encode({"code": "0", "data": {"null": None, "object": {"a": 1}, "text": "x"}[shape]})
    step = DAY_MS if ls.whole_history else HOUR_MS
    last = bar_open(NOW, "1d" if ls.whole_history else "1h")
    times = [last - i * step for i in range(draw(st.integers(0, 5)))][::-1]
    exchanges = ["All", "Binance", "OKX", "Bybit", "HTX"]
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(times if ls.time_field else [0] * len(times)):
        row: dict[str, Any] = {}
        for f in ep.fields:
            name = draw(st.sampled_from((f.name, *f.aliases)))
            is_time = f.name == ls.time_field
            if not f.required and draw(st.integers(0, 4)) == 0:
                if draw(st.booleans()):
                    row[name] = None
                continue
            if f.name == "exchange":
                row[name] = exchanges[i]
                continue
            row[name] = draw(valid(f, (t // 1000 if ls.time_unit == "s" else t) if is_time else None))
        if draw(st.integers(0, 5)) == 0:
            row["extra_field"] = "?"
        rows.append(row)
    if rows and draw(st.booleans()):  # one junk value
        row = draw(st.sampled_from(rows))
        f = draw(st.sampled_from(ep.fields))
        row[draw(st.sampled_from((f.name, *f.aliases)))] = draw(JUNK[f.type])
    return msgspec.json.encode({"code": "0", "data": rows})


@st.composite
def layer_and_answer(draw: st.DrawFn) -> tuple[LayerSpec, bytes]:
    ls = draw(st.sampled_from(list(layers.catalogue().values())))
    return ls, draw(answers(ls))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_path_accepts_or_refuses_the_same_answers_in_the_same_words(data: st.DataObject) -> None:
    layers.use(layers.shipped().with_specs([parse_definition(PREMIUM, "layers/premium_index.yaml")]))
    ls, body = data.draw(layer_and_answer())
    run, parsed = run_path(ls, body, parsed=False), run_path(ls, body, parsed=True)
    event(f"{ls.id}: {'refused' if run.refused else 'accepted'}")
    others = {"run (parsed data)": parsed, "health": health_path(ls, body), "probe": probe_path(ls, body),
              "fetch": fetch_path(ls, body)}
    for name, got in others.items():
        assert got.refused == run.refused, (name, ls.id, body)
        assert got.rows == run.rows, (name, ls.id, body)
    assert parsed.values == run.values == others["fetch"].values


def test_the_brief_s_examples_on_every_path() -> None:
    """" 1", "1_000", "0x10", "nan", "inf", "" and "1,000" are refused by every path alike; "1e3" is 1000."""
    ls = layers.spec("open_interest")
    for text, accepted in ((" 1", False), ("1_000", False), ("1e3", True), ("0x10", False), ("nan", False),
                           ("inf", False), ("", False), ("1,000", False)):
        row = {"time": bar_open(NOW, "1h"), "open": text, "high": "2000", "low": "0.5", "close": "1"}
        body = msgspec.json.encode({"code": "0", "data": [row]})
        verdicts = [run_path(ls, body, False), run_path(ls, body, True), health_path(ls, body), probe_path(ls, body),
                    fetch_path(ls, body)]
        assert {v.refused for v in verdicts} == {None if accepted else verdicts[0].refused}, text
        if accepted:
            assert {tuple(v.values or ()) for v in (verdicts[0], verdicts[-1])} == {((1000.0, 2000.0, 0.5, 1.0),)}
        else:
            word = "not a finite number" if text in ("nan", "inf") else "expected a number, got str"
            assert verdicts[0].refused == f"row 0 field 'open': {word}"


# -- a time in seconds -------------------------------------------------------------------------------


def premium_yaml(tmp_path: Path) -> Path:
    folder = tmp_path / "layers"
    folder.mkdir()
    (folder / "premium_index.yaml").write_text(msgspec.json.encode(PREMIUM).decode(), encoding="utf-8")
    return folder


class PageStore:
    """The store as one series' run uses it: empty at first, keeping the pages written (its
    coverage: the span from the first bar to the last, hourly)."""

    def __init__(self) -> None:
        self.pages: list[Page] = []

    def cursor(self, series: str) -> int | None:
        return None

    def coverage(self, series: str | None = None) -> dict[str, Coverage]:
        times = [r[0] for page in self.pages for r in page.rows]
        return {series or "": Coverage(((min(times), max(times) + HOUR_MS),), ())} if times else {}

    def write(self, page: Page) -> WriteResult:
        self.pages.append(page)
        return WriteResult(len(page.rows), len(page.rows), page.closed_upto)


def test_a_time_in_seconds_is_milliseconds_from_the_decoder_on(tmp_path: Path) -> None:
    """A repo's own layer whose API sends seconds, run by the engine: the window and grid checks
    take every bar, the store is handed milliseconds, the checks pass."""
    layers.use([premium_yaml(tmp_path)])
    ep = layer_endpoint(layers.spec("premium_index"))
    assert ep.time_unit == "s"
    answer = FakeClient().request(ep, {"interval": "1h", "start_time": NOW - HOUR_MS, "end_time": NOW})
    assert answer.data[-1]["time"] == bar_open(NOW, "1h") // 1000  # what the API (the fake) sends: seconds
    cfg = make_config("SOL").model_dump(mode="json", exclude_none=True)
    cfg["layers"] = {"premium_index": {}}
    (series,) = expand([(Path("sol.yaml"), CoinConfig.model_validate(cfg))])
    store = PageStore()
    result = Runner(FakeClient(), store, now_ms=NOW).run_series(  # type: ignore[arg-type]
        plan_series(series, coverage=None, now_ms=NOW, plan=Plan.STANDARD))
    assert result.outcome == "ok" and result.checks and all(c.ok for c in result.checks), result.checks
    stored = sorted(r[0] for page in store.pages for r in page.rows)
    assert len(stored) == result.rows == 30 * 24 + 1  # every bar of 30 days and the forming one
    assert stored[-1] == bar_open(NOW, "1h") and all(t % HOUR_MS == 0 for t in stored)  # ms, on the grid
    assert max(p.closed_upto or 0 for p in store.pages) == bar_open(NOW, "1h") - HOUR_MS


def test_health_and_probe_read_a_time_in_seconds_and_flag_one_in_the_wrong_unit(tmp_path: Path) -> None:
    layers.use([premium_yaml(tmp_path)])
    ls = layers.spec("premium_index")
    forming = bar_open(NOW, "1h")
    seconds = msgspec.json.encode({"code": "0", "data": [{"time": (forming - HOUR_MS) // 1000, "premium": 1,
                                                          "premium_rate": "0.1"},
                                                         {"time": forming // 1000, "premium": 2, "premium_rate": 0}]})
    s, _ = series_for(ls)
    shot = fire(Serving(seconds), s, _shot_for(s, Plan.STANDARD), NOW)
    assert (shot.outcome, shot.last_bar) == ("ok", forming - HOUR_MS)  # the open of the last closed bar
    assert probe_one(Serving(seconds), layer_endpoint(ls), Plan.STANDARD).outcome == MATCH
    millis = seconds.replace(str(forming // 1000).encode(), str(forming).encode())
    drift = probe_one(Serving(millis), layer_endpoint(ls), Plan.STANDARD)
    assert drift.outcome == DRIFT and drift.reason == f"time: {forming} looks like milliseconds, not epoch seconds"
    refused = run_path(ls, millis, parsed=False).refused
    assert refused is not None and refused.endswith("(milliseconds, not seconds as the layer's definition says?); "
                                                    "nothing stored")
