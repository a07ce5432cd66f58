"""`cgpreset runs`, `runs show`, `cursors` and `cursors reset`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.store import open_store
from cgpreset.store.base import Page, SeriesRef

H = 3_600_000
T0 = 1_764_000_000_000 // H * H
FUNDING = SeriesRef("funding/SOL/Binance:SOLUSDT/1h", "funding", "SOL", "Binance", "SOLUSDT", "1h", "{}")
OI = SeriesRef("open_interest/BTC/all/1h", "open_interest", "BTC", None, None, "1h", "{}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store of each backend with two series and two finished runs."""
    location = str(tmp_path / "store.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_dsn"))
    with open_store(location) as st:
        for ref in (FUNDING, OI):
            rows = [(T0 + i * H, 1.0, 2.0, 0.5, 1.5, 1) for i in range(3)]
            st.write(Page(ref, rows, closed_upto=T0 + 2 * H))
        first = st.start_run(now_ms=T0)
        st.finish_run(first, exit_code=1, status="finished",
                      totals={"requests": 7, "retries": 1, "rate_limited": 2, "rate_wait_seconds": 3.5},
                      outcomes={FUNDING.key: {"outcome": "ok", "reason": None, "rows": 3, "new_rows": 3,
                                              "findings": [], "error_kind": None},
                                OI.key: {"outcome": "failed", "reason": "503 from GET /oi", "rows": 0,
                                         "new_rows": 0, "findings": [], "error_kind": "server_error"}})
        second = st.start_run(now_ms=T0 + H, source="api.example.com")
        st.finish_run(second, exit_code=0, totals={"requests": 2},
                      outcomes={FUNDING.key: {"outcome": "ok", "rows": 1, "new_rows": 1},
                                OI.key: {"outcome": "ok", "rows": 1, "new_rows": 1}})
    return location


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), input=input)
    return r.exit_code, r.stdout, r.stderr


def test_runs_lists_each_run_with_requests_rate_limits_and_outcomes(store: str) -> None:
    code, out, err = invoke("runs", "--store", store)
    assert code == 0, err
    lines = out.splitlines()
    first = next(line for line in lines if line.lstrip().startswith("1 "))
    assert "finished" in first and " 7 " in first and " 2 " in first and "1 ok 1 fail" in first
    assert max(len(line) for line in lines) <= 80
    doc = json.loads(invoke("runs", "--json", "--store", store)[1])
    assert doc["schema"] == "cgpreset.runs/1"
    one = doc["runs"][0]
    assert (one["id"], one["exit_code"], one["requests"], one["rate_limited"]) == (1, 1, 7, 2)
    assert one["outcomes"] == {"ok": 1, "failed": 1}
    assert one["duration_seconds"] is not None and one["started_at"] == T0
    assert [r["source"] for r in doc["runs"]] == [None, "api.example.com"]  # where each run's data came from


def test_runs_show_gives_each_series_outcome_and_reason(store: str) -> None:
    code, out, err = invoke("runs", "show", "1", "--store", store)
    assert code == 0, err
    assert "run 1: finished, exit 1" in out
    assert "2 rate-limit answers" in out
    assert "plan -, source -" in out and "source api.example.com" in invoke("runs", "show", "2", "--store", store)[1]
    oi = next(line for line in out.splitlines() if line.startswith("BTC"))
    assert "open_interest" in oi and "failed" in oi and "server_error: 503 from GET /oi" in oi
    doc = json.loads(invoke("runs", "--store", store, "show", "1", "--json")[1])
    assert doc["schema"] == "cgpreset.run-detail/1"
    assert [s["outcome"] for s in doc["run"]["series"]] == ["ok", "failed"]  # sorted by key: funding, then OI


def test_runs_show_of_an_unknown_run_is_one_line_exit_2(store: str) -> None:
    code, out, err = invoke("runs", "show", "9", "--store", store)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no run 9 (runs 1 to 2)" in err


def test_cursors_lists_each_series_cursor_and_earliest_bar(store: str) -> None:
    code, out, err = invoke("cursors", "--store", store)
    assert code == 0, err
    assert FUNDING.key in out and OI.key in out
    doc = json.loads(invoke("cursors", "--json", "--store", store)[1])
    assert doc["schema"] == "cgpreset.cursors/1"
    by_key = {c["series"]: c for c in doc["cursors"]}
    assert by_key[FUNDING.key]["last_closed"] == T0 + 2 * H
    assert by_key[FUNDING.key]["earliest"] == T0
    assert by_key[OI.key]["coin"] == "BTC" and by_key[OI.key]["layer"] == "open_interest"


def test_cursors_reset_asks_first_and_forgets_only_matching_cursors(store: str) -> None:
    code, _, err = invoke("cursors", "reset", "funding/*", "--store", store, input="n\n")
    assert code == 2 and "not confirmed: nothing changed" in err
    with open_store(store, readonly=True) as st:
        assert st.cursors()[FUNDING.key] == T0 + 2 * H
    code, out, err = invoke("cursors", "reset", "funding/*", "--store", store, input="y\n")
    assert code == 0, err
    assert "reset 1 cursor" in out
    with open_store(store, readonly=True) as st:
        assert set(st.cursors()) == {OI.key}
        assert st.positions()[FUNDING.key].earliest == T0  # rows and bounds stay
    code, out, err = invoke("cursors", "reset", "*/BTC/*", "--yes", "--store", store)
    assert code == 0 and "reset 1 cursor" in out
    with open_store(store, readonly=True) as st:
        assert st.cursors() == {}


