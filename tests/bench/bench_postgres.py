"""The shipped work unit into PostgreSQL vs SQLite: client CPU per stored row and wall time.

Run with:  CGPRESET_TEST_PG_DSN=postgresql://... pytest tests/bench/bench_postgres.py -m bench -s
(without the variable a throwaway server is started, see tests/pg_server.py)

The work unit is bench_store's: `cgpreset generate` clones presets/sol.yaml to
presets/watchlist.yaml's 10 coins (1h, history_days 90) against the emulator (100 ms per
request), a warm-up run fills the emulator's cache of closed windows, then the same first run goes
into a new SQLite file and into a new PostgreSQL database, each `cgpreset run-preset` in its own
process. Client CPU is user+sys of that process (start-up included) over the rows it stored.
Targets (issue 11): <= 20 us per row into PostgreSQL, and its wall time <= 1.5x SQLite's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cgpreset.emulator import serve
from tests.bench.bench_store import LATENCY_MS, _cgpreset

PG_US_PER_ROW = 20
PG_WALL_RATIO = 1.5


def _first_run(emu: Any, configs: Path, store: str) -> dict[str, Any]:
    emu.reset_records()  # and the emulator's rate window: each run starts with a full minute's budget
    proc, wall, cpu, _ = _cgpreset(emu, "run-preset", str(configs), "--store", store, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    rows = sum(int(s.get("new_rows", 0)) for s in doc["series"])
    return {"wall": wall, "cpu": cpu, "rows": rows, "seconds": float(doc["totals"]["seconds"]),
            "series": len(doc["series"])}


@pytest.mark.bench
def test_bench_postgres_vs_sqlite(tmp_path: Path, pg_dsn: str) -> None:
    configs = tmp_path / "configs"
    with serve(plan="standard", seed=7, latency_ms=LATENCY_MS) as emu:
        proc, _, _, _ = _cgpreset(emu, "generate", "--out", str(configs))
        assert proc.returncode == 0, proc.stderr[-2000:]
        _first_run(emu, configs, str(tmp_path / "warm-up.db"))
        lite = _first_run(emu, configs, str(tmp_path / "run.db"))
        pg = _first_run(emu, configs, pg_dsn)
    lines = [("work unit", f"{len(list(configs.glob('*.yaml')))} configs, {pg['series']} series, "
                           f"{pg['rows']} rows stored")]
    for name, r in (("SQLite", lite), ("PostgreSQL", pg)):
        lines.append((f"{name}: wall (process)", f"{r['wall']:.2f} s (run itself {r['seconds']:.2f} s)"))
        lines.append((f"{name}: client CPU per row", f"{r['cpu'] / r['rows'] * 1e6:.1f} us "
                                                     f"(user+sys {r['cpu']:.2f} s, start-up included)"))
    ratio = pg["wall"] / lite["wall"]
    us_per_row = pg["cpu"] / pg["rows"] * 1e6
    lines.append(("PostgreSQL / SQLite wall", f"{ratio:.2f}x (target <= {PG_WALL_RATIO}x); "
                                              f"CPU/row target <= {PG_US_PER_ROW} us"))
    width = max(len(a) for a, _ in lines)
    print("\n" + "\n".join(f"{a:<{width}}  {b}" for a, b in lines))
    assert pg["rows"] == lite["rows"]
    assert us_per_row <= PG_US_PER_ROW
    assert ratio <= PG_WALL_RATIO
