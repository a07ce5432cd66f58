"""What every command shares: the per-invocation App (settings, target, client), the group class that
turns errors into one line and an exit code, and the helpers commands print and check outputs with.

Light at the top (tests/test_cli_imports.py): click, errors and the foundation; the rest inside bodies.
"""

from __future__ import annotations

import io
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cgpreset.errors import CgPresetError, ConfigError, ExitCode, OutputError, Terminated
from cgpreset.redact import redact

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cgpreset.api.client import CoinGlassClient
    from cgpreset.settings import Settings
    from cgpreset.store.dsn import StoreLocation

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _RedactingFilter(logging.Filter):
    """Last line of defence: no log record carries the key."""

    def __init__(self, secret: Callable[[], str | None]) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secret())
        record.args = ()
        return True


@dataclass
class Target:
    """Where commands send requests: the API (or the base URL set), or the embedded emulator."""

    base_url: str
    ws_url: str
    settings: Settings  # with the key to use (a throwaway key for the embedded emulator)
    embedded: bool


EMBEDDED_NOTE = "note: --emulator: using the embedded CoinGlass emulator (synthetic data)"
#: Why a command that calls the API refuses to start without a key (an AuthError: exit 3).
NO_KEY = ("no COINGLASS_API_KEY set: export your key (a local cgpreset emulator prints one), "
          "or add --emulator to use the embedded emulator (synthetic data)")


class App:
    """Per-invocation state on ctx.obj: settings (read on first use, so offline commands never
    depend on them), and a lazily built target and client.

    The embedded emulator is used only when asked (`emulator`: the --emulator flag, or `demo`);
    otherwise a command that calls the API needs a key, whatever CGPRESET_BASE_URL says."""

    def __init__(self, settings: Settings | None = None, *, emulator: bool = False,
                 embedded_note: str = EMBEDDED_NOTE) -> None:
        self._settings = settings
        self.overrides: dict[str, object] = {}  # settings given as flags (`--concurrency`)
        self.emulator = emulator
        self.embedded_note = embedded_note
        self.stack = ExitStack()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from cgpreset.settings import load_settings

            self._settings = load_settings(**self.overrides)
        return self._settings

    def override(self, **values: object) -> None:
        """Settings given as command-line flags; a flag left out (None) keeps the environment's value."""
        values = {k: v for k, v in values.items() if v is not None}
        self.overrides.update(values)
        if self._settings is not None and values:
            self._settings = self._settings.model_copy(update=values)  # flags are range-checked by click

    def secret(self) -> str | None:
        """The user's key, if settings were read (for redaction; never printed)."""
        return self._settings.key if self._settings is not None else None

    def check_target(self) -> None:
        """Refuse now, before any store is opened or file written, what `target` would refuse: no key
        (AuthError, exit 3) or a URL set in another place than the key (ConfigError, exit 2)."""
        if self.emulator:
            return
        s = self.settings
        if not s.has_key:
            from cgpreset.errors import AuthError

            raise AuthError(NO_KEY)
        s.check_key_destination()

    @property
    def source(self) -> str:
        """This invocation's source as runs rows and reports name it (run/source.py), without
        starting anything: "emulator" (the embedded one) or the API's host."""
        from cgpreset.run.source import settings_source

        self.check_target()
        return settings_source(self.settings, embedded=self.emulator)

    @cached_property
    def target(self) -> Target:
        self.check_target()
        s = self.settings
        if not self.emulator:
            return Target(s.effective_base_url, s.effective_ws_url, s, embedded=False)
        from pydantic import SecretStr

        from cgpreset.emulator import serve

        click.echo(self.embedded_note, err=True)
        emu = self.stack.enter_context(serve(plan="standard"))
        settings = s.model_copy(update={"api_key": SecretStr(emu.api_key), "base_url": None, "ws_url": None})
        return Target(emu.base_url, emu.ws_url, settings, embedded=True)

    @cached_property
    def client(self) -> CoinGlassClient:
        from cgpreset.api.client import CoinGlassClient

        t = self.target
        client = CoinGlassClient(t.settings, base_url=t.base_url)
        self.stack.callback(client.close)
        return client

    def close(self) -> None:
        self.stack.close()


_EMULATOR_META = "cgpreset.emulator"


