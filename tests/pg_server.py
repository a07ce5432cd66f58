"""A PostgreSQL server for the tests: CGPRESET_TEST_PG_DSN, or a throwaway one from .ci/postgres.sh.

On a developer's machine without PostgreSQL (no server binaries, no psycopg) the PostgreSQL
tests skip with the reason; in CI (CI=true) that is a failure: a CI that cannot start the server
must not pass by skipping half the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DSN_ENV = "CGPRESET_TEST_PG_DSN"
SCRIPT = Path(__file__).parents[1] / ".ci" / "postgres.sh"
#: Read at import, before the autouse fixture clears every CGPRESET_* variable for each test.
GIVEN_DSN = os.environ.get(DSN_ENV, "").strip()


def unavailable(reason: str) -> None:
    """Skip (a developer's machine) or fail (CI) for want of a server."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _binaries_present() -> bool:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("pg_config") else ""
    return bool(bindir and Path(bindir, "initdb").exists()) or shutil.which("initdb") is not None


@contextmanager
def server() -> Iterator[str]:
    """The admin DSN of a server for this test session (started here unless CGPRESET_TEST_PG_DSN is set)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[test]')")
    if GIVEN_DSN:
        yield GIVEN_DSN
        return
    if not _binaries_present():
        unavailable(f"no PostgreSQL server binaries (pg_config --bindir, initdb) and {DSN_ENV} is not set")
    folder = tempfile.mkdtemp(prefix="cgpreset-pg-")  # directly in /tmp: the postgres user must reach it
    started = subprocess.run(["bash", str(SCRIPT), "start", folder], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"{SCRIPT.name} start failed: {' '.join(started.stderr.split())[-300:]}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True, timeout=120)


def with_database(admin_dsn: str, name: str) -> str:
    """The admin DSN pointed at another database of the same server."""
    head, _, tail = admin_dsn.partition("://")
    rest, q, query = tail.partition("?")
    hostpart = rest.split("/", 1)[0]
    return f"{head}://{hostpart}/{name}{q}{query}"


@contextmanager
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """A new, empty database on the server (dropped afterwards); yields its DSN."""
    import psycopg

    name = f"cgpreset_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_dsn, name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
