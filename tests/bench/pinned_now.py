"""`python -m tests.bench.pinned_now NOW_MS ARGS...`: cgpreset's command line, its runs' clock at NOW_MS.

A run plans the bars it wants from its clock (`run.engine.wall_ms`): the closed bars, the forming
bar, the start of history_days. Two stores compared row for row must be filled at one instant, or
an hour that turns between their runs shifts both ends of every series by a bar. The emulator is
pinned to the same instant (`serve(now_ms=...)`); the command line has no option for it (a user's
runs are at the wall clock), so this launcher sets the engine's clock, as tests pass
`run_preset(now_ms=...)`. The store's own bookkeeping (run start and end, heartbeats) keeps the
wall clock.
"""

from __future__ import annotations

import sys

from cgpreset.run import engine


def main() -> None:
    now_ms = int(sys.argv.pop(1))
    engine.wall_ms = lambda: now_ms  # read at call time by run_preset and the CLI's plan reuse
    from cgpreset.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
