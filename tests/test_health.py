"""The 4-shot sign-off with a FakeClient: minimal calls, ok / empty / failed, plan-aware interval."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.cli.present.health import health_summary, health_table
from cgpreset.cli.present.text import render_text
from cgpreset.errors import AuthError, ConfigError, ExitCode, MalformedResponseError, PlanError
from cgpreset.plans import Plan
from cgpreset.run.health import _shot_for, plan_shots, run_health
from tests.fakes import FakeClient
from tests.test_series import NOW, configs, make_config


class LatestClient(FakeClient):
    """Answers `limit` bars without a window: the newest ones (up to its `now_ms`), like the API."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.rate_max, self.rate_used = 300, 12

    def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
        params = dict(params or {})
        limit = None
        if "interval" in params and "start_time" not in params:
            limit = params.pop("limit", None)  # the fake would count it from the window's start
            params.update(start_time=self.now_ms - 10 * 3_600_000, end_time=self.now_ms + 3_600_000)
        resp = super().request(ep, params, **kw)
        if limit is not None and isinstance(resp.data, list):
            resp.data = resp.data[-limit:]
        return resp


def test_shots_per_config_core_layers_plus_etf_once() -> None:
    shots = plan_shots(configs("SOL", "BTC"), Plan.STANDARD)
    assert [(s.coin, s.layer) for _, s in shots] == [
        ("BTC", "funding"), ("BTC", "open_interest"), ("BTC", "liquidation"), ("BTC", "taker_volume"),
        ("SOL", "funding"), ("SOL", "open_interest"), ("SOL", "liquidation"), ("SOL", "taker_volume"),
        ("*", "etf_flows")]
    assert shots[0][1].params == {"exchange": "Binance", "symbol": "BTCUSDT", "interval": "1h", "limit": 2}
    assert shots[-1][1].params == {}


def test_interval_raised_to_the_plan_floor() -> None:
    shots = plan_shots(configs("SOL"), Plan.HOBBYIST)
    assert shots[0][1].params["interval"] == "4h"
    assert shots[0][1].plan_note == "1h below the hobbyist floor; asked 4h"


def test_all_ok_signs_off(tmp_path: Path) -> None:
    report = run_health(configs("SOL"), LatestClient(), store_path=tmp_path / "none.db", now_ms=NOW)
    assert report.exit_code == ExitCode.OK
    assert [s.outcome for s in report.shots] == ["ok"] * 5 and all(s.rows == 2 for s in report.shots[:4])
    text = render_text(health_table(report))
    assert text.splitlines()[0].split() == ["coin", "layer", "endpoint", "outcome", "plan", "latency", "last",
                                            "bar", "note"]
    assert health_summary(report) == ["plan: standard | rate budget: 300/min, used this minute: 12",
                                      f"stream: no stream has run against {(tmp_path / 'none.db').as_posix()}",
                                      "5/5 shots ok — signed off"]
    assert not (tmp_path / "none.db").exists()


def test_empty_failed_and_malformed_are_not_ok() -> None:
    client = LatestClient(empty={"open-interest-aggregated-history"},
                          fail={"funding-rate-history": PlanError("Upgrade plan", code="401"),
                                "liquidation-aggregated-history": MalformedResponseError("row 0 has no field")})
    report = run_health(configs("SOL"), client, now_ms=NOW)
    outcomes = {s.layer: (s.outcome, s.error.kind.value if s.error else None) for s in report.shots}
    assert outcomes == {"funding": ("failed", "plan"), "open_interest": ("empty", None),
                        "liquidation": ("failed", "malformed_response"), "taker_volume": ("ok", None),
                        "etf_flows": ("ok", None)}
    assert report.exit_code == ExitCode.FINDINGS


def test_refused_key_exits_3() -> None:
    report = run_health(configs("SOL"), LatestClient(plan=AuthError("API key missing.", code="401")), now_ms=NOW)
    assert report.exit_code == ExitCode.API and report.shots == []
    assert health_summary(report)[0].startswith("key: refused before any shot: auth:")


