"""Logging on stderr: `-v`/`-q`/`--log-format`, accepted before the command or after it.

`-v` shows one line per request (INFO), `-vv` debug, `-q` only errors. `--log-format json` makes
every stderr line one JSON object (`{"time", "level", "logger", "message"}`): log records, notes
and `Error:` lines alike, so a container's log collector never has to parse free text.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import click

FORMATS = ("text", "json")
_META = "cgpreset.log"  # ctx.meta key: {"verbose": int, "quiet": bool, "format": str}
_TEXT = logging.Formatter("%(levelname)s %(name)s: %(message)s")
#: The stderr prefixes that say a plain line's level.
_PREFIXES = (("Error: ", "error"), ("warning: ", "warning"), ("note: ", "info"))


def json_line(level: str, message: str, logger: str = "cgpreset", when: float | None = None) -> str:
    """One stderr line of --log-format json."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if when is None else when))
    return json.dumps({"time": stamp + "Z", "level": level, "logger": logger, "message": message},
                      ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        return json_line(record.levelname.lower(), record.getMessage(), record.name, record.created)


class JsonLines(io.TextIOBase):
    """stderr under --log-format json: every line written to it leaves as one JSON object."""

    def __init__(self, raw: IO[str]) -> None:
        super().__init__()
        self.raw = raw
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self.raw.write(_as_json(line) + "\n")
        self.raw.flush()
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return False  # no progress bars or colours: a log collector reads this

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", None) or "utf-8"


def _as_json(line: str) -> str:
    """A plain stderr line as a JSON object; a line that already is one passes unchanged."""
    text = click.unstyle(line)
    if text.startswith("{"):
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
    for prefix, level in _PREFIXES:
        if text.startswith(prefix):
            return json_line(level, text[len(prefix):])
    return json_line("info", text)


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        source = ctx.get_parameter_source(param.name or name)
        if source is None or source.name == "DEFAULT":
            return
        state = ctx.meta.setdefault(_META, {"verbose": 0, "quiet": False, "format": "text"})
        state[name] = state[name] + value if name == "verbose" else value
        if _HANDLER_ATTR in ctx.meta:  # after the command: the group set logging up already
            apply(ctx)
    return callback


def log_params() -> list[click.Option]:
    """The logging options, as every command (and the group) takes them."""
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_remember("verbose"),
                     help="More logging on stderr: one line per request (-vv for debug)."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_remember("quiet"),
                     help="Only errors from the log on stderr (no progress bar, no warnings); run-preset, "
                          "health and freshness print only their summary line."),
        click.Option(["--log-format"], type=click.Choice(FORMATS), expose_value=False,
                     callback=_remember("format"), metavar="text|json",
                     help="json: one JSON object per stderr line (errors included), for container logs."),
    ]


def add_log_params(command: click.Command) -> None:
    """Give `command` the logging options too (so `cgpreset run-preset -v` works), once."""
    names = {n for p in command.params for n in getattr(p, "opts", ())}
    if "--log-format" not in names:
        command.params.extend(log_params())


_HANDLER_ATTR = "cgpreset.log.handler"


def setup(ctx: click.Context, redacting: logging.Filter) -> None:
    """The `cgpreset` logger's one stderr handler, configured from the options seen so far."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redacting)
    root = logging.getLogger("cgpreset")
    root.handlers[:] = [handler]
    root.propagate = False
    ctx.meta[_HANDLER_ATTR] = handler
    ctx.meta["cgpreset.log.stderr"] = sys.stderr
    ctx.call_on_close(lambda: _restore(ctx))
    apply(ctx)


def apply(ctx: click.Context) -> None:
    """Level and format from the options; under json, sys.stderr itself speaks JSON lines."""
    state = ctx.meta.get(_META, {"verbose": 0, "quiet": False, "format": "text"})
    handler: logging.StreamHandler[Any] = ctx.meta[_HANDLER_ATTR]
    raw: IO[str] = ctx.meta["cgpreset.log.stderr"]
    level = logging.ERROR if state["quiet"] else logging.WARNING - 10 * min(state["verbose"], 2)
    logging.getLogger("cgpreset").setLevel(level)
    if state["format"] == "json":
        handler.setFormatter(JsonFormatter())
        handler.setStream(raw)
        if not isinstance(sys.stderr, JsonLines):
            sys.stderr = JsonLines(raw)
    else:
        handler.setFormatter(_TEXT)
        handler.setStream(raw)
        sys.stderr = raw


def quiet(ctx: click.Context | None = None) -> bool:
    """Whether -q was given (progress stays off)."""
    ctx = ctx or click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_META, {}).get("quiet"))


def _restore(ctx: click.Context) -> None:
    raw = ctx.meta.get("cgpreset.log.stderr")
    if raw is not None and isinstance(sys.stderr, JsonLines):
        sys.stderr.flush()
        sys.stderr = raw
