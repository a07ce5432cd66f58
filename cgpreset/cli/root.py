"""The `cgpreset` group, its command modules, the signal handling and the console-script entry point."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import click

from cgpreset import __version__
from cgpreset.api import cancel

# The command modules import cli.app, never this module: no import cycle, and no registration by side effect.
from cgpreset.cli import analyst, doctor, emulator, freshness, generate, health, init, layers, ops, run, stream
from cgpreset.cli.app import _EMULATOR_META, CONTEXT_SETTINGS, App, CgPresetGroup, _RedactingFilter, add_emulator_param
from cgpreset.errors import ExitCode, Terminated


@click.group(cls=CgPresetGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="cgpreset")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Clone a production CoinGlass v4 preset to a watchlist, run it, check it, stream it.

    Commands that call the API need COINGLASS_API_KEY; --emulator (before or after the command
    name) makes them talk to the embedded emulator instead, whose data is synthetic.

    \b
    Quick start (no key needed: the embedded emulator answers):
        cgpreset demo
        cgpreset --emulator resolve
    """
    from cgpreset.cli.logs import setup

    app = App(emulator=bool(ctx.meta.get(_EMULATOR_META)))
    setup(ctx, _RedactingFilter(app.secret))
    ctx.obj = app
    ctx.call_on_close(app.close)


def _group_params() -> None:
    from cgpreset.cli.logs import add_log_params

    add_log_params(cli)
    add_emulator_param(cli)


_group_params()


#: Every command, by module (cgpreset/cli/<name>.py). A new command: a function in a module beside
#: this one (light at the top), and its name here.
COMMANDS: tuple[click.Command, ...] = (
    analyst.export_cmd, analyst.report_cmd,
    doctor.doctor,
    emulator.emulator,
    freshness.freshness_cmd,
    generate.resolve, generate.generate, generate.validate, generate.schema,
    health.health,
    init.init_cmd,
    layers.layers_cmd,
    ops.runs_cmd, ops.cursors_cmd,
    run.run_preset_cmd, run.demo,
    stream.stream, stream.stream_alive,
)
for _command in COMMANDS:
    cli.add_command(_command)


def _on_signal(signum: int, frame: Any) -> None:
    """First SIGINT/SIGTERM: every wait and read in any thread stops (CANCEL), the main thread unwinds
    (runs rows and stores close). Later signals are ignored, so the unwinding is never cut into a traceback."""
    cancel.CANCEL.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    terminated = signum == signal.SIGTERM
    backstop = threading.Timer(HARD_STOP_SECONDS, _exit_now, (ExitCode.TERMINATED if terminated else
                                                                ExitCode.INTERRUPTED, terminated))
    backstop.daemon = True
    backstop.start()
    raise Terminated() if terminated else KeyboardInterrupt()


#: After a signal, how long worker threads may take to end on their own before the process exits anyway.
STOP_GRACE_SECONDS = 1.0
#: However the unwinding goes, the process ends this long after the first signal. It takes
#: milliseconds; what it guards against is the main thread stuck in a call that ignores the stop,
#: e.g. psycopg cancelling a statement on a server that stopped answering (it waits up to 5 s).
HARD_STOP_SECONDS = 1.5


def _exit_now(code: int, terminated: bool) -> None:
    """The backstop: say so as the unwinding would have, and end the process (its work is whole pages)."""
    try:
        sys.stderr.write("Terminated.\n" if terminated else "Aborted.\n")
    except (OSError, ValueError):
        pass
    _exit_after_signal(code, grace=0.0)


def _exit_after_signal(code: int, grace: float | None = None) -> None:
    """End the process now, even if a worker thread is still blocked in a socket read (its work is
    whole pages in the store, as after kill -9): the interpreter would otherwise join it at exit."""
    until = time.monotonic() + (STOP_GRACE_SECONDS if grace is None else grace)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, until - time.monotonic()))
    for out in (sys.stdout, sys.stderr):
        try:
            out.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    if threading.current_thread() is not threading.main_thread():
        cli.main(args=argv, prog_name="cgpreset")  # never returns: click exits with the command's code
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    try:
        cli.main(args=argv, prog_name="cgpreset")
    except SystemExit as exc:
        if cancel.CANCEL.is_set():
            _exit_after_signal(exc.code if isinstance(exc.code, int) else 1)
        raise

