"""`cgpreset stream-alive`: the stream container's liveness probe reads the store's liveness row."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.errors import ExitCode
from cgpreset.store import open_store


def _stream_row(db: Path, *, age: float, status: str = "running") -> None:
    store = open_store(db)
    sink = store.stream_sink()
    try:
        run = sink.start_run(url="wss://example", channels=["liquidationOrders"], coins=None, now=time.time() - age)
        assert run
        sink.update_run({"events": 5}, now=time.time() - age, last_event_at=None, status=status,
                        stop_reason=None if status == "running" else "duration")
    finally:
        sink.close()
        store.close()


def alive(db: Path, *extra: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["stream-alive", "--store", str(db), *extra])
    return r.exit_code, r.stdout, r.stderr


def test_a_fresh_running_stream_is_alive(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _stream_row(db, age=5)
    code, out, _ = alive(db)
    assert code == 0 and out.startswith("alive: stream run 1, liveness 5 s old")


def test_a_stale_or_stopped_stream_or_none_at_all_is_not(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _stream_row(db, age=300)
    code, _, err = alive(db, "--max-age", "120")
    assert code == ExitCode.FINDINGS and "last wrote its liveness 300 s ago (> 120 s)" in err
    stopped = tmp_path / "t.db"
    _stream_row(stopped, age=1, status="stopped")
    code, _, err = alive(stopped)
    assert code == ExitCode.FINDINGS and "is stopped (duration)" in err
    code, _, err = alive(tmp_path / "none.db")
    assert code == ExitCode.FINDINGS and "no stream has written to this store" in err
