"""`cgpreset stream` from the command line: output formats, exit codes, Ctrl-C, redaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cgpreset.cli import cli
from cgpreset.store.stream_tables import latest_liveness
from tests.ws_fake import KEY, FakeWS, liquidation_frame

EVENT_KEYS = ["type", "channel", "exchange", "symbol", "base_asset", "price", "side", "side_raw",
              "volume_usd", "time"]
SUMMARY_KEYS = {"stop_reason", "duration_s", "url", "channels", "subscribed", "served_channels", "coins", "events",
                "events_per_minute",
                "last_event_age_s", "last_event_time", "connections", "reconnects", "connect_failures",
                "heartbeat_timeouts", "pings_sent", "pongs_received", "frames", "filtered_out", "duplicates",
                "skipped_items", "rejected", "unknown_frames", "error_frames", "stored"}


def _env(srv: FakeWS, key: str = KEY) -> dict[str, str]:
    return {"CGPRESET_WS_URL": srv.url, "COINGLASS_API_KEY": key}


def _invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def test_json_lines_then_summary_and_the_key_nowhere() -> None:
    """Scripted frames and --max-events: what is asserted does not depend on how fast the machine is."""
    frames = [liquidation_frame("liquidation_orders", seq) for seq in range(5)]
    with FakeWS(push_interval=None, script=lambda conn: frames) as srv:
        result = _invoke(_env(srv), "-vv", "stream", "--max-events", "5", "--ping-interval", "0.05", "--json")
    assert result.exit_code == 0, result.output
    *events, last = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 5 and all(list(e) == EVENT_KEYS for e in events)
    assert all(e["type"] == "liquidation" and e["side"] in ("long", "short") for e in events)
    summary = last["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["events"] == 5 and summary["stop_reason"] == "max_events" and summary["stored"] is None
    assert summary["pings_sent"] == len(srv.connections[0].ping_times())  # every ping sent is counted
    assert summary["url"] == f"{srv.url}?cg-api-key=<redacted>"
    assert "DEBUG cgpreset.stream.ws: > GET /ws-api?cg-api-key=<redacted> HTTP/1.1" in result.stderr
    assert KEY not in result.output


def test_live_lines_on_stdout_and_the_summary_on_stderr() -> None:
    with FakeWS(push_interval=0.02) as srv:
        result = _invoke(_env(srv), "stream", "--max-events", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(" LIQ " in line and "Binance" in line for line in lines)
    err = result.stderr.splitlines()
    assert err[0] == f"streaming liquidation_orders from {srv.url}?cg-api-key=<redacted> (source: 127.0.0.1)"
    assert err[-1].startswith("stream stopped (max_events) after ") and "5 events" in err[-1]


def test_channel_option_replaces_the_default() -> None:
    with FakeWS(push_interval=0.02) as srv:
        result = _invoke(_env(srv), "stream", "--channel", "liquidationOrders", "--max-events", "3", "--json")
        subscribed = srv.connections[0].subscribed()
    assert result.exit_code == 0, result.output
    assert subscribed == {"liquidationOrders", "liquidation_orders"}  # the asked name first, then the other
    assert {json.loads(line).get("channel") for line in result.stdout.splitlines()[:-1]} == {"liquidationOrders"}


def test_handshake_401_exits_3_after_one_attempt() -> None:
    with FakeWS(reject_status=401) as srv:
        result = _invoke(_env(srv), "stream", "--duration", "5")
        assert srv.attempts == 1
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "Error: auth: WebSocket handshake refused: API key missing or invalid (HTTP 401)")


def test_bare_store_uses_the_run_store(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with FakeWS(push_interval=0.02) as srv:
        result = _invoke({**_env(srv), "CGPRESET_STORE": str(db)}, "stream", "--max-events", "4", "--store")
    assert result.exit_code == 0, result.output
    live = latest_liveness(db)
    assert live is not None and live["events"] == 4 and live["stop_reason"] == "max_events"


def test_bad_config_path_is_a_usage_error(tmp_path: Path) -> None:
    result = _invoke({"COINGLASS_API_KEY": KEY}, "stream", "--config", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "no such file" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_cleanly_with_the_summary_exit_0(sig: signal.Signals) -> None:
    """As the README's exit codes say: the stream's normal end (a pod is stopped with SIGTERM), not 130 or 143."""
    with FakeWS(push_interval=0.02) as srv:
        env = {**os.environ, **_env(srv)}
        env.pop("CGPRESET_STORE", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cgpreset", "stream", "--json", "--ping-interval", "0.05"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            for _ in range(3):  # wait until events flow
                json.loads(proc.stdout.readline())
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["stop_reason"] == "interrupted" and summary["events"] >= 3
    assert KEY not in out + err


def test_a_bad_channel_exits_2_before_connecting() -> None:
    with FakeWS() as srv:
        for channel, message in [
            ("", "Error: --channel: empty channel name"),
            ("nonsense@@", "Error: --channel: unknown channel 'nonsense@@' (known: liquidation_orders, "),
        ]:
            result = _invoke(_env(srv), "stream", "--channel", channel, "--duration", "2")
            assert result.exit_code == 2, result.output
            assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
        assert srv.attempts == 0


def test_a_bad_config_channel_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "sol.yaml"
    cfg.write_text("coin: SOL\nplan: standard\ninterval: 4h\nhistory_days: 30\n"
                   "layers:\n  open_interest: {symbol: SOL}\nstream:\n  channels: [liquidation_orders, 'x@@']\n",
                   encoding="utf-8")
    result = _invoke({"COINGLASS_API_KEY": KEY, "CGPRESET_WS_URL": "ws://127.0.0.1:1/ws-api"},
                     "stream", "--config", str(cfg), "--duration", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {cfg}: stream.channels[1]: unknown channel 'x@@'")


def test_no_event_before_duration_is_a_finding_exit_1() -> None:
    with FakeWS(push_interval=None) as srv:  # connects and answers pings, but pushes nothing
        # (1 s: the one connection opens well inside it even on a loaded machine; nothing else is timed)
        result = _invoke(_env(srv), "stream", "--duration", "1", "--ping-interval", "0.05", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout.splitlines()[-1])["summary"]  # the summary is still printed
    assert summary["events"] == 0 and summary["stop_reason"] == "duration" and summary["connections"] == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: no events arrived in {summary['duration_s']:.1f} s on liquidation_orders")


def test_an_unreachable_server_is_exit_3_not_a_finding() -> None:
    result = _invoke({"COINGLASS_API_KEY": KEY, "CGPRESET_WS_URL": "ws://127.0.0.1:1/ws-api"},
                     "stream", "--duration", "0.3")
    assert result.exit_code == 3, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: transport: no events arrived in ") and "never connected (" in last


def test_an_unreachable_server_without_duration_exits_3_after_the_attempts() -> None:
    result = _invoke({"COINGLASS_API_KEY": KEY, "CGPRESET_WS_URL": "ws://127.0.0.1:1/ws-api",
                      "CGPRESET_MAX_ATTEMPTS": "1"}, "stream")  # no --duration: it used to retry forever
    assert result.exit_code == 3, result.output
    assert "never connected (1 failed attempt(s))" in result.stderr.splitlines()[-1]


def test_events_all_filtered_out_say_so(tmp_path: Path) -> None:
    cfg = tmp_path / "zz.yaml"
    cfg.write_text("coin: ZZZ\nplan: standard\ninterval: 4h\nhistory_days: 30\n"
                   "layers:\n  open_interest: {symbol: ZZZ}\n", encoding="utf-8")
    with FakeWS(push_interval=0.02) as srv:
        result = _invoke(_env(srv), "stream", "--config", str(cfg), "--duration", "1")  # events arrive in it
    assert result.exit_code == 1, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: no events arrived in ") and "filtered out by coin or minimum volume" in last


def test_a_corrupt_or_directory_store_exits_2_in_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "c.db"
    garbage.write_text("garbage\n", encoding="utf-8")
    (tmp_path / "d.db").mkdir()
    with FakeWS() as srv:
        for store, message in [(garbage, "not a cgpreset store (file is not a database)"),
                               (tmp_path / "d.db", "is a directory")]:
            result = _invoke(_env(srv), "stream", "--store", str(store), "--duration", "1")
            assert result.exit_code == 2, result.output
            assert result.stderr == f"Error: {store}: {message}\n"
        assert srv.attempts == 0


def test_a_config_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "g.yaml"
    cfg.write_bytes(b"\x80\xc0coin: caf\xe9\n")
    result = _invoke({"COINGLASS_API_KEY": KEY, "CGPRESET_WS_URL": "ws://127.0.0.1:1/ws-api"},
                     "stream", "--config", str(cfg))
    assert result.exit_code == 2 and result.stderr == f"Error: {cfg}: not UTF-8 text\n"
