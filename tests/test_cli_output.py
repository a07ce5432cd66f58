"""Output that cannot be written: a closed pipe (`| head`) or a full disk; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CGPRESET_") and k not in (
        "COINGLASS_API_KEY", "CG_API_KEY")}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_one_line_exit_2(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "cgpreset", "schema"], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=_env(), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["Error: cannot write output: No space left on device"]


def test_stream_stops_cleanly_when_its_reader_goes_away(tmp_path: Path) -> None:
    """`cgpreset stream --json | head -1`: no reconnect loop, the summary on stderr, exit 0."""
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "--emulator", "stream", "--json", "--duration", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader leaves, as `head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=20) == 0, err
    assert first.startswith('{"type": "liquidation"')
    assert "reconnecting" not in err and "Traceback" not in err and "Exception ignored" not in err
    assert "stream stopped (output_closed)" in err.splitlines()[-1]


def test_a_closed_pipe_elsewhere_exits_141_quietly(tmp_path: Path) -> None:
    code = ("import sys\nfrom cgpreset.cli import main\n"
            "class Closed:\n"
            "    def write(self, s): raise BrokenPipeError(32, 'Broken pipe')\n"
            "    def flush(self): pass\n"
            "    def fileno(self): return sys.__stdout__.fileno()\n"
            "sys.stdout = Closed()\n"
            "main(['schema'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                          timeout=60)
    assert proc.returncode == 141
    assert proc.stderr == ""


@pytest.mark.parametrize("args", [
    ["stream", "--duration", "nan"],
    ["stream", "--duration", "inf"],
    ["stream", "--ping-interval", "nan"],
    ["stream", "--ping-interval", "0.0001"],
    ["stream", "--min-volume-usd", "nan"],
    ["run-preset", ".", "--deadline", "nan"],
    ["emulator", "--latency-ms", "nan"],
    ["emulator", "--ws-event-rate", "inf"],
    ["emulator", "--ws-drop-after", "nan"],
])
def test_non_finite_or_absurd_numbers_are_usage_errors(args: list[str]) -> None:
    from click.testing import CliRunner

    from cgpreset.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.stderr and "Traceback" not in result.output


def test_tables_into_a_closed_pipe_exit_141_not_1(tmp_path: Path) -> None:
    """`cgpreset resolve | true`: rich tables (resolve's is its first output) go through the same quiet
    exit as click.echo; rich's own broken-pipe handling would exit 1, a "finding"."""
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "resolve", "--emulator"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line (discovery runs before any output)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err
