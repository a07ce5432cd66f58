"""The work unit a user runs: the shipped presets (10 coins, 1h, history_days 90) at 100 ms latency.

Run with:  pytest tests/bench/bench_store.py -m bench -s

`cgpreset generate` clones the shipped presets/sol.yaml to presets/watchlist.yaml's coins against
the emulator; then `cgpreset run-preset` runs them in its own process, as a user runs it (the
emulator's CPU stays in this process, as the real API's stays on its servers; the emulator keeps
the answers of closed windows, so it costs little CPU; a warm-up run fills that cache before
anything is timed). Printed side by side: the first run's
wall time (start-up included), the same requests sent one at a time (a plain HTTP loop, as curl
would send them), the client's CPU per stored
row (user+sys of the run-preset process, start-up included), bytes per row on disk, peak RSS and
the requests of a second (incremental) run.

Measured 2026-12-02 on the shared machine (load ~1.4), main at 4acebd5, two runs: first run
1.62-1.67 s (the run itself 1.24 s), the same 132 requests one at a time 13.7 s (8.2-8.5x),
10.1-10.4 us of client CPU per stored row (87,233 rows), 46.7-46.9 bytes per row, 146 MB peak
RSS, second run 51 requests for 51 series. Before this work (d038da7): 7.6 s, 1.9x, 78 us/row,
378 bytes/row, 52 requests.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cgpreset.emulator import serve
from tests.conftest import REPO

LATENCY_MS = 100
SUBSCRIPTION = "/api/user/account/subscription"
CPU_US_PER_ROW = 12
SPEEDUP = 8
BYTES_PER_ROW = 80


def _env(emu: Any, concurrency: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGPRESET_") and k != "COINGLASS_API_KEY"}
    env.update(CGPRESET_BASE_URL=emu.base_url, COINGLASS_API_KEY=emu.api_key, PYTHONPATH=str(REPO))
    if concurrency is not None:
        env["CGPRESET_CONCURRENCY"] = str(concurrency)
    return env


def _cgpreset(emu: Any, *args: str, concurrency: int | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                                              float, float, int]:
    """One cgpreset process: (its result, wall seconds, user+sys CPU seconds, peak RSS in bytes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cgpreset", *args], env=_env(emu, concurrency),
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu, after.ru_maxrss * 1024  # ru_maxrss: KiB on Linux, the largest child so far


def _run(emu: Any, configs: Path, db: Path, concurrency: int | None = None) -> dict[str, Any]:
    emu.reset_records()
    proc, wall, cpu, rss = _cgpreset(emu, "run-preset", str(configs), "--store", str(db), "--json",
                                     concurrency=concurrency)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    return {"doc": doc, "wall": wall, "cpu": cpu, "rss": rss, "seconds": float(doc["totals"]["seconds"]),
            "requests": len(emu.recorded()), "recorded": list(emu.recorded()),
            "data_requests": len([r for r in emu.recorded() if r.path != SUBSCRIPTION]),
            "rows": sum(int(s.get("new_rows", 0)) for s in doc["series"])}


def _one_at_a_time(emu: Any, recorded: list[Any]) -> dict[str, Any]:
    """The run's requests sent again one at a time, as a loop of curl calls would (no parsing, no store)."""
    emu.reset_records()
    started = time.perf_counter()
    with requests.Session() as http:
        for r in recorded:
            resp = http.get(emu.base_url + r.path, params=r.params, headers={"CG-API-KEY": emu.api_key})
            assert resp.status_code == 200 and resp.content
    return {"wall": time.perf_counter() - started,
            "data_requests": len([r for r in emu.recorded() if r.path != SUBSCRIPTION])}


def _store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


@pytest.mark.bench
def test_bench_work_unit(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    with serve(plan="standard", seed=7, latency_ms=LATENCY_MS) as emu:
        proc, _, _, _ = _cgpreset(emu, "generate", "--out", str(configs))
        assert proc.returncode == 0, proc.stderr[-2000:]
        # the emulator computes each closed window once: warm it, so both timed runs find it warm
        _run(emu, configs, tmp_path / "warm-up.db")
        first = _run(emu, configs, tmp_path / "run.db")
        seq = _one_at_a_time(emu, first["recorded"])
        second = _run(emu, configs, tmp_path / "run.db")
    db = tmp_path / "run.db"
    rows = first["rows"]
    series = len(first["doc"]["series"])
    us_per_row = first["cpu"] / rows * 1e6
    speedup = seq["wall"] / first["wall"]
    bytes_per_row = _store_bytes(db) / rows
    lines = [
        ("work unit", f"{len(list(configs.glob('*.yaml')))} configs, {series} series, "
                      f"{first['requests']} requests, {rows} rows stored"),
        ("first run, wall (process)", f"{first['wall']:.2f} s (run itself {first['seconds']:.2f} s)"),
        ("same requests one at a time", f"{seq['wall']:.2f} s: the run is {speedup:.1f}x faster, start-up "
                                        f"included (target >= {SPEEDUP}x)"),
        ("client CPU per stored row", f"{us_per_row:.1f} us (user+sys {first['cpu']:.2f} s, start-up included; "
                                      f"target <= {CPU_US_PER_ROW})"),
        ("bytes per row on disk", f"{bytes_per_row:.1f} ({_store_bytes(db)} bytes; target <= {BYTES_PER_ROW})"),
        ("peak RSS (largest cgpreset process)", f"{first['rss'] / 1e6:.0f} MB"),
        ("second run", f"{second['requests']} requests for {series} series, {second['wall']:.2f} s "
                       f"(target <= 1 per series)"),
    ]
    width = max(len(a) for a, _ in lines)
    print("\n" + "\n".join(f"{a:<{width}}  {b}" for a, b in lines))
    assert seq["data_requests"] == first["data_requests"]
    assert second["requests"] <= series
    assert bytes_per_row <= BYTES_PER_ROW
    assert speedup >= SPEEDUP
    assert us_per_row <= CPU_US_PER_ROW
