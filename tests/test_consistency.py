"""One shape for output: --json documents name their schema, validate's problems are output,
an unreachable API is not called a refusal, health says when it does not sign off, Ctrl-C is 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.cli.present.health import health_summary
from cgpreset.errors import ServerError
from cgpreset.run.health import run_health
from tests.conftest import FIXTURES, REPO
from tests.test_health import LatestClient
from tests.test_run_e2e import write_configs
from tests.test_series import NOW, configs


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


def test_validate_writes_problems_to_stdout_with_the_ok_lines(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "c", ("SOL", "BTC"))
    bad = cfgs / "btc.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("plan: standard", "plan: hobbyist"), encoding="utf-8")
    code, out, err = _invoke("validate", str(cfgs))
    assert code == 2
    assert "btc.yaml: interval: 1h is below the hobbyist plan's floor (4h)" in out and "ok " in out
    assert err.splitlines() == ["Error: 1 problem(s) in 1 file(s)"]
    code, out, _ = _invoke("validate", str(cfgs), "--json")
    doc = json.loads(out)
    assert code == 2 and doc["schema"] == "cgpreset.validate/1"
    assert len(doc["ok"]) == 1 and len(doc["problems"]) == 1


def test_every_json_document_names_its_schema(tmp_path: Path, emu_env: dict[str, str]) -> None:
    code, out, _ = _invoke("schema", "--json")
    assert code == 0 and json.loads(out)["schema"] == "cgpreset.schema/1"
    assert json.loads(out)["coin_config"]["type"] == "object"
    code, out, err = _invoke("resolve", "--snapshot", str(FIXTURES / "discovery-snapshot.json"), "--json")
    assert code == 0, err
    assert json.loads(out)["schema"] == "cgpreset.resolve/1"
    code, out, err = _invoke("generate", "--out", str(tmp_path / "d"), "--snapshot",
                             str(FIXTURES / "discovery-snapshot.json"), "--json")
    assert code == 0, err
    assert json.loads(out)["schema"] == "cgpreset.generate/1"
    code, out, err = _invoke("doctor", "--json", env=emu_env)
    assert code == 0, err
    assert json.loads(out)["schema"] == "cgpreset.doctor/1"


def test_an_unreachable_api_is_not_called_a_refusal(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "c", ("SOL",))
    env = {"COINGLASS_API_KEY": "k" * 32, "CGPRESET_BASE_URL": "http://127.0.0.1:1", "CGPRESET_MAX_ATTEMPTS": "1"}
    code, _, err = _invoke("run-preset", str(cfgs), "--store", str(tmp_path / "s.db"), env=env)
    assert code == 3, err
    assert "Error: the API could not be reached: " in err and "refused every request" not in err


def test_health_says_not_signed_off() -> None:
    client = LatestClient(fail={"funding-rate-history": ServerError("Server Error", code="500")})
    lines = health_summary(run_health(configs("SOL"), client, now_ms=NOW))
    assert lines[-1] == "4/5 shots ok — not signed off"


def test_emulator_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGPRESET_") and k != "COINGLASS_API_KEY"}
    proc = subprocess.Popen([sys.executable, "-m", "cgpreset", "emulator", "--port", "0", "--ws-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_a_transport_error_ends_with_its_real_cause_whole() -> None:
    import requests

    from cgpreset.api.client import transport_cause

    try:
        requests.get("http://127.0.0.1:1/api/x", timeout=2)
    except requests.ConnectionError as exc:
        cause = transport_cause(exc)
    assert cause == "ConnectionRefusedError: [Errno 111] Connection refused"


def test_unknown_keys_coins_and_exchanges_get_a_did_you_mean(tmp_path: Path) -> None:
    cfgs = write_configs(tmp_path / "c", ("SOL",))
    sol = cfgs / "sol.yaml"
    sol.write_text(sol.read_text(encoding="utf-8") + "history_day: 3\n", encoding="utf-8")
    code, out, _ = _invoke("validate", str(sol))
    assert code == 2 and "history_day: unknown key (did you mean history_days?)" in out, out
    preset = tmp_path / "p.yaml"
    text = (REPO / "presets" / "sol.yaml").read_text(encoding="utf-8")
    preset.write_text(text.replace("exchange: OKX", "exchange: OKK", 1), encoding="utf-8")
    code, _, err = _invoke("resolve", "--preset", str(preset), "--snapshot", str(FIXTURES / "discovery-snapshot.json"))
    assert code == 2 and "OKK is not a CoinGlass exchange (did you mean OKX?)" in err, err


def test_the_run_rows_exit_code_is_the_processs(tmp_path: Path, emu_env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A metrics file that cannot be written turns an ok run into exit 2: the run's row says 2 too."""
    from cgpreset.errors import OutputError
    from cgpreset.store import open_store

    def refuse(path: Path, data: bytes) -> None:
        raise OutputError(f"{path}: No space left on device")

    monkeypatch.setattr("cgpreset.cli.run.write_atomic", refuse)
    cfgs = write_configs(tmp_path / "c", ("SOL",))
    db = tmp_path / "s.db"
    code, _, err = _invoke("run-preset", str(cfgs), "--store", str(db), "--metrics", str(tmp_path / "m.prom"),
                           env=emu_env)
    assert code == 2 and "metrics not written" in err
    with open_store(db, readonly=True) as st:
        assert [r["exit_code"] for r in st.runs()] == [2]
