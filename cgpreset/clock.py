"""The one wall clock: "now" in milliseconds since the epoch (UTC).

Everything that stamps or ages data by the wall clock (the engine's run, the stores' run rows,
coverage and stream liveness, health, freshness, the analyst's closed bars, the emulator) takes
it as an injected callable that defaults to `wall_ms`, so a test pins "now" in one place and no
module reads time.time() for it. Durations and waits use time.monotonic, injected the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: A wall clock: now, in ms since the epoch (UTC).
WallClock = Callable[[], int]


def wall_ms() -> int:
    """Now, in ms since the epoch (UTC)."""
    return time.time_ns() // 1_000_000
