"""`cgpreset freshness` and `health --store`: is the stored data fresh, judged from the store alone."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cgpreset.cli import cli
from cgpreset.models.config import load_configs
from cgpreset.plans import DAY_MS, HOUR_MS, INTERVAL_MS, Plan, bar_open, interval_ms
from cgpreset.run.engine import run_preset
from cgpreset.run.freshness import FRESH, NEVER, STALE, freshness, read_freshness, series_freshness
from cgpreset.run.series import expand
from cgpreset.store import open_store
from cgpreset.store.base import Coverage, Cursor, Hole
from cgpreset.timeframes import KNOWN_HOLE_RUNS
from tests.fakes import FakeClient
from tests.test_run_e2e import write_configs
from tests.test_series import NOW, configs


def _series(layer: str, **kw: Any) -> Any:
    return next(s for s in expand(configs("SOL", **kw)) if s.layer == layer)


@given(interval=st.sampled_from(sorted(INTERVAL_MS)), limit=st.floats(0.5, 20),
       bars_ago=st.integers(0, 40), into=st.floats(0, 0.999))
def test_a_series_is_stale_exactly_when_its_last_closed_bar_is_older_than_the_limit(
        interval: str, limit: float, bars_ago: int, into: float) -> None:
    s = _series("open_interest", interval=interval, history_days=1, health={"freshness_intervals": limit})
    step = interval_ms(interval)
    now = bar_open(NOW, interval) + int(into * step)
    last = bar_open(now, interval) - (bars_ago + 1) * step  # the open of the last closed bar held
    f = series_freshness(s, Cursor(last), None, now_ms=now, plan=Plan.PROFESSIONAL)
    assert f.age_bars == pytest.approx((now - last) / step)
    assert f.status == (STALE if (now - last) / step > limit else FRESH)
    assert f.limit_bars == limit


def test_a_series_the_store_does_not_hold_was_never_fetched() -> None:
    s = _series("funding")
    for cursor in (None, Cursor(None)):
        f = series_freshness(s, cursor, None, now_ms=NOW, plan=Plan.STANDARD)
        assert (f.status, f.last_bar, f.age_bars) == (NEVER, None, None)
    report = freshness([s], {}, {}, now_ms=NOW, plan=Plan.STANDARD, store="x.db")
    assert report.exit_code == 1 and report.problems() == f"1 never fetched ({s.id})"


def test_missing_bars_and_known_holes_are_counted_in_the_wanted_range() -> None:
    s = _series("funding", history_days=30)
    step = HOUR_MS
    last = bar_open(NOW, "1h") - step
    first = bar_open(NOW - 30 * DAY_MS, "1h")
    gap = (last - 50 * step, last - 47 * step)  # 3 bars never stored, to fetch again
    known = Hole(last - 20 * step, last - 15 * step, attempts=KNOWN_HOLE_RUNS)  # 5 bars the API never had
    held = Coverage(((first, gap[0]), (gap[1], known.start), (known.end, last + step)), (known,))
    f = series_freshness(s, Cursor(last), held, now_ms=NOW, plan=Plan.STANDARD)
    assert (f.status, f.missing_bars, f.known_hole_bars) == (FRESH, 3, 5)
    assert f.as_dict(NOW)["holes"][0] == {"start": known.start, "end": known.end, "bars": 5,
                                          "attempts": KNOWN_HOLE_RUNS, "known": True, "reason": ""}


def test_the_daily_etf_flows_allow_a_long_weekend_and_snapshots_are_judged_by_their_last_snapshot() -> None:
    etf = _series("etf_flows", health={"freshness_intervals": 2})
    four_days = bar_open(NOW, "1d") - 4 * DAY_MS
    f = series_freshness(etf, Cursor(four_days), None, now_ms=NOW, plan=Plan.STANDARD)
    assert (f.status, f.limit_bars, f.missing_bars) == (FRESH, 5, None)  # as run-preset's check: 5 days
    snap = _series("liquidation_exchanges")
    taken = bar_open(NOW, "1h") - 3 * HOUR_MS
    f = series_freshness(snap, Cursor(None, latest=taken), None, now_ms=NOW, plan=Plan.STANDARD)
    assert (f.last_bar, f.status) == (taken, STALE)  # 3.4 bars > 2


def _store(tmp_path: Path, stale_coin: str | None = None, *, location: str | None = None) -> tuple[Path, str]:
    """Configs for SOL and BTC and a store whose data a run fetched now, but `stale_coin`'s 5 hours ago."""
    folder = write_configs(tmp_path / "cfg", ("SOL", "BTC"))
    db = location or str(tmp_path / "store.db")
    now = int(time.time() * 1000)
    loaded = load_configs([folder])
    with open_store(db) as st:
        for path, cfg in loaded:
            fetched = now - 5 * HOUR_MS if cfg.coin == stale_coin else now
            run_preset([(path, cfg)], FakeClient(now_ms=fetched), st, now_ms=fetched, concurrency=2)
    return folder, db


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_freshness_names_the_stale_series_from_the_store_alone(tmp_path: Path, backend: str,
                                                               request: pytest.FixtureRequest) -> None:
    location = str(request.getfixturevalue("pg_dsn")) if backend == "postgresql" else None
    folder, db = _store(tmp_path, stale_coin="BTC", location=location)
    before = Path(db).read_bytes() if backend == "sqlite" else None
    result = invoke("freshness", str(folder), "--store", db)  # no key, no API: the store alone
    assert result.exit_code == 1, result.output
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith("6/11 series fresh in ")  # SOL's 5 and the ETF flows; BTC's 5 are stale
    # 6 bars and the part of an hour past the wall clock's last bar open: 6.0 to 7.0 by the minute
    assert re.search(r"not fresh: 5 stale \(funding/BTC/Binance:BTCUSDT/1h (6\.\d|7\.0) bars > 2", summary), summary
    doc = json.loads(invoke("freshness", str(folder), "--store", db, "--json").stdout)
    assert doc["schema"] == "cgpreset.freshness/1" and doc["exit_code"] == 1
    assert (doc["fresh"], doc["stale"], doc["never_fetched"]) == (6, 5, 0)
    btc = next(s for s in doc["series"] if s["id"] == "open_interest/BTC/all/1h")
    assert btc["status"] == "stale" and btc["limit_bars"] == 2 and 6 <= btc["age_bars"] < 7
    assert btc["last_bar_ts"].endswith("Z") and btc["age_seconds"] >= 5 * 3600
    if before is not None:
        assert Path(db).read_bytes() == before  # read-only
    fresh_only = invoke("freshness", str(folder / "sol.yaml"), "--store", db)
    assert fresh_only.exit_code == 0 and "6/6 series fresh" in fresh_only.stdout


