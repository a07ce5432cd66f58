"""`cgpreset stream`: live liquidation (and trade) events over the WebSocket API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cgpreset.channels import CHANNEL_HELP, StreamEvent
from cgpreset.cli.app import App, Number, discard_stdout, new_store, pass_app, refuse_file_store_in_pod
from cgpreset.clock import wall_ms
from cgpreset.errors import FindingsError, TransportError, UsageError
from cgpreset.store import open_store
from cgpreset.store.dsn import display, store_location

if TYPE_CHECKING:
    from cgpreset.stream.options import StreamSummary

_SECONDS = Number(min=0, min_open=True)
_HEARTBEAT = Number(min=0.05)  # below this a connection is declared dead before any pong can arrive


@click.command()
@click.option("--config", "configs", multiple=True, type=click.Path(path_type=Path),
              help="Coin config file or directory (repeatable): keep only its coins, use its channels.")
@click.option("--channel", "channels", multiple=True, metavar="NAME",
              help=f"Channel to subscribe (repeatable); replaces the configs' channels. One of {CHANNEL_HELP}. "
                   "[default: liquidation_orders]")
@click.option("--duration", type=_SECONDS, metavar="SECONDS", help="Stop after this long.")
@click.option("--max-events", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per event; the last line is {"summary": {...}}.')
@click.option("--store", "store", is_flag=False, flag_value="", default=None, metavar="STORE",
              help="Save events (de-duplicated) and liveness to this store (SQLite file or postgresql:// URL); "
                   "a bare --store uses the run store (CGPRESET_STORE).")
@click.option("--retention-days", type=_SECONDS, default=None, metavar="DAYS",
              help="With --store: delete stored events older than DAYS (soon after the start, then hourly).")
@click.option("--ping-interval", type=_HEARTBEAT, metavar="SECONDS",
              help="Seconds between text pings. [default: CGPRESET_HEARTBEAT_SECONDS or 20]")
@click.option("--dead-after", type=_HEARTBEAT, metavar="SECONDS",
              help="Reconnect when nothing arrives for this long. [default: 2 x ping interval]")
@click.option("--min-volume-usd", type=Number(min=0), default=0.0, show_default=True, metavar="USD",
              help="Drop events below this USD value (a config's stream.min_volume_usd wins for its coin).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="N",
              help="Serve Prometheus metrics on http://HOST:N/metrics while streaming (0: a free port, "
                   "printed on stderr).")
@click.option("--metrics-host", default=None, metavar="HOST",
              help="Address the metrics server listens on: 0.0.0.0 every interface (a pod's), 127.0.0.1 this "
                   "machine only. [default: 0.0.0.0]")
@click.option("--summary-every", type=_SECONDS, is_flag=False, flag_value=60.0, default=None, metavar="SECONDS",
              help="Quiet mode: no line per event; one summary line on stderr every SECONDS instead (events by "
                   "exchange, reconnects, last event age; a bare --summary-every is 60). For cluster logs.")
@pass_app
def stream(
    app: App,
    configs: tuple[Path, ...],
    channels: tuple[str, ...],
    duration: float | None,
    max_events: int | None,
    as_json: bool,
    store: str | None,
    retention_days: float | None,
    ping_interval: float | None,
    dead_after: float | None,
    min_volume_usd: float,
    metrics_port: int | None,
    metrics_host: str | None,
    summary_every: float | None,
) -> None:
    """Stream liquidation events live; reconnect and resubscribe on drops.

    Prints one line per event (JSON with --json) until Ctrl-C, --duration or --max-events,
    then a summary with the liveness figures; with --summary-every SECONDS, one summary line every
    SECONDS instead of the event lines. Exit 1 if no event arrived at all (missing data),
    2 for a bad channel, config or store, 3 if the server refuses the key or plan.

    \b
    Examples:
        cgpreset stream --config out/ --duration 60 --json
        cgpreset stream --channel liquidationOrders --channel futures_trades@OKX_SOL-USDT-SWAP@10000
    """
    from cgpreset.models.config import load_configs
    from cgpreset.stream.metrics import MetricsServer, StreamMetrics
    from cgpreset.stream.options import format_event, format_summary, options_from_configs
    from cgpreset.stream.runner import stream_until_stopped

    if metrics_host is not None and metrics_port is None:
        raise UsageError("--metrics-host needs --metrics-port")
    if retention_days is not None and store is None:
        raise UsageError("--retention-days needs --store (it deletes stored events)")
    loaded = load_configs(list(configs)) if configs else []
    options = options_from_configs(  # checked before the target (maybe an embedded emulator) starts
        [cfg for _, cfg in loaded],
        channels=channels,
        sources=[str(path) for path, _ in loaded],
        url="",
        key=None,
        duration=duration,
        max_events=max_events,
        ping_interval=ping_interval or app.settings.heartbeat_seconds,
        dead_after=dead_after,
        backoff_max=app.settings.backoff_max,
        connect_attempts=app.settings.max_attempts,
        min_volume_usd=min_volume_usd,
    )
    from cgpreset.run.source import check_source, describe, stream_source

    app.check_target()  # no key: exit 3 before a store is opened
    source = stream_source(app.settings, embedded=app.emulator)
    db = None
    if store is not None:  # a bad store, or one of another source, is reported before the target starts
        location = store_location(store or app.settings.store)
        refuse_file_store_in_pod(location)
        if new_store(location, store or None):
            click.echo(f"note: {location} does not exist: creating a new store", err=True)
        opened = open_store(location)
        app.stack.callback(opened.close)
        check_source(opened.sources(), source, store=display(location))
        db = opened.stream_sink()
        app.stack.callback(db.close)
        db.source = source
    options.retention_days = retention_days
    settings = app.target.settings
    options.url, options.key = app.target.ws_url, settings.key

    def on_event(event: StreamEvent) -> None:
        click.echo(json.dumps(event.as_dict()) if as_json else format_event(event))

    digest = None
    if summary_every is not None:  # quiet: events counted, a line every N seconds (not under -q)
        from cgpreset.cli.progress import silenced
        from cgpreset.stream.digest import EventDigest

        digest = EventDigest(summary_every, emit=logging.getLogger("cgpreset.stream.summary").info)
        options.liveness_every = min(options.liveness_every, summary_every)  # its lines come at liveness points
        logging.getLogger("cgpreset.stream.summary").setLevel(logging.ERROR if silenced() else logging.INFO)

    metrics = StreamMetrics()
    if metrics_port is not None:
        server = MetricsServer(metrics.registry, metrics_host or "0.0.0.0", metrics_port)
        app.stack.callback(server.close)
        click.echo(f"serving metrics on {server.url}", err=True)
    click.echo(f"streaming {', '.join(options.channels)} from {options.display_url} (source: {describe(source)})",
               err=True)
    summary = stream_until_stopped(options, on_event=on_event if digest is None else digest.on_event, store=db,
                                   metrics=metrics, on_liveness=None if digest is None else digest.on_liveness)
    if summary.stop_reason == "output_closed":  # `| head`: stdout is gone, the summary goes to stderr
        discard_stdout()
        click.echo(format_summary(summary), err=True)
    elif as_json:
        click.echo(json.dumps({"schema": "cgpreset.stream/1", "summary": summary.as_dict()}))
    else:
        click.echo(format_summary(summary), err=True)
    if summary.events == 0:
        if not summary.connections and summary.connect_failures:  # unreachable, not merely quiet
            raise TransportError(no_events_line(summary))
        raise FindingsError(no_events_line(summary))


def no_events_line(summary: StreamSummary) -> str:
    """Why a stream that ended without a single event is a finding, with what did arrive."""
    seen = []
    if summary.filtered_out:
        seen.append(f"{summary.filtered_out} filtered out by coin or minimum volume")
    if summary.unknown_frames:
        seen.append(f"{summary.unknown_frames} frame(s) not understood")
    if summary.error_frames:
        seen.append(f"{summary.error_frames} error frame(s)")
    if not summary.connections:
        seen.append(f"never connected ({summary.connect_failures} failed attempt(s))")
    detail = f" ({'; '.join(seen)})" if seen else ""
    return (
        f"no events arrived in {summary.duration_s:.1f} s on {', '.join(summary.channels)}{detail}"
    )


@click.command("stream-alive")
@click.option("--store", "store", default=None, metavar="STORE",
              help="The store `stream --store` writes (SQLite file or postgresql:// URL) [default: CGPRESET_STORE].")
@click.option("--max-age", type=_SECONDS, default=120.0, show_default=True, metavar="SECONDS",
              help="The stream's liveness row (written every 10 s while connected) may be at most this old.")
@pass_app
def stream_alive(app: App, store: str | None, max_age: float) -> None:
    """Exit 0 if the latest `stream --store` is running and wrote its liveness within --max-age; else 1.

    Reads only the store (no API call): a liveness probe for the stream's container.

    \b
    Example:
        cgpreset stream-alive --store cgpreset.db --max-age 120
    """

    from cgpreset.run.health import stream_liveness

    live = stream_liveness(store_location(store if store is not None else app.settings.store))
    if live is None:
        raise FindingsError("no stream has written to this store")
    age = wall_ms() / 1000 - float(live["updated_at"] or 0)
    if live["status"] != "running":
        raise FindingsError(f"stream run {live['run_id']} is {live['status']} ({live['stop_reason'] or 'no reason'})")
    if age > max_age:
        raise FindingsError(f"stream run {live['run_id']} last wrote its liveness {age:.0f} s ago (> {max_age:g} s)")
    click.echo(f"alive: stream run {live['run_id']}, liveness {age:.0f} s old, {live['events']} events")
