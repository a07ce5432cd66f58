"""Memory of a deep backfill: 720 days of 1h bars for every coin the emulator lists (issue 10 item 5).

Run with:  pytest tests/bench/bench_backfill.py -m bench -s

The shipped preset at `history_days: 720` on a Professional key (the plan that keeps 720 days of
1h bars), cloned by `cgpreset generate` to the top 10 and then to the top 30 coins (the emulator
lists 32; the issue's 100 coins are more than it has), each run by `cgpreset run-preset` in its own
process into a fresh SQLite store. The key's budget is raised (`key_budget`, advertised in the
answers' API-KEY-MAX-LIMIT header, which the client follows) so that the run is bound by the
client's CPU, not by a 1200/min plan. Printed: rows, requests, wall, the client's CPU per row and
the peak RSS of each run-preset process. The target: under 300 MB, and not growing with the
number of series (rows are decoded a page at a time and written as tuples, never kept per series).

Coins listed after the start of the 720 days (the emulator's TRUMP: 2025-01-18) have no bars
before their listing: a first run reports those as missing (exit 1, `gaps`, asked again by the next
runs until known holes, as any bars an API answer lacks), so a run may exit 1 with findings; every
series must still end ok.

Measured 2026-12-02 (main at 4cc9a43, GNU time's peak RSS of the run-preset process): top 10, 51
series, 732 requests, 691,993 rows in 17 s, 126 MB; top 30, 151 series, 2,192 requests, 2,070,981
rows in 41 s, 5.2 us CPU per row, 126 MB.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cgpreset.emulator import serve
from tests.conftest import REPO

RSS_LIMIT = 300e6
TOPS = tuple(int(t) for t in os.environ.get("BENCH_TOPS", "10,30").split(","))
KEY_BUDGET = 60_000  # requests a minute: the run is bound by the client, not by the plan


def _workspace(root: Path, top: int) -> Path:
    """presets/ and templates/ as shipped, the preset at 720 days on Professional, the watchlist at top N."""
    shutil.copytree(REPO / "presets", root / "presets")
    shutil.copytree(REPO / "templates", root / "templates")
    preset = root / "presets" / "sol.yaml"
    text = preset.read_text(encoding="utf-8")
    text = "\n".join("history_days: 720" if line.startswith("history_days:") else
                     "plan: professional" if line.startswith("plan:") else line for line in text.splitlines())
    preset.write_text(text + "\n", encoding="utf-8")
    watchlist = root / "presets" / "watchlist.yaml"
    lines = watchlist.read_text(encoding="utf-8").splitlines()
    watchlist.write_text("\n".join(f"top: {top}" if line.startswith("top:") else
                                   "candidates: 32" if line.startswith("candidates:") else line
                                   for line in lines) + "\n", encoding="utf-8")
    return root


def _cgpreset(emu: Any, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float, int]:
    """One cgpreset process under GNU time: (result, wall s, user+sys CPU s, its peak RSS in bytes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGPRESET_") and k != "COINGLASS_API_KEY"}
    env.update(CGPRESET_BASE_URL=emu.base_url, COINGLASS_API_KEY=emu.api_key, PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "RSS %M", sys.executable, "-m", "cgpreset", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("RSS ")]
    return proc, wall, cpu, (rss[-1] * 1024 if rss else 0)  # GNU time's %M: the process's peak RSS in KiB


def _backfill(emu: Any, root: Path, top: int) -> dict[str, Any]:
    ws = _workspace(root, top)
    proc, _, _, _ = _cgpreset(emu, ws, "generate", "--out", "configs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    emu.reset_records()
    proc, wall, cpu, rss = _cgpreset(emu, ws, "run-preset", "configs", "--store", "backfill.db", "--json", "-q")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: bars before a late listing (see above)
    doc = json.loads(proc.stdout)
    assert {s["outcome"] for s in doc["series"]} == {"ok"}
    assert {c["name"] for s in doc["series"] for c in s["checks"] if not c["ok"]} <= {"gaps"}
    rows = sum(int(s.get("new_rows", 0)) for s in doc["series"])
    return {"top": top, "series": len(doc["series"]), "requests": len(emu.recorded()), "rows": rows,
            "wall": wall, "us_per_row": cpu / rows * 1e6, "rss": rss}


@pytest.mark.bench
def test_bench_deep_backfill_memory(tmp_path: Path) -> None:
    with serve(plan="professional", seed=7, key_budget=KEY_BUDGET) as emu:
        runs = [_backfill(emu, tmp_path / f"top{top}", top) for top in TOPS]
    print()
    for r in runs:
        print(f"top {r['top']:>2}: {r['series']} series, {r['requests']} requests, {r['rows']:,} rows in "
              f"{r['wall']:.1f} s, {r['us_per_row']:.1f} us CPU/row, peak RSS {r['rss'] / 1e6:.0f} MB "
              f"(target < {RSS_LIMIT / 1e6:.0f} MB)")
    small, large = runs
    assert large["rows"] > 2.5 * small["rows"]  # three times the series, 720 days each
    assert all(r["rss"] < RSS_LIMIT for r in runs)
    assert large["rss"] < small["rss"] * 1.5  # memory follows the pages in flight, not the series stored
