"""`cgpreset emulator`: prints where it listens, serves until terminated, refuses bad input in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from cgpreset.cli import cli

#: A repo's own layer in ./layers: `cgpreset emulator` serves it too.
PREMIUM = """name: own_premium
title: Coinbase premium index
endpoint: {path: /api/own/coinbase-premium-index}
kind: macro
history: windows
time: {field: time, unit: s}
fields: [{name: premium, type: number, unit: USD, signed: true}]
"""


def test_emulator_command_serves_until_terminated(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("rules:\n  - path: /api/futures/supported-exchanges\n    kind: code_500\n", encoding="utf-8")
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "premium.yaml").write_text(PREMIUM, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGPRESET_") and k != "COINGLASS_API_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgpreset", "emulator", "--port", "0", "--ws-port", "0", "--plan", "hobbyist",
         "--api-key", "cli-test-key", "--faults", str(faults), "--rate-limit-status", "429",
         "--ws-liquidation-channel", "liquidationOrders", "--markets-page-cap", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        exports = dict(proc.stdout.readline().split(" ", 1)[1].strip().split("=", 1) for _ in range(3))
        base = exports["CGPRESET_BASE_URL"]
        assert base.startswith("http://127.0.0.1:") and base.rsplit(":", 1)[1] != "0"
        assert exports["CGPRESET_WS_URL"].endswith("/ws-api")
        assert exports["COINGLASS_API_KEY"] == "cli-test-key"
        headers = {"CG-API-KEY": "cli-test-key"}
        coins = requests.get(base + "/api/futures/supported-coins", headers=headers, timeout=5)
        assert coins.json()["code"] == "0" and coins.headers["API-KEY-MAX-LIMIT"] == "30"
        assert requests.get(base + "/api/futures/supported-exchanges", headers=headers, timeout=5).json() == {
            "code": "500", "msg": "Server Error"}
        premium = requests.get(base + "/api/own/coinbase-premium-index", params={"interval": "4h", "limit": 2},
                               headers=headers, timeout=5).json()
        assert premium["code"] == "0" and [list(r) for r in premium["data"]] == [["time", "premium"]] * 2
    finally:
        stopping = time.monotonic()
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert time.monotonic() - stopping < 2.0
    assert "plan hobbyist" in err and "1 fault rule(s), your layers own_premium (./layers)" in err


def test_bad_faults_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "faults.yaml"
    bad.write_text("rules:\n  - kind: meteor\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["emulator", "--faults", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "fault kind 'meteor'" in result.stderr


def test_busy_port_is_a_usage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(cli, ["emulator", "--port", str(port), "--ws-port", "0"])
    assert result.exit_code == 2 and "cannot listen" in result.stderr


def test_a_bad_definition_in_layers_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "x.yaml").write_text("name: x\ntitle: X\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["emulator", "--port", "0", "--ws-port", "0"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: layers/x.yaml: endpoint:")