def test_stream_liveness_shown(tmp_path: Path) -> None:
    from cgpreset.store.stream_tables import StreamStore  # the stream engineer's store: record one run

    db = tmp_path / "s.db"
    with StreamStore(db) as stream:
        stream.start_run(url="ws://x/ws-api?cg-api-key=<redacted>", channels=["liquidation_orders"], coins=None,
                         now=100.0)
        stream.update_run({"events": 30, "events_per_minute": 12.5, "reconnects": 1}, now=160.0,
                          last_event_at=158.0)
    report = run_health(configs("SOL"), LatestClient(), store_path=db, now_ms=NOW)
    assert report.liveness is not None and report.liveness["events_per_minute"] == 12.5
    line = health_summary(report)[1]
    assert line.startswith("stream: run #1 running, 12.5 events/min, 1 reconnects, last event ")
    assert report.as_dict()["stream"]["reconnects"] == 1


def test_config_below_the_keys_floor_is_not_signed_off() -> None:
    # configs written for Standard at 1h, the key is Hobbyist: the shots still run (at 4h),
    # but run-preset would refuse these configs, so health must not sign them off
    client = LatestClient(plan=Plan.HOBBYIST)
    report = run_health([(Path("d1/sol.yaml"), make_config("SOL")), (Path("d1/btc.yaml"), make_config("BTC"))],
                        client, now_ms=NOW)
    assert [s.outcome for s in report.shots] == ["ok"] * 9
    assert all(s.params["interval"] == "4h" for s in report.shots[:8])
    assert report.problems == ["d1/sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
                               "d1/btc.yaml: interval: 1h is below the hobbyist plan's floor (4h)"]
    assert report.exit_code == ExitCode.FINDINGS
    assert report.as_dict()["problems"] == report.problems
    assert health_summary(report)[2:] == [
        "d1/sol.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
        "d1/btc.yaml: interval: 1h is below the hobbyist plan's floor (4h)",
        "9/9 shots ok — not signed off: 2 config problems against the hobbyist plan"]


def test_plan_notes_are_kept_together() -> None:
    from dataclasses import replace

    from cgpreset import layers

    funding = layers.spec("funding")  # the same layer, as one above the key's plan
    layers.use(layers.shipped().with_specs([replace(funding, id="funding_std", min_plan=Plan.STANDARD,
                                                    source="layers/funding_std.yaml")]))
    s = next(s for s, _ in plan_shots(configs("SOL"), Plan.STANDARD) if s.layer == "funding")
    shot = _shot_for(replace(s, layer="funding_std"), Plan.HOBBYIST)
    assert shot.plan_note == "needs standard; 1h below the hobbyist floor; asked 4h"


@pytest.mark.parametrize(("floor", "asked", "note"), [
    ({Plan.HOBBYIST: "1d"}, "1d", "1h below the hobbyist floor; asked 1d"),  # the layer's own, coarser floor
    (False, "1h", "hobbyist: 1h ok"),  # a layer without a floor keeps its interval
])
def test_a_shot_asks_at_the_layers_own_floor(floor: Any, asked: str, note: str) -> None:
    from dataclasses import replace

    from cgpreset import layers

    own = replace(layers.spec("funding"), id="funding_own", interval_floor=floor is not False,
                  floor_by_plan={p.value: i for p, i in floor.items()} if floor else {},
                  source="layers/funding_own.yaml")
    layers.use(layers.shipped().with_specs([own]))
    s = next(s for s, _ in plan_shots(configs("SOL"), Plan.STANDARD) if s.layer == "funding")
    shot = _shot_for(replace(s, layer="funding_own"), Plan.HOBBYIST)
    assert (shot.params["interval"], shot.plan_note) == (asked, note)


def test_store_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "c.db"
    bad.write_text("garbage\n")
    with pytest.raises(ConfigError, match=r"c\.db: not a cgpreset store \(file is not a database\)$"):
        run_health(configs("SOL"), LatestClient(), store_path=bad, now_ms=NOW)


# -- freshness: the last closed bar of every shot ---------------------------------------------------


def test_an_api_serving_week_old_bars_is_not_signed_off() -> None:
    """health signed off an API whose last bars were 7 days old: freshness_intervals was not applied."""
    week = 7 * 86_400_000
    report = run_health(configs("SOL"), LatestClient(now_ms=NOW - week), now_ms=NOW)
    reasons = {s.layer: (s.outcome, s.reason) for s in report.shots}
    assert reasons == {
        layer: ("failed", "last closed bar 168.4 intervals old > 2")  # the API's newest bar, 7 days back
        for layer in ("funding", "open_interest", "liquidation", "taker_volume")
    } | {"etf_flows": ("failed", "last closed bar 8.7 intervals old > 5")}  # trading days: 5 days' slack
    assert report.exit_code == ExitCode.FINDINGS
    assert health_summary(report)[-1] == "0/5 shots ok — not signed off"


