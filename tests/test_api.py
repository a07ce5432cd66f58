"""The Python API: `cgpreset.__all__` names what a notebook needs, each name resolves, the import stays cheap."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import cgpreset

NOTEBOOK_NEEDS = {"run_generate", "run_resolve", "resolve", "run_preset", "run_health", "load_configs",
                  "CoinGlassClient", "Settings", "load_settings", "run_stream", "stream_until_stopped",
                  "open_store", "read", "CgPresetError", "ConfigError", "ApiError", "ExitCode"}


def test_all_names_what_a_notebook_needs() -> None:
    assert NOTEBOOK_NEEDS <= set(cgpreset.__all__)
    assert set(cgpreset.__all__) == {"__version__", *cgpreset._HOMES}
    assert len(cgpreset.__all__) == len(set(cgpreset.__all__))


@pytest.mark.parametrize("name", sorted(cgpreset._HOMES))
def test_each_name_resolves_to_its_home(name: str) -> None:
    home = importlib.import_module(cgpreset._HOMES[name])
    assert getattr(cgpreset, name) is getattr(home, name)
    assert name in dir(cgpreset)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'run_everything'"):
        cgpreset.run_everything  # noqa: B018


def test_version_comes_from_the_package_metadata() -> None:
    assert cgpreset.__version__ == importlib.metadata.version("cgpreset")


def test_importing_cgpreset_imports_none_of_its_machinery() -> None:
    code = "import sys, cgpreset; print(sorted(m for m in ('pydantic', 'requests', 'jinja2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
