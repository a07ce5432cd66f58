"""cgpreset: clone a production CoinGlass v4 preset to a watchlist, run it, health-check it, stream it.

The Python API, for a notebook or a script (the CLI is a thin layer over it)::

    import cgpreset
    configs = cgpreset.load_configs([Path("deploy")])
    with cgpreset.CoinGlassClient(cgpreset.load_settings()) as client, cgpreset.open_store("cgpreset.db") as store:
        result = cgpreset.run_preset(configs, client, store)     # a RunResult; result.exit_code

Every name in `__all__` is imported on first use (module `__getattr__`), so `import cgpreset`
stays as cheap as the CLI's `--version`. README.md, "Using it from Python", has a complete run.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("cgpreset")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

#: Public name -> the module that defines it.
_HOMES = {
    # errors and exit codes
    "ExitCode": "cgpreset.errors",
    "CgPresetError": "cgpreset.errors",
    "ConfigError": "cgpreset.errors",
    "PlanMismatchError": "cgpreset.errors",
    "UsageError": "cgpreset.errors",
    "OutputError": "cgpreset.errors",
    "FindingsError": "cgpreset.errors",
    "ApiError": "cgpreset.errors",
    "DeadlineExceededError": "cgpreset.errors",
    "StoreUnavailableError": "cgpreset.errors",
    "StopRequestedError": "cgpreset.errors",
    "PushUnavailableError": "cgpreset.errors",
    # settings and the client
    "Settings": "cgpreset.settings",
    "load_settings": "cgpreset.settings",
    "CoinGlassClient": "cgpreset.api.client",
    # the generate pipeline: committed inputs -> configs
    "load_inputs": "cgpreset.generate.pipeline",
    "open_templates": "cgpreset.generate.pipeline",
    "run_resolve": "cgpreset.generate.pipeline",
    "run_generate": "cgpreset.generate.pipeline",
    "resolve": "cgpreset.generate.resolver",
    # the run pipeline: configs -> store
    "load_configs": "cgpreset.models.config",
    "Budget": "cgpreset.run.budget",
    "run_preset": "cgpreset.run.engine",
    "key_plan": "cgpreset.run.planning",
    "plan_preset": "cgpreset.run.planning",
    "run_health": "cgpreset.run.health",
    "Outcome": "cgpreset.run.outcome",
    # streaming
    "StreamOptions": "cgpreset.stream.options",
    "StreamSummary": "cgpreset.stream.options",
    "options_from_configs": "cgpreset.stream.options",
    "run_stream": "cgpreset.stream.session",
    "stream_until_stopped": "cgpreset.stream.runner",
    # the store and the analyst's view of it
    "open_store": "cgpreset.store",
    "read": "cgpreset.analyst.read",
}

__all__ = [
    "__version__",
    "ExitCode",
    "CgPresetError",
    "ConfigError",
    "PlanMismatchError",
    "UsageError",
    "OutputError",
    "FindingsError",
    "ApiError",
    "DeadlineExceededError",
    "StoreUnavailableError",
    "StopRequestedError",
    "PushUnavailableError",
    "Settings",
    "load_settings",
    "CoinGlassClient",
    "load_inputs",
    "open_templates",
    "run_resolve",
    "run_generate",
    "resolve",
    "load_configs",
    "Budget",
    "run_preset",
    "key_plan",
    "plan_preset",
    "run_health",
    "Outcome",
    "StreamOptions",
    "StreamSummary",
    "options_from_configs",
    "run_stream",
    "stream_until_stopped",
    "open_store",
    "read",
]  # the same names as _HOMES (tests/test_api.py checks it)

if TYPE_CHECKING:
    from cgpreset.analyst.read import read
    from cgpreset.api.client import CoinGlassClient
    from cgpreset.errors import (
        ApiError,
        CgPresetError,
        ConfigError,
        DeadlineExceededError,
        ExitCode,
        FindingsError,
        OutputError,
        PlanMismatchError,
        PushUnavailableError,
        StopRequestedError,
        StoreUnavailableError,
        UsageError,
    )
    from cgpreset.generate.pipeline import load_inputs, open_templates, run_generate, run_resolve
    from cgpreset.generate.resolver import resolve
    from cgpreset.models.config import load_configs
    from cgpreset.run.budget import Budget
    from cgpreset.run.engine import run_preset
    from cgpreset.run.health import run_health
    from cgpreset.run.outcome import Outcome
    from cgpreset.run.planning import key_plan, plan_preset
    from cgpreset.settings import Settings, load_settings
    from cgpreset.store import open_store
    from cgpreset.stream.options import StreamOptions, StreamSummary, options_from_configs
    from cgpreset.stream.runner import stream_until_stopped
    from cgpreset.stream.session import run_stream


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cgpreset' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
