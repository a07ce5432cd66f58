"""The quiet stream's log: no line per event, one summary line every N seconds (`stream --summary-every`).

A Deployment printing every event floods cluster logging (357 lines in 20 s on the emulator). The
digest counts the events handed to it by exchange and, at the session's liveness points (every
10 s while connected, after every connection attempt), writes one line once `every` seconds have
passed since its last one: the events since then by exchange, the totals, reconnects and the age
of the last event. It keeps time on the session's own clock (the summary's `duration_s`), so tests
drive it without sleeping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from cgpreset.channels import StreamEvent
from cgpreset.stream.options import StreamSummary

#: Exchanges named in one line, at most (the rest are counted together).
NAMED = 6


class EventDigest:
    """Counts events by exchange; `on_liveness` emits one line every `every` seconds of the stream."""

    def __init__(self, every: float, emit: Callable[[str], None]) -> None:
        self.every = every
        self.emit = emit
        self.counts: Counter[str] = Counter()
        self._last_line = 0.0  # the stream's time (duration_s) of the last line

    def on_event(self, event: StreamEvent) -> None:
        """The stream's `on_event`: counted, not printed."""
        self.counts[event.exchange] += 1

    def on_liveness(self, summary: StreamSummary) -> None:
        """The stream's liveness point: a line if `every` seconds passed since the last one."""
        if summary.duration_s - self._last_line >= self.every:
            self.emit(self.line(summary, summary.duration_s - self._last_line))
            self._last_line = summary.duration_s
            self.counts.clear()

    def line(self, summary: StreamSummary, seconds: float) -> str:
        """`412 events in the last 60 s (Binance 210, OKX 120, Bybit 82); 3412 in 600 s, 0 reconnects,
        last event 0.4 s ago`."""
        recent = sum(self.counts.values())
        named = self.counts.most_common(NAMED)
        rest = recent - sum(n for _, n in named)
        parts = [f"{exchange} {n}" for exchange, n in named] + ([f"others {rest}"] if rest else [])
        by = f" ({', '.join(parts)})" if parts else ""
        age = summary.last_event_age_s
        last = "no event yet" if age is None else f"last event {age:.1f} s ago"
        stored = "" if summary.stored is None else f", {summary.stored} stored"
        return (f"stream: {recent} events in the last {seconds:.0f} s{by}; {summary.events} in "
                f"{summary.duration_s:.0f} s{stored}, {summary.reconnects} reconnects, {last}")
