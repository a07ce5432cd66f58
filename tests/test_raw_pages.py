"""No raw JSON per row: an answer's page is kept only on field drift (named once per series) or with --keep-raw."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cgpreset.api.catalogue import Endpoint
from cgpreset.api.client import Response
from cgpreset.plans import HOUR_MS
from cgpreset.run.engine import run_preset
from cgpreset.store.sqlite import Store
from tests.fakes import FakeClient
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
    with Store(db) as store:
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
    with Store(db) as store:
        assert len(store.rows(funding.series.id)) == 60 * 24 + 1  # the typed rows are all there
    _run(db, Drifting(NOW + HOUR_MS), days=60)
    assert len(_raw(db)) == 2  # a later run notes it again, once
