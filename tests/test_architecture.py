"""The arrows point down: no module imports a layer above its own (read from the source with ast).

Layers, lowest first (a subpackage may import its own modules and any lower layer, never a
sibling of its rank nor anything above it):

    0 foundation  the top-level modules (errors, settings, plans, timeframes, clock, channels, redact, _io,
                  _yaml) and
                  the layer catalogue (the `layers` package: its loader and shipped definitions)
    1 api, models           everything that speaks CoinGlass / the committed YAML vocabulary
    2 generate, store       the generate pipeline / the store and its backends
    3 run, stream           the run pipeline / the WebSocket stream
    4 analyst               reads the store, reuses run's checks
    5 diagnose              doctor, probe, demo (the demo drives every pipeline)
    6 cli                   the command line, over all of them

The emulator stands apart: it imports only the foundation and api.catalogue (never the client),
and only the CLI imports it. Imports inside functions and under TYPE_CHECKING count: a lazy
import upward is still a dependency upward. `cgpreset/__init__.py` (the public API, lazily
re-exporting every layer) is the one module above all; others import from it only __version__.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "cgpreset"
RANKS = {"api": 1, "models": 1, "generate": 2, "store": 2, "run": 3, "stream": 3, "analyst": 4, "diagnose": 5,
         "cli": 6, "emulator": 2}
EMULATOR_MAY_IMPORT = {"cgpreset.api.catalogue"}
ENTRY_POINTS = {"cgpreset", "cgpreset.__main__"}  # the public API and `python -m cgpreset`: above everything


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Packages that belong to the foundation (imported by everything, importing nothing above).
FOUNDATION_PACKAGES = {"layers"}


def layer_of(module: str) -> str:
    """'cli', 'run', ... for a subpackage's module; 'foundation' for a top-level module."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() and parts[1] not in FOUNDATION_PACKAGES:
        return parts[1]
    return "foundation"


def rank(layer: str) -> int:
    return RANKS.get(layer, 0)


def imports_of(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported cgpreset module) of every import in `source`, at any depth."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("cgpreset"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            if base == "cgpreset":  # `from cgpreset import x`: x is a module, or a name of the public API
                for a in node.names:
                    yield node.lineno, "cgpreset" if a.name == "__version__" else f"cgpreset.{a.name}"
            elif base.startswith("cgpreset."):
                yield node.lineno, base


def violations(module: str, source: str) -> list[str]:
    """Every import of `module` that points up or sideways, as `module:line imports target (why)`."""
    if module in ENTRY_POINTS:
        return []
    here = layer_of(module)
    found = []
    for line, target in imports_of(source, module):
        if target == "cgpreset":
            continue  # __version__
        there = layer_of(target)
        if there == here:
            continue
        why = None
        if here == "emulator" and there != "foundation" and target not in EMULATOR_MAY_IMPORT:
            why = "the emulator imports only the foundation and api.catalogue"
        elif there == "emulator" and here != "cli":
            why = "only the CLI imports the emulator"
        elif here == "foundation" and there != "foundation":
            why = "the foundation imports no subpackage"
        elif there != "emulator" and rank(there) >= rank(here) and here != "emulator":
            why = f"{there} (rank {rank(there)}) is not below {here} (rank {rank(here)})"
        if why:
            found.append(f"{module}:{line} imports {target} ({why})")
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += violations(_module_name(path), path.read_text(encoding="utf-8"))
    assert found == []


def test_every_subpackage_has_a_rank() -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(RANKS) | FOUNDATION_PACKAGES


def test_the_check_sees_an_upward_import() -> None:
    """It can fail: each kind of wrong arrow is reported."""
    assert violations("cgpreset.models.config", "from cgpreset.stream.events import channel_problem") == [
        "cgpreset.models.config:1 imports cgpreset.stream.events (stream (rank 3) is not below models (rank 1))"]
    assert violations("cgpreset.store.sqlite", "def f():\n    import cgpreset.generate.render\n")
    assert violations("cgpreset.api.client", "from cgpreset.models import config")  # a sibling of its rank
    assert violations("cgpreset.errors", "from cgpreset.api import cancel")
    assert violations("cgpreset.emulator.api", "from cgpreset.api.client import CoinGlassClient")
    assert violations("cgpreset.run.engine", "from cgpreset.emulator import serve")
    assert violations("cgpreset.cli.run", "from cgpreset.emulator import serve") == []
    assert violations("cgpreset.run.engine", "from cgpreset.store import open_store\nfrom . import budget") == []


#: What a module outside the store may import of it: the package (open_store, the Store with
#: everything a command needs), its values (store.base) and where a store is (store.dsn).
STORE_API = {"cgpreset.store", "cgpreset.store.base", "cgpreset.store.dsn"}


