"""`cgpreset emulator`: run the local CoinGlass v4 emulator (REST + WebSocket) until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from cgpreset import layers
from cgpreset.channels import LIQUIDATION_CHANNELS
from cgpreset.cli.app import Number
from cgpreset.errors import ExitCode, UsageError
from cgpreset.plans import Plan


@click.command("emulator")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535),
              help="REST port (0 = any free port).")
@click.option("--ws-port", default=8788, show_default=True, type=click.IntRange(0, 65535),
              help="WebSocket port (0 = any free port).")
@click.option("--plan", default="standard", show_default=True, type=click.Choice([p.value for p in Plan]),
              help="The plan the emulated key has: rate budget, interval floors, history depth, gating.")
@click.option("--latency-ms", default=0.0, show_default=True, type=Number(min=0),
              help="Delay added to every REST answer.")
@click.option("--faults", "faults_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML or JSON file of scripted faults (format: cgpreset/emulator/faults.py).")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the generated data and faults.")
@click.option("--api-key", default=None, help="The key to accept (default: a random one, printed).")
@click.option("--rate-limit-status", default="200", show_default=True, type=click.Choice(["200", "429"]),
              help="HTTP status of 'Too Many Requests' answers (the body is the same).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--ws-drop-after", type=Number(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Cut every WebSocket connection after SECONDS (no close frame): tests reconnects.")
@click.option("--ws-idle-timeout", type=Number(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Close WebSocket connections that sent nothing (no ping) for SECONDS.")
@click.option("--ws-event-rate", type=Number(min=0), default=20.0, show_default=True,
              metavar="PER_SECOND", help="Liquidation events pushed per second.")
@click.option("--ws-liquidation-channel", default="both", show_default=True,
              type=click.Choice(["both", *sorted(LIQUIDATION_CHANNELS)]),
              help="Which documented liquidation channel name the server speaks (the docs give both).")
@click.option("--key-budget", type=click.IntRange(min=1), default=None, metavar="N",
              help="Requests a minute the key may make (sliding 60 s window) [default: the plan's].")
@click.option("--markets-page-cap", type=click.IntRange(min=1), default=None, metavar="N",
              help="Serve at most N coins-markets rows per page, whatever per_page asks.")
def emulator(port: int, ws_port: int, plan: str, latency_ms: float, faults_file: Path | None, seed: int,
             api_key: str | None, rate_limit_status: str, host: str, ws_drop_after: float | None,
             ws_idle_timeout: float | None, ws_event_rate: float, ws_liquidation_channel: str,
             markets_page_cap: int | None, key_budget: int | None) -> None:
    """Serve a faithful local CoinGlass v4 API (REST + WebSocket) until Ctrl-C.

    Prints the variables that point cgpreset at it. Faults (5xx, hangs, resets, truncated
    JSON, HTML pages, field drift...) are scripted per path with --faults.

    \b
    Example:
        cgpreset emulator --plan hobbyist --faults faults.yaml
        cgpreset emulator --ws-drop-after 5 > emu.env &   # then: . ./emu.env
        cgpreset emulator --plan standard --key-budget 120   # a key below its plan's budget
    """
    from cgpreset.emulator import load_faults, serve  # here: every other command starts without it
    from cgpreset.emulator.data import LIQ_CHANNELS

    faults = load_faults(faults_file, default_seed=seed) if faults_file else None
    own = [ls.id for ls in layers.use([layers.REPO_LAYERS]).values() if not ls.shipped]  # served too
    liq_channels = LIQ_CHANNELS if ws_liquidation_channel == "both" else (ws_liquidation_channel,)
    stop = threading.Event()

    def _on_term(signum: int, frame: Any) -> None:
        stop.set()

    interrupted = False  # Ctrl-C: exit 130 as documented (SIGTERM, the service manager's stop: 0)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_term) if in_main else None
    try:
        with serve(plan=plan, seed=seed, latency_ms=latency_ms, faults=faults, api_key=api_key, port=port,
                   ws_port=ws_port, rate_limit_status=int(rate_limit_status), host=host,
                   ws_drop_after=ws_drop_after, ws_idle_timeout=ws_idle_timeout, ws_event_rate=ws_event_rate,
                   ws_liquidation_channels=liq_channels,
                   markets_page_cap=markets_page_cap, key_budget=key_budget) as emu:
            click.echo(f"export CGPRESET_BASE_URL={emu.base_url}")
            click.echo(f"export CGPRESET_WS_URL={emu.ws_url}")
            click.echo(f"export COINGLASS_API_KEY={emu.api_key}", nl=True)
            sys.stdout.flush()  # so `cgpreset emulator > emu.env &` can be sourced at once
            rules = len(faults.rules) if faults else 0
            served = f", your layers {', '.join(own)} (./layers)" if own else ""
            click.echo(f"CoinGlass v4 emulator: plan {plan}, seed {seed}, {rules} fault rule(s){served}. "
                       "Ctrl-C to stop.", err=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                interrupted = True
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}/{ws_port}: {exc.strerror or exc}") from None
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    click.echo("emulator stopped", err=True)
    if interrupted:
        click.get_current_context().exit(ExitCode.INTERRUPTED)