def test_freshness_table_fits_80_columns_and_quiet_prints_the_summary_only(tmp_path: Path) -> None:
    folder, db = _store(tmp_path)
    full = invoke("freshness", str(folder), "--store", db, env={"COLUMNS": "80"})
    assert full.exit_code == 0, full.output
    assert max(len(line) for line in full.stdout.splitlines()[:-1]) <= 80
    assert {"coin", "layer", "status"} <= set(full.stdout.split())
    quiet = invoke("freshness", str(folder), "--store", db, "-q")
    assert quiet.stdout.splitlines() == [full.stdout.splitlines()[-1]]


def test_a_store_that_does_not_exist_is_never_fetched_and_not_created(tmp_path: Path) -> None:
    folder = write_configs(tmp_path / "cfg", ("SOL",))
    result = invoke("freshness", str(folder), "--store", str(tmp_path / "none.db"))
    assert result.exit_code == 1
    assert "none.db does not exist: no run has written it yet" in result.stderr
    assert "0/6 series fresh" in result.stdout and "6 never fetched" in result.stdout
    assert not (tmp_path / "none.db").exists()


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("coin: SOL\nplan: nope\n")
    assert invoke("freshness", str(bad), "--store", str(tmp_path / "x.db")).exit_code == 2
    folder = write_configs(tmp_path / "cfg", ("SOL",))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    result = invoke("freshness", str(folder), "--store", str(garbage))
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {garbage}")


def test_read_freshness_takes_the_plan_the_store_recorded(tmp_path: Path) -> None:
    folder, db = _store(tmp_path)
    report = read_freshness(load_configs([folder]), Path(db))
    assert report.plan == Plan.STANDARD and report.exit_code == 0
    assert all(f.missing_bars == 0 for f in report.series if f.series.is_history)


# -- health --store ---------------------------------------------------------------------------------

def test_health_with_a_store_of_stale_data_is_not_signed_off(tmp_path: Path, emu_env: dict[str, str]) -> None:
    folder, db = _store(tmp_path, stale_coin="SOL")
    plain = invoke("health", str(folder), env=emu_env)  # no store named: today's sign-off, the API only
    assert plain.exit_code == 0 and "— signed off" in plain.stdout and "data:" not in plain.stdout
    named = invoke("health", str(folder), "--store", db, env=emu_env)
    assert named.exit_code == 1
    lines = named.stdout.splitlines()
    data = next(line for line in lines if line.startswith("data: "))
    assert re.search(r"not fresh: 5 stale \(funding/SOL/Binance:SOLUSDT/1h (6\.\d|7\.0) bars > 2", data), data
    assert lines[-1].startswith("9/9 shots ok — not signed off: the store's data is not fresh "
                                "(5 series stale or never fetched)")
    by_env = invoke("health", str(folder), env={**emu_env, "CGPRESET_STORE": db})
    assert by_env.exit_code == 1 and "the store's data is not fresh" in by_env.stdout
    doc = json.loads(invoke("health", str(folder), "--store", db, "--json", env=emu_env).stdout)
    assert doc["exit_code"] == 1 and doc["freshness"]["schema"] == "cgpreset.freshness/1"
    assert doc["freshness"]["stale"] == 5
    quiet = invoke("health", str(folder), "--store", db, "-q", env=emu_env)
    assert quiet.stdout.splitlines() == [lines[-1]]


def test_health_signs_off_a_fresh_store_and_still_shows_the_stream(tmp_path: Path, emu_env: dict[str, str]) -> None:
    folder, db = _store(tmp_path)
    result = invoke("health", str(folder), "--store", db, env=emu_env)
    assert result.exit_code == 0, result.output
    assert "data: 11/11 series fresh" in result.stdout
    assert "stream: no stream has run against " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("9/9 shots ok — signed off")


def test_health_with_a_store_that_does_not_exist_is_not_signed_off(tmp_path: Path,
                                                                   emu_env: dict[str, str]) -> None:
    folder = write_configs(tmp_path / "cfg", ("SOL",))
    result = invoke("health", str(folder), "--store", str(tmp_path / "none.db"), env=emu_env)
    assert result.exit_code == 1
    assert "none.db does not exist" in result.stderr and not (tmp_path / "none.db").exists()

