"""run-preset benchmark: parallel first run vs a sequential baseline, incremental rerun, rate budget.

Run with:  pytest tests/bench/bench_run.py -m bench -s   (the Hobbyist part takes about a minute)

The emulator (in this process) adds 100 ms to every request; each run is `cgpreset run-preset
--json` in its own process, as a user runs it, so the emulator's CPU does not share our GIL (the
real API's CPU is not on our machine either). The 10-coin watchlist backfills BACKFILL_DAYS days at
1h (one page per series). The baseline is the same command with CGPRESET_CONCURRENCY=1: the same
requests, one at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cgpreset.emulator import serve
from cgpreset.plans import Plan
from cgpreset.settings import Settings
from tests.conftest import REPO
from tests.test_series import make_config

COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "SUI", "HYPE", "ADA", "BNB", "LINK")
BACKFILL_DAYS = 7
LATENCY_MS = 100
SUBSCRIPTION = "/api/user/account/subscription"
DEFAULT_THREADS = Settings.model_fields["concurrency"].default
QUICK = bool(os.environ.get("BENCH_QUICK"))  # skip the one-minute Hobbyist part


def watchlist(folder: Path, interval: str = "1h", plan: str = "standard") -> Path:
    """The 10 coin configs as YAML files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for coin in COINS:
        cfg = make_config(coin, interval=interval, history_days=BACKFILL_DAYS, plan=plan)
        (folder / f"{coin.lower()}.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    return folder


def timed_run(emu: Any, configs: Path, db: Path, concurrency: int | None) -> tuple[float, dict[str, Any], int]:
    """`cgpreset run-preset` in its own process (as a user runs it; the emulator's CPU stays here).

    Returns the run's own seconds (from the JSON report: no interpreter start-up), the report,
    and the data requests the emulator saw.
    """
    emu.reset_records()
    env = {k: v for k, v in os.environ.items() if k != "CGPRESET_CONCURRENCY"}
    env.update(CGPRESET_BASE_URL=emu.base_url, COINGLASS_API_KEY=emu.api_key, PYTHONPATH=str(REPO))
    if concurrency is not None:  # None: the shipped default (Settings.concurrency)
        env["CGPRESET_CONCURRENCY"] = str(concurrency)
    proc = subprocess.run([sys.executable, "-m", "cgpreset", "run-preset", str(configs), "--store", str(db),
                           "--json"], env=env, capture_output=True, text=True, timeout=600)
    doc = json.loads(proc.stdout)
    data = [r for r in emu.recorded() if r.path != SUBSCRIPTION]
    return float(doc["totals"]["seconds"]), doc, len(data)


def rate_limited(emu: Any) -> int:
    """Rate-limit answers the emulator sent (HTTP 429, or body code 400 "Too Many Requests")."""
    return sum(1 for r in emu.recorded() if r.http_status == 429 or r.code in ("400", "429"))


@pytest.mark.bench
def test_bench_run(tmp_path: Path) -> None:
    rows: list[tuple[str, str, str]] = []
    configs = watchlist(tmp_path / "standard")
    with serve(plan="standard", seed=7, latency_ms=LATENCY_MS) as emu:
        base_s, base, base_n = timed_run(emu, configs, tmp_path / "baseline.db", 1)
        limited = rate_limited(emu)
        first_s, first, first_n = timed_run(emu, configs, tmp_path / "run.db", None)
        limited += rate_limited(emu)
        second_s, second, second_n = timed_run(emu, configs, tmp_path / "run.db", None)
        limited += rate_limited(emu)
    series = len(first["series"])
    assert base["exit_code"] == first["exit_code"] == second["exit_code"] == 0
    assert base_n == first_n  # the same requests
    speedup = base_s / first_s
    rows += [
        ("sequential baseline (1 at a time)", f"{base_s:.2f} s", f"{base_n} requests"),
        (f"first run ({DEFAULT_THREADS} threads)", f"{first_s:.2f} s",
         f"{first_n} requests, {speedup:.1f}x faster (target >= 5x)"),
        ("second run (incremental)", f"{second_s:.2f} s",
         f"{second_n} requests for {series} series = {second_n / series:.2f}/series (target <= 1)"),
        ("rate-limit answers, Standard", str(limited), "target 0"),
    ]
    print("\n" + "\n".join(f"{a:<36}  {b:>10}  {c}" for a, b, c in rows))
    assert speedup >= 5
    assert second_n <= series
    assert limited == 0
    if QUICK:
        return

    # Hobbyist: 30/min. 10 coins x 6 layers at 4h = 51 requests (+1 plan call) > 30: the run must
    # go on at the budget's pace (not idle, not exceed it).
    with serve(plan="hobbyist", seed=7, latency_ms=LATENCY_MS) as emu:
        hobby_s, hobby, hobby_n = timed_run(emu, watchlist(tmp_path / "hobbyist", "4h", "hobbyist"),
                                            tmp_path / "hobby.db", None)
        starts = sorted(r.t for r in emu.recorded())
        hobby_limited = rate_limited(emu)
    budget = Plan.HOBBYIST.rate_per_minute
    peak = max(sum(1 for t in starts if s <= t < s + 60) for s in starts)
    full = (len(starts) - 1) // budget * budget  # requests started before the last window opened
    sustained = full / (starts[full] - starts[0]) * 60
    rows += [
        ("Hobbyist run", f"{hobby_s:.1f} s", f"{len(starts)} requests, exit {hobby['exit_code']}"),
        ("Hobbyist peak in any 60 s", str(peak), f"budget {budget}"),
        ("Hobbyist sustained rate", f"{sustained:.1f}/min",
         f"{abs(sustained - budget) / budget:.1%} from budget (target within 5%)"),
        ("rate-limit answers, Hobbyist", str(hobby_limited), "target 0"),
        ("Hobbyist waiting for the budget", f"{hobby['totals']['rate_wait_seconds']:.1f} s",
         f"wall clock ({hobby['totals']['rate_wait_thread_seconds']:.1f} s summed over threads)"),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n" + "\n".join(f"{a:<{width}}  {b:>10}  {c}" for a, b, c in rows))
    assert hobby["exit_code"] == 0 and hobby_n == 51
    assert hobby_limited == 0 and peak <= budget
    assert hobby["totals"]["rate_wait_seconds"] <= hobby["totals"]["seconds"]  # wall clock, not a thread sum
    assert abs(sustained - budget) / budget <= 0.05