def test_cursors_reset_without_a_match_suggests_the_nearest_series(store: str) -> None:
    code, _, err = invoke("cursors", "reset", "funding/SOL/Binance:SOLUSDT/1H", "--yes", "--store", store)
    assert code == 2
    assert f"did you mean {FUNDING.key}?" in err


def test_runs_on_a_missing_store_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    code, out, err = invoke("runs", "--store", str(missing))
    assert code == 2 and "no such store" in err and err.count("\n") == 1
    assert not missing.exists()


def test_set_exit_code_corrects_a_finished_runs_row(store: str) -> None:
    with open_store(store) as st:
        st.set_exit_code(2, 141)
    doc = json.loads(invoke("runs", "--json", "--store", store)[1])
    assert [r["exit_code"] for r in doc["runs"]] == [1, 141]


def _run_into(location: str, client: Any, **kw: Any) -> None:
    from cgpreset.run.engine import run_preset
    from tests.test_series import NOW, configs

    with open_store(location) as st:
        run_preset(configs("SOL", history_days=90), client, st, now_ms=NOW, concurrency=1, **kw)


def test_runs_show_each_runs_shard_and_job(tmp_path: Path) -> None:
    from cgpreset.run.shard import make_shard
    from tests.fakes import FakeClient

    db = str(tmp_path / "s.db")
    _run_into(db, FakeClient())
    _run_into(db, FakeClient(), shard=make_shard(1, 2), job="cgpreset-run-29413445")
    code, out, _ = invoke("runs", "--store", db)
    assert code == 0
    header, _rule, first, second = out.splitlines()
    assert header.split()[8:11] == ["shard", "job", "series"]  # after id, status, start (UTC), took, exit, req, 429s
    assert first.split()[8:10] == ["-", "-"] and second.split()[8:10] == ["1/2", "cgpreset-run-29413445"]
    narrow = CliRunner().invoke(cli, ["runs", "--store", db], env={"COLUMNS": "80"}).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80 and "1/2" in narrow  # the job goes first
    doc = json.loads(invoke("runs", "--json", "--store", db)[1])
    assert [(r["shard"], r["job"]) for r in doc["runs"]] == [(None, None), ("1/2", "cgpreset-run-29413445")]
    detail = invoke("runs", "show", "2", "--store", db)[1]
    assert detail.splitlines()[0].endswith(", shard 1/2, job cgpreset-run-29413445")


def test_the_job_comes_from_cgpreset_job(tmp_path: Path, emu_env: dict[str, str]) -> None:
    from tests.test_run_e2e import write_configs

    cfgs = write_configs(tmp_path / "c", ("SOL",))
    db = str(tmp_path / "s.db")
    env = {**emu_env, "CGPRESET_JOB": "cgpreset-run-29413445", "JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "1"}
    assert CliRunner().invoke(cli, ["run-preset", str(cfgs), "--store", db, "-q"], env=env).exit_code == 0
    (run,) = json.loads(invoke("runs", "--json", "--store", db)[1])["runs"]
    assert (run["shard"], run["job"]) == ("0/1", "cgpreset-run-29413445")


def test_an_interrupted_runs_row_says_what_it_fetched(tmp_path: Path) -> None:
    """`runs show` of a run stopped by Ctrl-C after 33 stored pages said `plan -` and `series -`."""
    from cgpreset.api.catalogue import Endpoint
    from cgpreset.api.client import Response
    from tests.fakes import FakeClient

    class CtrlC(FakeClient):
        """Ctrl-C during funding's second page."""

        def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
            if ep.id == "funding-rate-history" and sum(c[0] == ep.id for c in self.calls) == 1:
                raise KeyboardInterrupt
            return super().request(ep, params, **kw)

    db = str(tmp_path / "s.db")
    with pytest.raises(KeyboardInterrupt):
        _run_into(db, CtrlC())
    code, out, _ = invoke("runs", "show", "1", "--store", db)
    assert code == 0
    first, second, third = out.splitlines()[:3]
    assert first.startswith("run 1: interrupted, exit 130")
    assert second.endswith("plan standard, source -")  # a library run names no source
    assert third.startswith("series: ") and "skipped; " in third and "rows stored" in third  # not "series: -"
    assert int(third.split("; ")[1].split()[0]) >= 1000
    funding = next(line for line in out.splitlines() if line.startswith("SOL") and "funding" in line)
    assert "skipped" in funding and "interrupted after 1 of 3 requests (1000 rows stored, 1000 new)" in funding
    doc = json.loads(invoke("runs", "show", "1", "--json", "--store", db)[1])["run"]
    assert doc["plan"] == "standard" and doc["rows"] >= 1000 and doc["new_rows"] >= 1000
