"""Benchmark: `cgpreset --version` and `cgpreset --help` each cost at most 0.35 s of CPU.

Run: pytest tests/bench/bench_startup.py -m bench -s
(user + system CPU of the child process, median of 5 runs; prints each figure.)
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys

import pytest

LIMIT_CPU_S = 0.35
RUNS = 5


def _cpu_of(args: list[str]) -> float:
    """User + system CPU seconds of one `python -m cgpreset ARGS` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "cgpreset", *args], check=True, stdout=subprocess.DEVNULL, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.mark.bench
@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_startup_costs_at_most_035_s_of_cpu(flag: str) -> None:
    _cpu_of([flag])  # warm the bytecode cache, as an installed package has it
    runs = [_cpu_of([flag]) for _ in range(RUNS)]
    median = statistics.median(runs)
    print(f"\ncgpreset {flag}: median {median:.3f} s CPU over {RUNS} runs ({', '.join(f'{r:.3f}' for r in runs)})")
    assert median <= LIMIT_CPU_S