def _want_emulator(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--emulator, before the command name (the group's) or after it (the command's)."""
    if value:
        ctx.meta[_EMULATOR_META] = True
        app = ctx.find_object(App)
        if app is not None:
            app.emulator = True


def add_emulator_param(command: click.Command) -> None:
    """Give `command` the --emulator flag too (so `cgpreset run-preset … --emulator` works), once."""
    if not any("--emulator" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(click.Option(
            ["--emulator"], is_flag=True, expose_value=False, callback=_want_emulator,
            help="Talk to the embedded CoinGlass emulator (synthetic data), whatever the key and base URL; "
                 "commands that call no API ignore it."))


pass_app = click.make_pass_decorator(App)


class CgPresetGroup(click.Group):
    """Maps CgPresetError to `Error: <one line>` on stderr and the error's exit code."""

    group_class = type  # subgroups (`runs`, `cursors`) are CgPresetGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Every command also takes -v/-q/--log-format and --emulator, so they work after its name too."""
        from cgpreset.cli.logs import add_log_params

        add_log_params(cmd)
        add_emulator_param(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CgPresetError as exc:
            fail(exc.exit_code, *exc.lines())
        except Terminated:
            click.echo("Terminated.", err=True)
            ctx.exit(ExitCode.TERMINATED)
        except KeyboardInterrupt:
            click.echo("Aborted.", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as Unix tools do
            discard_stdout()
            ctx.exit(ExitCode.OUTPUT_CLOSED)
        except OSError as exc:  # stdout on a full disk, a dead terminal: one line, no traceback
            discard_stdout()
            fail(OutputError.exit_code, f"cannot write output: {exc.strerror or exc}")


def echo_error(line: str) -> None:
    """The one place an error reaches the user: `Error: <line>` on stderr, the key redacted."""
    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(App) if ctx is not None else None
    click.secho(f"Error: {redact(line, app.secret() if app is not None else None)}", fg="red", err=True)


def fail(code: int, *lines: str) -> NoReturn:
    """Print each line as an error, then exit with `code` (an ExitCode)."""
    for line in lines:
        echo_error(line)
    click.get_current_context().exit(code)


def print_tables(*renderables: RenderableType | str, width: int = 200) -> None:
    """Tables on stdout: coloured on a terminal, plain deterministic text otherwise. Off a terminal
    the text goes through click.echo, so a closed pipe is the group's quiet exit 141 (rich's own
    console would turn it into SystemExit(1), a "finding")."""
    from cgpreset.cli.present.text import fit, render_text

    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        for r in renderables:
            fit(r, console)
            console.print(r)
    else:
        click.echo(render_text(*renderables, width=text_width(width)), nl=False)


def new_store(location: object, given: str | None) -> bool:
    """Whether a writing command is about to create an SQLite store (its file does not exist);
    the caller says so on stderr. A store whose folder is missing is refused (UsageError): a
    typo'd `--store x/y.db` must not make folders and backfill 90 days into a new file."""
    from pathlib import Path

    from cgpreset.errors import UsageError

    if not isinstance(location, Path) or location.exists() or location.is_symlink():
        return False
    folder = location.parent
    if not folder.is_dir():
        named = f"--store {location}" if given is not None else f"CGPRESET_STORE={location}"
        why = "is not a folder" if folder.exists() else "does not exist (create it first)"
        raise UsageError(f"{named}: folder {folder} {why}")
    return True


def text_width(default: int) -> int:
    """Width of tables off a terminal: COLUMNS if set (the terminal convention rich and click
    follow too, e.g. `COLUMNS=80 cgpreset health deploy/ > out.txt`), else `default`."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else default


def check_output(path: Path, flag: str, *, store: StoreLocation | None = None, inputs: Iterable[Path] = (),
                 new_folder: bool = False) -> None:
    """Before any work: OutputError (exit 2) unless `path` can be written (not a directory or a
    symbolic link, in a folder that exists unless `new_folder`) and is neither the SQLite store,
    nor one of its side files, nor one of the `inputs` (configs): replacing any of those would
    destroy what the command reads."""
    from cgpreset._io import check_target, refuse_overwrite
    from cgpreset.store.dsn import store_files

    check_target(path, new_folder=new_folder)
    protected = {p: "an input config" for p in inputs}
    refuse_overwrite(path, {**protected, **(store_files(store) if store is not None else {})}, flag=flag)


class Number(click.FloatRange):
    """A finite float in a range: click's FloatRange lets `nan` and `inf` through."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def refuse_file_store_in_pod(location: object) -> None:
    """A writer's store (run-preset, stream --store) in a Kubernetes pod must be PostgreSQL: a file there
    is on the pod's emptyDir, lost with the pod and never shared by the shards (ConfigError, exit 2)."""
    from pathlib import Path

    from cgpreset.settings import in_pod

    if isinstance(location, Path) and in_pod():
        raise ConfigError(f"--store {location.as_posix()}: a file store in a pod is lost with the pod (emptyDir): "
                          "use a PostgreSQL store (CGPRESET_STORE=postgresql://...)")


def discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (tests): nothing to protect
        pass
