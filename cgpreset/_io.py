"""Reading user files: every failure is one ConfigError line naming the file; their default
locations; the one wording of a validation error: `file: field[1]: problem`; and the one writer
of every output file (see "writing outputs" below)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cgpreset.errors import ConfigError, OutputError, did_you_mean

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
            from cgpreset.layers import layer_names

            return (f"unknown layer{did_you_mean(str(loc[1]), layer_names())}; expected one of "
                    f"{', '.join(layer_names())}")
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


# -- writing outputs: one writer for every file cgpreset writes ---------------------------------
#
# A file is written to a temp file created beside it (O_CREAT|O_EXCL|O_NOFOLLOW, a random name:
# a link planted at a name we might use is never opened), fsynced, then renamed onto the target:
# readers see the old file or the new one, never half of it, and a failure leaves the old one.
# A target that is itself a symbolic link is refused rather than replaced: the link is the
# user's, and writing through it would land the output wherever it points.

#: O_NOFOLLOW where the platform has it (not on Windows, where O_EXCL alone refuses a link).
_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
#: Names tried before giving up (each a fresh 64-bit random name, as tempfile.mkstemp tries).
_TEMP_ATTEMPTS = 100


def _token() -> str:
    """The random part of a temp name (a function, so a test can plant a link at the next one)."""
    return secrets.token_hex(8)


def check_target(path: Path, *, new_folder: bool = False) -> None:
    """OutputError if `path` cannot be a file we write: it is a directory or a symbolic link, a
    folder on the way to it is a file, or its folder does not exist (unless `new_folder`: the
    command makes it, as demo makes --out): a typo'd path never makes folders, it is one line.
    Called before any work, so a run never ends on it."""
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; refusing to replace it "
                          "(name the file it points to, or remove the link)")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    for folder in path.parents:  # nearest first: the first that exists must be a directory
        if folder.exists():
            if not folder.is_dir():
                raise OutputError(f"{path}: {folder} is not a directory")
            break
    if not new_folder and not path.parent.is_dir():
        raise OutputError(f"{path}: the folder {path.parent} does not exist (create it first)")


def _mode_of(path: Path) -> int | None:
    """The permission bits of an existing target (kept by its replacement); None if there is none."""
    try:
        return path.lstat().st_mode & 0o777
    except FileNotFoundError:
        return None


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty temp file beside `path` that no one else has or had: (fd, its path)."""
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{_token()}.tmp")
        try:
            return os.open(tmp, _EXCLUSIVE, 0o666), tmp  # 0o666 less the umask, as open() would
        except FileExistsError:  # taken (or a planted link): never opened, try another name
            continue
    raise FileExistsError(f"no free temp name beside {path.name}")


@contextmanager
def _staged(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """An open temp file beside `path` (the target's mode kept); fsynced and closed when the block
    ends, removed if it fails. OSError passes through, for the caller to word."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_of(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stage(path: Path, data: bytes) -> Path:
    """`data` in a temp file beside `path`, on disk (fsynced), to be renamed into place (`commit`;
    generate stages every file first, then renames them all)."""
    with _staged(path) as (fh, tmp):
        fh.write(data)
    return tmp


def commit(tmp: Path, path: Path) -> None:
    """Rename a staged temp file onto its target, then make the rename itself durable."""
    os.replace(tmp, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a directory so a rename in it survives a crash (best effort: not every system can)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content to: it replaces `path` in one rename when the
    block succeeds; when it fails, the temp file goes and `path` is as it was. OutputError
    `path: cannot write: why` if the disk refuses."""
    check_target(path)
    try:
        with _staged(path) as (fh, tmp):
            yield fh
    except OSError as exc:  # the temp file is gone already
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        commit(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (see atomic_output)."""
    with atomic_output(path) as fh:
        fh.write(data)


def same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file: the same inode when both exist, else the same path once
    links and `..` are resolved (an output not written yet can still be the store's path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def refuse_overwrite(path: Path, protected: Mapping[Path, str], *, flag: str) -> None:
    """OutputError (exit 2) if the output `path` is one of the `protected` files (file -> what it
    is: "the store", "an input config"): replacing it would destroy what the command reads."""
    for other, what in protected.items():
        if same_file(path, other):
            raise OutputError(f"{flag} {path}: is {what}; refusing to overwrite it (choose another file)")
