"""Reading user files: every failure is one ConfigError line naming the file; their default
locations; and the one wording of a validation error: `file: field[1]: problem`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgpreset.errors import ConfigError, did_you_mean
from cgpreset.layers import LAYERS

if TYPE_CHECKING:  # pydantic is imported by the models that raise its errors, never for --help
    from pydantic import ValidationError

#: Default locations, relative to the working directory (with a packaged fallback, see
#: models.preset.find_default). Here, not beside their loaders, so the CLI's help needs no pydantic.
DEFAULT_PRESET = Path("presets/sol.yaml")
DEFAULT_WATCHLIST = Path("presets/watchlist.yaml")
DEFAULT_TEMPLATES = Path("templates")
#: Where `cgpreset demo` writes its configs, store and report.
DEFAULT_DEMO_DIR = Path("cgpreset-demo")


def read_text(path: Path, *, label: str = "", missing: str | None = None, what: str = "file",
              max_bytes: int | None = None) -> str:
    """The file's UTF-8 text; ConfigError `<label><path>: <why>` when it cannot be had.

    `missing` replaces the message for a file that does not exist (e.g. how to create it).
    """
    raw = read_bytes(path, label=label, missing=missing, what=what, max_bytes=max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}{path}: not UTF-8 text") from None


def read_bytes(path: Path, *, label: str = "", missing: str | None = None, what: str = "file",
               max_bytes: int | None = None) -> bytes:
    """The file's bytes, as read_text words its failures. `max_bytes` refuses a larger file
    before reading it, naming its size, and never reads more than that: a file whose size the
    file system does not tell (a pipe, /dev/zero) is cut there and refused too."""
    where = f"{label}{path}"
    try:
        with path.open("rb") as fh:
            if max_bytes is None:
                return fh.read()
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise ConfigError(f"{where}: {size:,} bytes, more than the {format_size(max_bytes)} a {what} "
                                  "may be")
            raw = fh.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise ConfigError(f"{where}: more than the {format_size(max_bytes)} a {what} may be")
            return raw
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing or 'no such file'}") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None


def format_size(n: int) -> str:
    """A size limit for people: `1 MiB`, `64 KiB`, else in bytes (`1,000 bytes`)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


# -- validation errors: one wording for coin configs, presets, watchlists, snapshots ------------


def field_path(loc: Sequence[str | int]) -> str:
    """A pydantic location as the YAML spells it: `layers.liquidation.exchange_list[1]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def describe_error(err: Mapping[str, Any], model: Any = None) -> str:
    """One pydantic error's message, worded for a file's author (`unknown key`, not pydantic's);
    with the `model` validated, an unknown key gets the nearest key of its place."""
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        if len(loc) == 2 and loc[0] == "layers":
            return f"unknown layer (expected one of {', '.join(LAYERS)})"
        if model is None or not loc:
            return "unknown key"
        return "unknown key" + did_you_mean(str(loc[-1]), keys_at(model, loc[:-1]))
    return str(err["msg"]).removeprefix("Value error, ")


def problem_line(err: Mapping[str, Any], model: Any = None) -> str:
    """One pydantic error as `field: problem` (whole-model checks already name their field)."""
    loc = field_path(tuple(err["loc"]))
    return f"{loc}: {describe_error(err, model)}" if loc else describe_error(err, model)


def _models_in(annotation: Any) -> list[Any]:
    """The pydantic models an annotation holds (through Optional, unions, lists and dicts)."""
    import typing

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def keys_at(model: Any, loc: Sequence[str | int]) -> list[str]:
    """The keys a model accepts at `loc` (a pydantic error's location without its last part)."""
    here = _models_in(model)
    for part in loc:
        if isinstance(part, int):
            continue  # a list item: the element's models are already unwrapped
        here = [m for cls in here if part in cls.model_fields for m in _models_in(cls.model_fields[part].annotation)]
    return sorted({name for cls in here for name in cls.model_fields})


def format_validation(exc: ValidationError, model: Any = None) -> str:
    """Every pydantic error as `field[1]: problem`, joined by "; "; callers put the file in front:
    `file: layers.funding.exchange: Field required; layers.funding.exchnage: unknown key`."""
    return "; ".join(problem_line(err, model) for err in exc.errors())