def store_imports(module: str, source: str) -> list[str]:
    """Every import of a store module beyond its API by a module outside the store (a backend, its
    schema or SQL), as `module:line imports target`; `from cgpreset.store import sqlite` counts."""
    if module == "cgpreset.store" or module.startswith("cgpreset.store.") or module in ENTRY_POINTS:
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module]
            if node.module == "cgpreset.store":  # a module of the package named in the import list
                targets += [f"cgpreset.store.{a.name}" for a in node.names
                            if (PACKAGE / "store" / f"{a.name}.py").exists()]
        found += [f"{module}:{node.lineno} imports {t}" for t in targets
                  if (t == "cgpreset.store" or t.startswith("cgpreset.store.")) and t not in STORE_API]
    return found


def cli_cycles(module: str, source: str) -> list[str]:
    """Imports by which a module under cli/ would import the package or the group that import it."""
    if module in ("cgpreset.cli", "cgpreset.cli.root") or not module.startswith("cgpreset.cli."):
        return []
    return [f"{module}:{line} imports {target}" for line, target in imports_of(source, module)
            if target in ("cgpreset.cli", "cgpreset.cli.root")]


def test_no_command_module_imports_the_package_or_the_group_that_import_it() -> None:
    found = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        found += cli_cycles(_module_name(path), path.read_text(encoding="utf-8"))
    assert found == []


def test_the_cycle_check_sees_one() -> None:
    assert cli_cycles("cgpreset.cli.ops", "from cgpreset.cli import App\n") == [
        "cgpreset.cli.ops:1 imports cgpreset.cli"]
    assert cli_cycles("cgpreset.cli.ops", "from cgpreset.cli.root import cli\n") == [
        "cgpreset.cli.ops:1 imports cgpreset.cli.root"]
    assert cli_cycles("cgpreset.cli.ops", "from cgpreset.cli.app import App\n") == []


def test_every_command_a_module_defines_is_added_to_the_group() -> None:
    """Commands are added by name in cli/root.py; one a module defines but nobody adds would be lost."""
    import importlib

    import click

    from cgpreset.cli import cli

    reachable = set()
    todo: list[click.Command] = [cli]
    while todo:
        command = todo.pop()
        reachable.add(id(command))
        if isinstance(command, click.Group):
            todo += command.commands.values()
    lost = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        module = importlib.import_module(_module_name(path))
        lost += [f"{module.__name__}.{name}" for name, value in vars(module).items()
                 if isinstance(value, click.Command) and id(value) not in reachable]
    assert lost == []


def test_no_module_outside_the_store_imports_a_backend() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += store_imports(_module_name(path), path.read_text(encoding="utf-8"))
    assert found == []


def test_the_store_check_sees_a_backend_imported() -> None:
    assert store_imports("cgpreset.cli.run", "def f():\n    from cgpreset.store.sqlite import SQLiteStore\n") == [
        "cgpreset.cli.run:2 imports cgpreset.store.sqlite"]
    assert store_imports("cgpreset.run.health", "from cgpreset.store import stream_tables") == [
        "cgpreset.run.health:1 imports cgpreset.store.stream_tables"]
    assert store_imports("cgpreset.analyst.source", "import cgpreset.store.pg_connect") == [
        "cgpreset.analyst.source:1 imports cgpreset.store.pg_connect"]
    assert store_imports("cgpreset.cli.ops", "from cgpreset.store import Store, open_store\n"
                                             "from cgpreset.store.dsn import store_location") == []
    assert store_imports("cgpreset.store.sqlite", "from cgpreset.store import sqlite_schema") == []


MAX_MODULE_LINES = 450


def test_no_module_is_over_450_lines() -> None:
    sizes = {path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_the_top_level_holds_only_foundation_modules() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= 11


EXIT_CALLS = {"exit", "_exit", "SystemExit", "Exit"}  # sys.exit, os._exit, ctx.exit, click.exceptions.Exit


def literal_exit_codes(tree: ast.AST) -> list[int]:
    """Lines that end the process with a literal number (exit codes belong to errors.ExitCode)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        arg = node.args[0]
        if name in EXIT_CALLS and isinstance(arg, ast.Constant) and isinstance(arg.value, int):
            found.append(node.lineno)
    return found


def test_no_literal_exit_code_outside_errors_py() -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}" for p in sorted(PACKAGE.rglob("*.py")) if p.name != "errors.py"
                 for line in literal_exit_codes(ast.parse(p.read_text(encoding="utf-8")))]
    assert not offenders, f"literal exit codes (use errors.ExitCode): {', '.join(offenders)}"


def test_the_exit_code_check_sees_one() -> None:
    assert literal_exit_codes(ast.parse("import click\nclick.get_current_context().exit(1)\n")) == [2]
    assert literal_exit_codes(ast.parse("import sys\nsys.exit(ExitCode.FINDINGS)\n")) == []
