"""A proactive, thread-safe rate limiter shared by every request of the process.

A sliding-window log: at most `limit` request starts in any `window` seconds. The window is a
little longer than the server's minute (`margin`), so that latency jitter between our start and
the server's arrival time can never make the server count `limit + 1` in its minute.

The key's budget is shared by every process on it (shards of one job, a stream, a colleague), so
the server's `API-KEY-MAX-LIMIT` / `API-KEY-USE-LIMIT` headers are the truth: the advertised limit
wins over the plan's table, and usage we did not make is booked as other processes' starts. A
process may also hold only a `share` of the budget (shards: 1/N each, so N shards never overrun
it together), starts with a `probe` of one request instead of a burst (its answer tells how much
of the window is already used), and may delay its first start by a random `jitter` (so shards
started at the same second do not all probe at once).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]

log = logging.getLogger(__name__)
#: A wait for the budget at least this long (seconds) is announced on stderr.
LONG_WAIT = 10.0
#: How often a thread held back by the probe looks again (seconds).
PROBE_POLL = 0.05
#: A probe whose answer takes longer than this (seconds) holds the others back no more.
PROBE_MAX_WAIT = 5.0
#: After a rate-limit answer whose own headers show budget left: a short pause, not the whole window.
SPURIOUS_WAIT = 1.0


class RateLimiter:
    """At most `limit` acquisitions per sliding `window + margin` seconds, across threads."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        margin: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        share: float = 1.0,
        probe: int | None = None,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._plan_limit = limit
        self._advertised: int | None = None  # API-KEY-MAX-LIMIT: wins over the plan's table
        self._span = window + margin
        self._clock = clock
        self._sleep = sleep
        self._share = 1.0
        self._probe = probe  # at most this many starts until the first request has ended
        self._ended = 0
        self._first_start = 0.0
        self._jitter = 0.0
        self._rng = rng or random.Random()
        self._own: deque[float] = deque()  # our own starts
        self._others: deque[float] = deque()  # usage the server reported that we did not make
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # summed over threads: two threads waiting 1 s each count 2 s
        self.wall_waited_seconds = 0.0  # wall-clock time during which at least one thread waited
        self._waiters = 0
        self._wait_since = 0.0
        self.acquired = 0
        self.configure(share=share, jitter=jitter)

    # -- sizing ----------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """The key's budget per window: the server's advertised one, else the plan's."""
        return self._advertised or self._plan_limit

    @property
    def own_limit(self) -> int:
        """This process's part of it (`share` of `limit`, at least 1)."""
        return max(1, math.floor(self.limit * self._share + 1e-9))

    @property
    def share(self) -> float:
        return self._share

    @property
    def span(self) -> float:
        return self._span

    def configure(self, *, share: float | None = None, jitter: float | None = None) -> None:
        """Take only `share` (0 < share <= 1) of the budget; delay the first start by up to `jitter` s."""
        with self._lock:
            if share is not None:
                if not 0 < share <= 1:
                    raise ValueError("share must be more than 0 and at most 1")
                self._share = share
            if jitter is not None and self.acquired == 0:
                self._jitter = max(0.0, jitter)

    def set_limit(self, limit: int) -> None:
        """The plan's budget (from its table); an advertised API-KEY-MAX-LIMIT still wins."""
        if limit >= 1:
            with self._lock:
                self._plan_limit = limit

    # -- the window ------------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        for log_ in (self._own, self._others):
            while log_ and log_[0] <= now - self._span:
                log_.popleft()

    def _delay(self, now: float) -> float:
        """Seconds until one more request may start (0 = now). Caller holds the lock."""
        self._prune(now)
        delay = max(0.0, self._blocked_until - now)
        cap = self.own_limit
        if len(self._own) >= cap:
            delay = max(delay, self._own[len(self._own) - cap] + self._span - now)
        total = self.limit
        if len(self._own) + len(self._others) >= total:
            starts = sorted((*self._own, *self._others))
            delay = max(delay, starts[len(starts) - total] + self._span - now)
        probing = self._probe is not None and self._ended == 0 and self.acquired >= self._probe
        if probing and now - self._first_start < PROBE_MAX_WAIT:
            delay = max(delay, PROBE_POLL)
        return delay

    def _explain(self, delay: float) -> str:
        """Why a wait of `delay` s: what the window holds, ours and others'. Caller holds the lock."""
        own, others = len(self._own), len(self._others)
        if own >= self.own_limit and self._share < 1:
            return (f"this process's share of the rate budget is spent ({own} of {self.own_limit} requests a "
                    f"minute: {self._share:g} of the key's {self.limit}); waiting {delay:.0f} s")
        return (f"rate budget spent: {own + others} of {self.limit} requests in the last minute ({own} by this "
                f"process, {others} by others on the key); waiting {delay:.0f} s")

    def acquire(self, deadline: float | None = None) -> float:
        """Block until a request may start; record it; return the seconds waited.

        With a `deadline` (on this limiter's clock), raise TimeoutError instead of waiting past it.
        """
        waited = 0.0
        waiting = False
        try:
            while True:
                with self._lock:
                    now = self._clock()
                    if self._jitter > 0:  # the process's first start: a random delay for everyone
                        self._blocked_until = max(self._blocked_until, now + self._rng.uniform(0, self._jitter))
                        self._jitter = 0.0
                    delay = self._delay(now)
                    if delay <= 0:
                        if self.acquired == 0:
                            self._first_start = now
                        self._own.append(now)
                        self.acquired += 1
                        self.waited_seconds += waited
                        return waited
                    if not waiting:
                        waiting = True
                        if self._waiters == 0:
                            self._wait_since = now
                            if delay >= LONG_WAIT:  # a pause this long must not look like a hang
                                log.warning("%s", self._explain(delay))
                        self._waiters += 1
                if deadline is not None and now + delay > deadline:
                    self.waited_seconds += waited
                    raise TimeoutError(f"the next wait for the rate budget ({delay:.0f} s) would pass the deadline")
                self._sleep(delay)
                waited += delay
        finally:
            if waiting:
                with self._lock:
                    self._waiters -= 1
                    if self._waiters == 0:
                        self.wall_waited_seconds += max(0.0, self._clock() - self._wait_since)

    def wall_waited(self) -> float:
        """`wall_waited_seconds` with the wait in progress, if any, counted up to now (for progress lines
        written while threads still wait)."""
        with self._lock:
            ongoing = max(0.0, self._clock() - self._wait_since) if self._waiters else 0.0
            return self.wall_waited_seconds + ongoing

    def seconds_for(self, n: int) -> float:
        """Seconds from now until `n` more requests could all have started, as the window stands
        (our starts and others' usage; none made meanwhile): 0 when the budget has room for them."""
        with self._lock:  # a copy of the window; the walk below holds no lock
            now = self._clock()
            self._prune(now)
            own, every = list(self._own), sorted((*self._own, *self._others))
            cap, total, t = self.own_limit, self.limit, max(now, self._blocked_until)
        for _ in range(max(0, n)):  # each start is at or after every earlier one: the logs stay sorted
            if len(own) >= cap:
                t = max(t, own[len(own) - cap] + self._span)
            if len(every) >= total:
                t = max(t, every[len(every) - total] + self._span)
            own.append(t)
            every.append(t)
        return t - now

    def release(self) -> None:
        """A request has ended (answered or not): the probe is over."""
        with self._lock:
            self._ended += 1

    def in_window(self) -> int:
        """Requests started within the current window (ours and others' on the key)."""
        with self._lock:
            self._prune(self._clock())
            return len(self._own) + len(self._others)

    def observe(self, *, max_limit: int | None = None, used: int | None = None) -> None:
        """Keep in step with API-KEY-MAX-LIMIT / API-KEY-USE-LIMIT from a response.

        A larger `used` than our own count means another process shares the key: its requests
        are booked as if they started now, so we slow down instead of running into the limit.
        """
        with self._lock:
            if max_limit is not None and max_limit >= 1:
                self._advertised = max_limit
            if used is not None:
                now = self._clock()
                self._prune(now)
                held = len(self._own) + len(self._others)
                extra = min(used, self.limit) - held  # a full window is full: never book past the limit
                for _ in range(max(0, extra)):
                    self._others.append(now)

    def refused(self, *, retry_after: float | None = None, used: int | None = None,
                max_limit: int | None = None) -> float:
        """After a rate-limit answer: hold everyone back as long as the window needs; return that wait.

        `Retry-After` is the server's word. Headers showing budget left (2 of 300 used) mean the
        refusal was not about the window: a short pause. Headers showing it spent: the window
        (already booked by `observe`) says when a start frees up. No headers: at most a whole window.
        """
        with self._lock:
            now = self._clock()
            if retry_after is not None:
                wait, why = max(0.0, retry_after), f"the server asks for {retry_after:g} s (Retry-After)"
            elif used is not None and used < (max_limit or self.limit):
                wait = SPURIOUS_WAIT
                why = (f"the same answer shows {used} of {max_limit or self.limit} requests used, so the budget is "
                       f"not spent; retrying in {wait:g} s")
            elif used is not None:
                self._prune(now)
                missing = self.limit - len(self._own) - len(self._others)
                for _ in range(max(0, missing)):  # the server says the window is full: so is ours
                    self._others.append(now)
                starts = sorted((*self._own, *self._others))
                wait = max(0.0, starts[len(starts) - self.limit] + self._span - now) if starts else self._span
                why = (f"{used} of {self.limit} requests used in the last minute ({len(self._own)} by this process); "
                       f"waiting {wait:.0f} s for the window to free up")
            else:
                wait, why = self._span, f"no usage headers; waiting {self._span:.0f} s (one window)"
            self._blocked_until = max(self._blocked_until, now + wait)
        log.warning("rate-limit answer: %s", why)
        return wait

    def block_for(self, seconds: float) -> None:
        """Let nobody start for `seconds`."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))
