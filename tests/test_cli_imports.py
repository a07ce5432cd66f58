"""Fast start: building the CLI (for `--version`, `--help`) imports none of the heavy libraries.

Each command imports its machinery inside its body; the modules under cgpreset/cli import at the
top only what building the commands needs. The CPU cost itself is measured in
tests/bench/bench_startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("requests", "pydantic", "pydantic_settings", "jinja2", "plotly", "psycopg", "websockets", "rich",
         "tenacity", "sqlite3", "prometheus_client")

_PROBE = """
import json, sys
{setup}
heavy = {heavy!r}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""


def _heavy_after(setup: str) -> list[str]:
    code = _PROBE.format(setup=setup, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return loaded


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert _heavy_after("import cgpreset.cli") == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run-preset", "--help"], ["stream", "--help"]])
def test_version_and_help_import_no_heavy_library(args: list[str]) -> None:
    setup = ("import contextlib, io\nfrom cgpreset.cli import cli\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             f"    cli.main(args={args!r}, prog_name='cgpreset')")
    assert _heavy_after(setup) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a command that does run imports its machinery."""
    assert "pydantic" in _heavy_after("import cgpreset.models.config")


@pytest.mark.parametrize(("extra", "loaded"), [([], False), (["--metrics", "m.prom"], True)])
def test_a_run_imports_prometheus_client_only_for_its_metrics(tmp_path: Path, extra: list[str],
                                                              loaded: bool) -> None:
    """The metrics machinery costs a run's start-up ~25 ms of CPU: it loads only when asked for."""
    from tests.test_run_e2e import write_configs

    cfgs = write_configs(tmp_path / "configs", coins=("SOL",), history_days=1)
    args = ["--emulator", "run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), "--layers", "open_interest",
            *[str(tmp_path / a) if a.endswith(".prom") else a for a in extra]]
    setup = ("import contextlib, io\nfrom cgpreset.cli import cli\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
             f"    cli.main(args={args!r}, prog_name='cgpreset')")
    assert ("prometheus_client" in _heavy_after(setup)) is loaded
    assert (tmp_path / "m.prom").exists() is loaded
