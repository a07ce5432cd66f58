"""`python -m tests.bench.peak_rss FILE MODULE ARGS...`: `python -m MODULE ARGS...`, and the
process's own peak RSS in bytes written to FILE as it exits.

Not wait4's ru_maxrss: Linux keeps a process's high-water RSS across exec, so a child spawned by
the benchmark (a pytest process holding the emulator and its caches) reports its parent's RSS
whenever that is larger (sol-analyst's run read 326 MB that way; GNU time, a small parent, measured
79 MB). VmHWM in /proc/self/status is the peak of the image this process runs.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(str(peak_rss())))
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
