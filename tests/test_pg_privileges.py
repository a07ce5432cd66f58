"""What the README promises about PostgreSQL privileges (PostgreSQL 15: no CREATE on `public` for
everyone): a non-owner role with CREATE on the schema and TEMPORARY on the database can run
cgpreset; a dashboard role with SELECT on the views only can read them; without TEMPORARY the
run is one `no permission` line, exit 2."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from cgpreset.generate.dashboard import dashboard, queries
from cgpreset.layers import catalogue
from cgpreset.models.config import load_configs
from cgpreset.store.schema import views
from tests.test_kube_monitoring import fill
from tests.test_run_e2e import invoke, write_configs

GRAFANA_QUERY = """
SELECT to_timestamp(time / 1000) AS "time", close AS "SOL open interest (USD)"
FROM open_interest
WHERE coin = 'SOL' AND interval = '1h' AND time >= %(from_ms)s AND time < %(to_ms)s
ORDER BY time
"""


def _as(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@pytest.fixture
def roles(pg_server: str, pg_dsn: str) -> Iterator[tuple[str, str, str]]:
    """(writer DSN, writer without TEMPORARY DSN, reader DSN) on a fresh database the admin owns."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    names = [f"cg_writer_{tag}", f"cg_notemp_{tag}", f"cg_grafana_{tag}"]
    db_name = urlsplit(pg_dsn).path.lstrip("/")
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        for name in names:
            db.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{tag}'")
            db.execute(f'GRANT CONNECT ON DATABASE "{db_name}" TO {name}')
            db.execute(f'REVOKE TEMPORARY ON DATABASE "{db_name}" FROM PUBLIC')
        db.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {names[0]}, {names[1]}")
        db.execute(f'GRANT TEMPORARY ON DATABASE "{db_name}" TO {names[0]}')
        db.execute(f"GRANT USAGE ON SCHEMA public TO {names[2]}")
    try:
        yield tuple(_as(pg_dsn, n, f"pw-{tag}") for n in names)  # type: ignore[misc]
    finally:
        with psycopg.connect(pg_server, autocommit=True) as db:  # the roles own its tables: the database goes first
            db.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            for name in names:
                db.execute(f"DROP ROLE IF EXISTS {name}")


def test_a_role_with_create_and_temporary_runs_and_a_select_only_role_reads_the_views(
        tmp_path: Path, emulator: Any, emu_env: dict[str, str], pg_dsn: str, roles: tuple[str, str, str]) -> None:
    import psycopg

    writer, no_temp, reader = roles
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    refused = invoke(["run-preset", str(cfgs), "--store", no_temp], emu_env)
    assert refused.exit_code == 2 and "no permission" in refused.stderr, refused.output
    ran = invoke(["run-preset", str(cfgs), "--store", writer], emu_env)
    assert ran.exit_code == 0, ran.output
    with psycopg.connect(writer, autocommit=True) as db:  # the README's grants: the views, runs, stream_runs
        for view in (v.name for v in views(catalogue())):
            db.execute(f"GRANT SELECT ON {view} TO {urlsplit(reader).username}")
        db.execute(f"GRANT SELECT ON runs, stream_runs TO {urlsplit(reader).username}")
    layers = sorted({layer for _, cfg in load_configs([cfgs]) for layer in cfg.layers.enabled()})
    with psycopg.connect(reader, autocommit=True) as db:
        rows = db.execute(GRAFANA_QUERY, {"from_ms": 0, "to_ms": 2**53}).fetchall()
        assert len(rows) == 3 * 24 + 1
        for _title, sql in queries(dashboard(layers)):  # every panel of the dashboard, as Grafana's role
            db.execute(fill(sql, "SOL", 0, 2**31)).fetchall()  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("SELECT count(*) FROM data_open_interest")
