"""How long one store call may wait (for a lock, a statement, an answer): the run's time left, capped.

A store wait is a wait of the run like any other, so `--deadline` covers it. Storing a page gets
the time left and nothing past it. The rest (opening the store, reading it, the runs row) gets
GRACE_S past the deadline, so a run cut by its deadline still reports and records how it ended.
Without a deadline the caps hold: a lock waited on for LOCK_CAP_S, or a statement running for
STATEMENT_CAP_S, means the store is blocked, not slow (StoreUnavailableError: exit 75, retry
later). Once the process is stopping (SIGINT/SIGTERM), pages stop at once and the rest gets
STOPPING_S. Pure: no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cgpreset.api import cancel
from cgpreset.errors import CgPresetError, DeadlineExceededError, StopRequestedError, StoreUnavailableError

#: Longest wait for a lock held by another session (another runner's page takes milliseconds).
LOCK_CAP_S = 60.0
#: Longest one statement may run (a page's upsert takes milliseconds; an export's read, seconds).
STATEMENT_CAP_S = 300.0
#: How far past the deadline the store may still be opened and read and the runs row closed.
GRACE_S = 1.0
#: The least such a call gets, however late (a healthy store answers in milliseconds).
MIN_WAIT_S = 0.25
#: What such a call gets once the process is stopping: the 2 s from signal to exit include it.
STOPPING_S = 0.5

TimeLeft = Callable[[], float | None]


@dataclass(frozen=True)
class Bound:
    """One call's limits in seconds. `left_s`: the run's time left when they were set (None: no
    deadline); a limit that equals it was set by the deadline, so running out of it means "deadline
    reached", not "store blocked"."""

    lock_s: float
    statement_s: float
    left_s: float | None = None
    stopping: bool = False

    def timed_out(self, where: str, waited: str, *, lock: bool) -> CgPresetError:
        """The error for a call that ran out of its lock (`lock`) or statement limit: the stop, the
        deadline, or the store blocked past the cap (transient: exit 75)."""
        limit = self.lock_s if lock else self.statement_s
        if self.stopping:
            return StopRequestedError(f"{where}: the process is stopping", path=where)
        if self.left_s is not None and limit >= self.left_s:  # lock and statement limits are equal: either fires
            return DeadlineExceededError(f"{where}: deadline reached waiting for the store", path=where)
        return StoreUnavailableError(f"{where}: {waited} for {limit:g} s: the store is blocked (retry later)")


class Waits:
    """The limits of a store's calls, from `time_left` (seconds until the run's deadline, None
    without one; e.g. run.budget.Budget.time_left) and the caps.

    Once a page found the store blocked or gone for good (`down`), the pages after it fail at
    once for a lock cap's time, with the same error: the run stops on the first, and the pages
    other threads had fetched meanwhile need not each wait the whole cap again."""

    def __init__(self, time_left: TimeLeft | None = None, *, lock_cap_s: float | None = None,
                 statement_cap_s: float | None = None, stopping: Callable[[], bool] = cancel.CANCEL.is_set,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.time_left: TimeLeft = time_left or (lambda: None)
        self.lock_cap_s = LOCK_CAP_S if lock_cap_s is None else lock_cap_s
        self.statement_cap_s = STATEMENT_CAP_S if statement_cap_s is None else statement_cap_s
        self._stopping = stopping
        self._clock = clock
        self._down: tuple[float, str] | None = None

    def down(self, exc: StoreUnavailableError) -> None:
        """A page found the store unavailable (after its reconnects): the next pages fail at once."""
        self._down = (self._clock(), str(exc))

    def bound(self, where: str, *, grace: bool = False) -> Bound:
        """The limits of one call; `grace`: not a page (opening, reading, the runs row), which gets
        GRACE_S past the deadline. A page past the deadline, or while stopping, is refused here
        (DeadlineExceededError, StopRequestedError) without touching the store."""
        if self._stopping():
            if not grace:
                raise StopRequestedError(f"{where}: the process is stopping", path=where)
            return Bound(STOPPING_S, STOPPING_S, stopping=True)
        down = self._down
        if not grace and down is not None and self._clock() - down[0] < self.lock_cap_s:
            raise StoreUnavailableError(down[1])
        left = self.time_left()
        if left is None:
            return Bound(self.lock_cap_s, self.statement_cap_s)
        if grace:
            left = max(left + GRACE_S, MIN_WAIT_S)
        elif left <= 0:
            raise DeadlineExceededError(f"{where}: deadline reached before the store was used", path=where)
        return Bound(min(left, self.lock_cap_s), min(left, self.statement_cap_s), left_s=left)
