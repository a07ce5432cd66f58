"""SIGTERM and SIGINT end a real process within 2 s in every state, with the run row closed.

Each test starts `cgpreset` as a subprocess against the in-process emulator, waits (a bounded poll,
no fixed sleep) until the emulator has seen the request that puts the child in the state, signals
it and measures signal-to-exit. Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_run_e2e import FAST, write_configs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
LIMIT_S = 2.0

STATES = {
    # a 20 s server hang before the headers
    "in a request": ({"kind": "hang", "seconds": 20}, lambda r: r.path.startswith("/api/futures/")),
    # a rate-limit answer: the limiter holds every request back for the next minute
    "in a budget wait": ({"kind": "rate_limit", "times": 1}, lambda r: r.fault == "rate_limit" and r.http_status),
    # headers at once, then 4 bytes a second
    "in a trickled answer": ({"kind": "trickle", "rate": 4}, lambda r: r.fault == "trickle"),
}


def _wait_for(ready: Any, what: str, bound: float = 20.0) -> None:
    until = time.monotonic() + bound
    while not ready():
        assert time.monotonic() < until, f"the child never got {what}"
        time.sleep(0.02)  # polling for a readiness marker, not waiting for time to pass


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[float, str]:
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return time.monotonic() - sent, err


def _figure(state: str, sig: int, took: float) -> None:
    print(f"\n{signal.Signals(sig).name} -> exit, {state}: {took:.2f} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("state", list(STATES))
def test_run_preset_stops_within_2s(tmp_path: Path, emulator: Any, emu_env: dict[str, str], state: str,
                                    sig: int) -> None:
    rule, ready = STATES[state]
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=3)
    db = tmp_path / "s.db"
    emulator.set_faults([{"path": "/api/futures/*", **rule}])
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_CONCURRENCY": "2", "CGPRESET_PLAN": "standard",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store", str(db)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(ready(r) for r in emulator.recorded()), state)
    took, err = _stop(proc, sig)
    emulator.set_faults(None)
    _figure(state, sig, took)
    assert took < LIMIT_S, err
    status = "terminated" if sig == signal.SIGTERM else "interrupted"
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "Traceback" not in err
    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs").fetchall() == [(status,)]
    con.close()


def test_a_second_ctrl_c_prints_no_traceback(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=3)
    emulator.set_faults([{"path": "/api/futures/*", "kind": "hang", "seconds": 20}])
    env = {**os.environ, **FAST, **emu_env, "CGPRESET_PLAN": "standard", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "run-preset", str(cfgs), "--store",
                             str(tmp_path / "s.db")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(lambda: any(r.path.startswith("/api/futures/") for r in emulator.recorded()), "in a request")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    emulator.set_faults(None)
    assert time.monotonic() - sent < LIMIT_S
    assert proc.returncode == 130 and "Traceback" not in err


def test_stream_idle_stops_within_2s(tmp_path: Path, emulator: Any, emu_env: dict[str, str]) -> None:
    """Idle: a stream connected and waiting for events."""
    env = {**os.environ, **emu_env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "stream", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    json.loads(proc.stdout.readline())  # connected: the first event arrived
    took, err = _stop(proc, signal.SIGTERM)
    _figure("idle (stream)", signal.SIGTERM, took)
    assert took < LIMIT_S and "Traceback" not in err