def test_a_shot_is_judged_by_run_presets_decoder_and_checks() -> None:
    """health used to decode with its own rule (" 1" passed) and to check freshness only."""
    class Odd(LatestClient):
        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            resp = super().request(ep, params, **kw)
            if ep.id == "funding-rate-history":
                resp.data[0]["high"] = "0.1"  # below low: OHLC broken
            if ep.id == "open-interest-aggregated-history":
                resp.data[0]["open"] = " 1"  # not a number by the one rule
            return resp

    shots = {s.layer: s for s in run_health(configs("SOL"), Odd(), now_ms=NOW).shots}
    funding, oi = shots["funding"], shots["open_interest"]
    assert (funding.outcome, funding.error) == ("failed", None)
    assert funding.reason is not None and funding.reason.startswith("1 bars break low <= open,close <= high")
    assert oi.outcome == "failed" and isinstance(oi.error, MalformedResponseError)
    assert oi.error.message == "row 0 field 'open': expected a number, got str"


def test_each_configs_own_freshness_intervals_is_applied() -> None:
    lagging = LatestClient(now_ms=NOW - 3 * 3_600_000)  # its newest bar opened 3.4 h before our now
    strict = run_health(configs("SOL"), lagging, now_ms=NOW)
    assert [s.outcome for s in strict.shots[:4]] == ["failed"] * 4
    assert strict.shots[0].reason == "last closed bar 3.4 intervals old > 2"
    relaxed = run_health(configs("SOL", health={"freshness_intervals": 5}), lagging, now_ms=NOW)
    assert [s.outcome for s in relaxed.shots] == ["ok"] * 5 and relaxed.exit_code == ExitCode.OK


def test_the_emulators_bars_are_fresh_now_and_stale_a_week_later(emulator: Any) -> None:
    import time

    from cgpreset.api.client import CoinGlassClient
    from cgpreset.settings import Settings

    now = int(time.time() * 1000)
    with CoinGlassClient(Settings(api_key=emulator.api_key), base_url=emulator.base_url) as client:
        fresh = run_health(configs("SOL"), client, now_ms=now)
        stale = run_health(configs("SOL"), client, now_ms=now + 7 * 86_400_000)
    assert [s.outcome for s in fresh.shots] == ["ok"] * 5, [s.reason for s in fresh.shots]
    assert [s.outcome for s in stale.shots] == ["failed"] * 5
    assert all(re.fullmatch(r"last closed bar 16[89]\.\d intervals old > 2", s.reason or "") for s in stale.shots[:4])
    assert stale.exit_code == ExitCode.FINDINGS


def test_last_bar_means_the_same_in_health_and_run_preset(tmp_path: Path) -> None:
    """The open of the last closed bar, and the seconds since it opened: health once showed the forming
    bar's open (minutes old) where run-preset showed the seconds since the last closed bar closed."""
    from cgpreset.cli.present.run import run_json, run_table
    from cgpreset.run.engine import run_preset
    from cgpreset.store import open_store

    health = run_health(configs("SOL"), LatestClient(), now_ms=NOW)
    with open_store(tmp_path / "s.db") as st:
        run = run_preset(configs("SOL"), FakeClient(), st, now_ms=NOW, concurrency=2)
    last_closed = NOW // 3_600_000 * 3_600_000 - 3_600_000  # NOW is 25 minutes into an hour
    shots = {s.layer: s.as_dict(NOW) for s in health.shots}
    series = {s["layer"]: s for s in run_json(run, store="s.db")["series"]}
    for layer in ("funding", "open_interest", "liquidation", "taker_volume"):
        assert shots[layer]["last_bar"] == series[layer]["last_bar"] == last_closed
        assert shots[layer]["last_bar_age_seconds"] == series[layer]["last_bar_age_seconds"] == 85 * 60
    assert "1h 25m" in render_text(health_table(health)) and "1h 25m" in render_text(run_table(run))
