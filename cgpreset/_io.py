"""Reading user files: every failure is one ConfigError line naming the file; their default locations."""

from __future__ import annotations

from pathlib import Path

from cgpreset.errors import ConfigError

#: Default locations, relative to the working directory (with a packaged fallback, see
#: models.preset.find_default). Here, not beside their loaders, so the CLI's help needs no pydantic.
DEFAULT_PRESET = Path("presets/sol.yaml")
DEFAULT_WATCHLIST = Path("presets/watchlist.yaml")
DEFAULT_TEMPLATES = Path("templates")
#: Where `cgpreset demo` writes its configs, store and report.
DEFAULT_DEMO_DIR = Path("cgpreset-demo")


def read_text(path: Path, *, label: str = "", missing: str | None = None, what: str = "file") -> str:
    """The file's UTF-8 text; ConfigError `<label><path>: <why>` when it cannot be had.

    `missing` replaces the message for a file that does not exist (e.g. how to create it).
    """
    where = f"{label}{path}"
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing or 'no such file'}") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a {what}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
