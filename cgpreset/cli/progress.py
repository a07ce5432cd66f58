"""Progress where it is read: a bar on a terminal, a log line every 10 s off one (cron, CI, Kubernetes).

Both count requests (the client's, retries included), not series, and show the ETA at the rate in
force (the limiter's: the key's advertised API-KEY-MAX-LIMIT once an answer told it, else the plan's,
times this process's share; a 60/min key on a Standard plan is 60/min, not 300) and the wall-clock
seconds spent waiting for the rate budget (as the run's report and metrics count them: time during
which at least one thread waited, not a sum over threads). `-q` (the `cgpreset` logger above
WARNING) silences both. `RequestProgress` itself has no thread and no clock of its own: tests drive
`tick`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from cgpreset.cli.present.text import format_age

if TYPE_CHECKING:
    from cgpreset.api.protocol import Client, Waits

log = logging.getLogger("cgpreset.progress")
log.setLevel(logging.INFO)  # shown at the default verbosity; -q is checked before anything starts

#: Seconds between two progress lines off a terminal.
LOG_EVERY = 10.0
#: Seconds between two redraws of the bar on a terminal.
DRAW_EVERY = 0.5


def silenced() -> bool:
    """-q: the `cgpreset` logger only lets errors through."""
    return logging.getLogger("cgpreset").getEffectiveLevel() > logging.WARNING


class RequestProgress:
    """Requests done of the expected total, the ETA at the rate in force, the wall-clock budget wait."""

    def __init__(self, label: str, stats: Callable[[], Mapping[str, float]], pace: Waits, *,
                 emit: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 every: float = LOG_EVERY) -> None:
        self.label = label
        self.stats = stats
        self.pace = pace  # the client's rate limiter: the rate in force and the time waited
        self.emit = emit
        self.clock = clock
        self.every = every
        self.total: int | None = None
        self._base = dict(stats())
        self._waited_before = pace.wall_waited()
        self._last = clock()

    def expect(self, total: int) -> None:
        """The plan is known: `total` requests."""
        self.total = total

    def expect_run(self, run_plan: Any) -> None:
        """run_preset's `on_plan`: the plan's requests on top of those made so far (the plan lookup)."""
        self.expect(self.figures()[0] + int(run_plan.requests))

    def expect_shots(self, shots: int, plan: Any) -> None:
        """run_health's `on_plan`: one request per shot."""
        self.expect(self.figures()[0] + shots)

    @property
    def rate_per_minute(self) -> int:
        """The rate in force now (it changes when an answer advertises the key's own limit)."""
        return int(self.pace.own_limit)

    def figures(self) -> tuple[int, int | None, float | None, float]:
        """(requests done, total, ETA seconds at the rate in force, wall seconds waited for the rate
        budget) of this command."""
        now = self.stats()
        done = int(now.get("requests", 0) - self._base.get("requests", 0))
        waited = max(0.0, float(self.pace.wall_waited()) - self._waited_before)
        eta = None
        if self.total is not None and self.rate_per_minute:
            left = max(0, self.total - done)  # at the rate in force, and no sooner than the window lets them start
            eta = max(left / self.rate_per_minute * 60, self.pace.seconds_for(left))
        return done, self.total, eta, waited

    def line(self) -> str:
        done, total, eta, waited = self.figures()
        parts = [f"{self.label}: {done}/{total} requests" if total is not None else f"{self.label}: {done} requests"]
        if eta is not None:
            parts.append(f"ETA {format_age(eta)} at {self.rate_per_minute:g}/min")
        parts.append(f"{waited:.1f}s waiting for the rate budget")
        return ", ".join(parts)

    def tick(self) -> None:
        """Emit a line if `every` seconds passed since the last one."""
        if self.emit is not None and self.clock() - self._last >= self.every:
            self._last = self.clock()
            self.emit(self.line())


@contextmanager
def show_progress(label: str, client: Client) -> Iterator[RequestProgress | None]:
    """Progress of `client`'s requests on stderr while the block runs (None when -q)."""
    stats = client.stats
    if silenced():
        yield None
        return
    if sys.stderr.isatty():
        with _bar(label, stats, client.limiter) as progress:
            yield progress
        return
    progress = RequestProgress(label, stats.as_dict, client.limiter, emit=log.info, every=LOG_EVERY)
    with _ticking(progress, LOG_EVERY):
        yield progress


@contextmanager
def _ticking(progress: RequestProgress, every: float, draw: Callable[[], None] | None = None) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(max(0.01, min(every, DRAW_EVERY))):
            (draw or progress.tick)()

    thread = threading.Thread(target=loop, name="cgpreset-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1.0)


@contextmanager
def _bar(label: str, stats: Any, pace: Waits) -> Iterator[RequestProgress]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = RequestProgress(label, stats.as_dict, pace)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("requests"),
               TextColumn("{task.fields[eta]}"), TextColumn("{task.fields[wait]}"))
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(label, total=None, eta="", wait="")

        def draw() -> None:
            done, total, eta, waited = progress.figures()
            bar.update(task, completed=done, total=total,
                       eta="" if eta is None else f"ETA {format_age(eta)}", wait=f"{waited:.0f}s budget wait")

        with _ticking(progress, DRAW_EVERY, draw):
            yield progress


@contextmanager
def progress_on_first_use(label: str, make_client: Callable[[], Any]) -> Iterator[Callable[[], Any]]:
    """A client factory that starts showing progress when the client is first asked for (an
    offline command never builds one, so it shows nothing)."""
    with ExitStack() as stack:
        started: list[Any] = []

        def client() -> Any:
            c = make_client()
            if not started:
                started.append(stack.enter_context(show_progress(label, c)))
            return c

        yield client
