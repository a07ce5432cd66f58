"""`stream --summary-every`: no line per event, one summary line every N seconds (the Deployment's mode).

On tests/ws_fake.py's in-memory server and a virtual-time loop (nothing waits for real), and the
CLI against the fake server on a real socket, asserting counts only.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.stream.digest import EventDigest
from cgpreset.stream.options import StreamOptions
from cgpreset.stream.session import run_stream
from tests.fakes import run_virtual
from tests.test_stream import FAST
from tests.ws_fake import KEY, FakeWS


def _quiet(srv: FakeWS, every: float, **kw: Any) -> tuple[list[tuple[float, str]], Any]:
    """The stream against `srv` on virtual time with a digest as its only event handler: (the digest's
    lines with their time, the summary)."""
    lines: list[tuple[float, str]] = []
    options = StreamOptions(url=srv.url, key=KEY, **{**FAST, "liveness_every": every, **kw})

    def main(clock: Any) -> Any:
        digest = EventDigest(every, emit=lambda line: lines.append((asyncio.get_running_loop().time(), line)))
        return run_stream(options, clock=clock, connect=srv.connect, on_event=digest.on_event,
                          on_liveness=digest.on_liveness)

    summary = run_virtual(main)
    return lines, summary


def test_one_line_every_n_seconds_with_the_events_by_exchange() -> None:
    srv = FakeWS(push_interval=0.02)
    lines, summary = _quiet(srv, 1.0, duration=3.5)
    assert len(lines) == 3  # at 1, 2 and 3 s; the end has the final summary
    start = srv.connections[0].opened
    assert [round(t - start) for t, _ in lines] == [1, 2, 3]
    counts = [int(m.group(1)) for _, text in lines if (m := re.match(r"stream: (\d+) events in the last 1 s", text))]
    assert len(counts) == 3
    assert all(n > 0 for n in counts) and sum(counts) <= summary.events
    assert re.search(r"\(\w+ \d+(, \w+ \d+)*\); \d+ in 3 s, 0 reconnects, last event \d\.\d s ago$", lines[-1][1])


def test_a_silent_stream_still_logs_on_time_with_a_long_ping_interval() -> None:
    """Nothing arrives and the next ping is 20 s away: the lines (and liveness rows) still come every N s."""
    srv = FakeWS(push_interval=None)
    lines, summary = _quiet(srv, 2.0, duration=7.0, ping_interval=20.0)
    assert summary.events == 0 and len(lines) == 3
    assert [round(t - srv.connections[0].opened) for t, _ in lines] == [2, 4, 6]
    assert all(text.startswith("stream: 0 events in the last 2 s; 0 in ") and text.endswith("no event yet")
               for _, text in lines)


def test_the_digest_counts_by_exchange_and_starts_afresh_after_each_line() -> None:
    from cgpreset.channels import StreamEvent

    out: list[str] = []
    digest = EventDigest(60.0, emit=out.append)

    def event(exchange: str) -> StreamEvent:
        return StreamEvent("liquidation_orders", exchange, "SOLUSDT", "SOL", 1.0, "long", 1, 10.0, 0)

    for exchange in ["OKX", "Binance", "OKX"] + [f"X{i}" for i in range(7)]:
        digest.on_event(event(exchange))

    class Summary:
        def __init__(self, at: float) -> None:
            self.duration_s, self.events, self.stored, self.reconnects, self.last_event_age_s = at, 10, 10, 1, 0.5

    digest.on_liveness(Summary(30.0))  # type: ignore[arg-type]  # too early: nothing
    digest.on_liveness(Summary(60.0))  # type: ignore[arg-type]
    assert out == ["stream: 10 events in the last 60 s (OKX 2, Binance 1, X0 1, X1 1, X2 1, X3 1, others 3); "
                   "10 in 60 s, 10 stored, 1 reconnects, last event 0.5 s ago"]
    digest.on_liveness(Summary(120.0))  # type: ignore[arg-type]
    assert out[-1].startswith("stream: 0 events in the last 60 s; 10 in 120 s")


def test_the_cli_prints_no_event_lines_and_the_deployment_runs_it(tmp_path: Path) -> None:
    with FakeWS(push_interval=0.01) as srv:
        env = {"CGPRESET_WS_URL": srv.url, "COINGLASS_API_KEY": KEY}
        loud = CliRunner().invoke(cli, ["stream", "--duration", "1.2"], env=env)
        quiet = CliRunner().invoke(cli, ["stream", "--duration", "1.2", "--summary-every", "0.5"], env=env)
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert len(loud.stdout.splitlines()) > 20  # a line per event
    assert quiet.stdout == ""
    summaries = [line for line in quiet.stderr.splitlines() if line.startswith("INFO cgpreset.stream.summary: ")]
    assert len(summaries) == 2 and quiet.stderr.splitlines()[-1].startswith("stream stopped (duration)")
    from tests.conftest import REPO

    golden = (REPO / "tests" / "golden" / "kubernetes" / "deployment.yaml").read_text()
    assert '"--summary-every", "60"' in golden
