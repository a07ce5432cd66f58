"""No raw JSON per row: an answer's page is kept only on field drift (named once per series) or with
--keep-raw, and never with the key an answer echoed."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.emulator import serve
from cgpreset.plans import HOUR_MS
from cgpreset.redact import redact_key
from cgpreset.run.engine import run_preset
from cgpreset.store.sqlite import SQLiteStore
from tests.fakes import FakeClient
from tests.test_run_e2e import invoke, write_configs
from tests.test_series import NOW, configs


class Drifting(FakeClient):
    """Funding rows carry a field the catalogue does not know."""

    def request(self, ep: Endpoint, params: dict[str, Any] | None = None, **kw: Any) -> Response:
        resp = super().request(ep, params, **kw)
        if ep.id == "funding-rate-history":
            resp.data = [{**r, "volume": "1"} for r in resp.data]
        return resp


def _raw(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as c:
        return list(c.execute("SELECT s.key, r.reason FROM raw_pages r JOIN series s ON s.id = r.series"))


def _run(db: Path, client: FakeClient, days: int = 30, **kw: Any) -> Any:
    with SQLiteStore(db) as store:
        return run_preset(configs("SOL", history_days=days), client, store, now_ms=client.now_ms, **kw)


def test_no_raw_page_without_drift_and_every_page_with_keep_raw(tmp_path: Path) -> None:
    _run(tmp_path / "a.db", FakeClient())
    assert _raw(tmp_path / "a.db") == []
    client = FakeClient()
    _run(tmp_path / "b.db", client, keep_raw=True)
    kept = _raw(tmp_path / "b.db")
    assert len(kept) == len(client.calls) and {r for _, r in kept} == {"kept (--keep-raw)"}


def test_field_drift_keeps_the_page_and_names_the_fields_once_per_series(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    result = _run(db, Drifting(), days=60)  # two pages of funding, both drifting
    funding = next(r for r in result.results if r.series.layer == "funding")
    assert funding.requests == 2
    assert funding.notes.count("unknown fields in the answer (raw page kept): volume") == 1
    assert _raw(db) == [(funding.series.id, "unknown fields: volume")]
    with SQLiteStore(db) as store:
        assert len(store.rows(funding.series.id)) == 60 * 24 + 1  # the typed rows are all there
    _run(db, Drifting(NOW + HOUR_MS), days=60)
    assert len(_raw(db)) == 2  # a later run notes it again, once


FUNDING = "/api/futures/funding-rate/history"


@pytest.mark.parametrize(("faults", "flags"), [
    ([{"path": FUNDING, "kind": "drift", "add": {"volume_usd": 1}}, {"path": FUNDING, "kind": "echo_key"}], []),
    ([{"path": "*", "kind": "echo_key"}], ["--keep-raw"]),
], ids=["field-drift", "keep-raw"])
def test_a_kept_page_never_holds_the_key_its_answer_echoed(tmp_path: Path, faults: list[dict[str, Any]],
                                                          flags: list[str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    db = tmp_path / "run.db"
    with serve(plan="standard", seed=7, faults=faults) as emu:
        env = {"CGPRESET_BASE_URL": emu.base_url, "CGPRESET_WS_URL": emu.ws_url, "COINGLASS_API_KEY": emu.api_key}
        result = invoke(["run-preset", str(cfgs), "--store", str(db), *flags], env)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        pages = dict(c.execute("SELECT s.key, r.body FROM raw_pages r JOIN series s ON s.id = r.series"))
    assert pages and (flags or [k.split("/")[0] for k in pages] == ["funding"])
    assert all("served for <redacted>" in raw and emu.api_key not in raw for raw in pages.values())


def test_only_the_key_leaves_a_kept_page() -> None:
    key = "0123456789abcdef0123456789abcdef"
    page = f'[{{"link":"https://user:pw@host/x?password=1","note":"a@b","echo":"served for {key}"}}]'
    assert redact_key(page, key) == page.replace(key, "<redacted>")  # a URL in a value is data, not a secret
