"""The `cgpreset` command line: a thin layer over the Python API.

Errors become one line on stderr and an exit code in exactly one place (`CgPresetGroup`).
Commands live in small modules beside this one; cli/root.py adds each to the `cli` group by name
(COMMANDS), and cli/app.py holds what they share.

Fast start: `cgpreset --version` and `--help` import only click and the foundation modules.
This module and every command module import at the top only what building the commands
needs (click, errors, plans, light constants); a command imports its machinery (pydantic,
requests, rich, the store, ...) inside its body. tests/test_cli_imports.py keeps it so.
"""
from __future__ import annotations

from cgpreset.cli.app import (
    NO_KEY,
    App,
    Number,
    Target,
    check_output,
    discard_stdout,
    echo_error,
    fail,
    new_store,
    pass_app,
    print_tables,
    refuse_file_store_in_pod,
)
from cgpreset.cli.root import cli, main
from cgpreset.errors import ExitCode

__all__ = ["NO_KEY", "App", "ExitCode", "Number", "Target", "check_output", "cli", "discard_stdout", "echo_error",
           "fail", "main", "new_store", "pass_app", "print_tables", "refuse_file_store_in_pod"]
