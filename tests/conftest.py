"""Shared fixtures: an isolated environment, fixture loading, a fake clock, the emulator."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's key, URLs, PostgreSQL settings (PG*) or .env file, nor a pod's
    KUBERNETES_SERVICE_HOST (a CI runner in a pod would refuse every file store)."""
    for name in list(os.environ):
        if name.startswith(("CGPRESET_", "PG")) or name in (
                "COINGLASS_API_KEY", "CG_API_KEY", "JOB_COMPLETION_INDEX", "JOB_COMPLETIONS", "COLUMNS",
                "KUBERNETES_SERVICE_HOST"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _shipped_layers_only() -> Iterator[None]:
    """The layer catalogue is the process's: a test that loads a repo's own layers leaves no trace."""
    from cgpreset import layers

    layers.reset()
    yield
    layers.reset()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the `cgpreset` logger; undo it so caplog keeps working in later tests."""
    import logging

    logger = logging.getLogger("cgpreset")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def load_fixture(name: str) -> Any:
    """A JSON file from tests/fixtures (copied from ../shared/samples)."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh in-process CoinGlass emulator (Standard plan) on free ports."""
    from cgpreset.emulator import serve

    with serve(plan="standard", seed=7) as emu:
        yield emu


@pytest.fixture
def emu_env(emulator: Any) -> dict[str, str]:
    """Environment that points the CLI at the emulator fixture."""
    return {
        "CGPRESET_BASE_URL": emulator.base_url,
        "CGPRESET_WS_URL": emulator.ws_url,
        "COINGLASS_API_KEY": emulator.api_key,
    }


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin DSN of a PostgreSQL server (see tests/pg_server.py: skipped without one, failed in CI)."""
    from tests.pg_server import server

    with server() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """DSN of a new, empty PostgreSQL database, dropped after the test."""
    from tests.pg_server import fresh_database

    with fresh_database(pg_server) as dsn:
        yield dsn
