"""In a Kubernetes pod, run-preset and stream --store refuse a file store: it would live on the pod's
emptyDir and go with it (and the shards of one Job would each write their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cgpreset.errors import ExitCode
from tests.test_run_e2e import invoke, write_configs


@pytest.mark.parametrize("command", [["run-preset", "CFGS"], ["stream", "--config", "CFGS", "--max-events", "1",
                                                              "--store"]])
def test_a_pod_given_a_file_store_refuses_with_one_line(tmp_path: Path, emulator: Any, emu_env: dict[str, str],
                                                        command: list[str]) -> None:
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    args = [str(cfgs) if a == "CFGS" else a for a in command]
    pod = {**emu_env, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "CGPRESET_STORE": "cgpreset.db"}
    result = invoke(args, pod)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == ("Error: --store cgpreset.db: a file store in a pod is lost with the pod (emptyDir): "
                             "use a PostgreSQL store (CGPRESET_STORE=postgresql://...)\n")
    assert not Path("cgpreset.db").exists() and emulator.recorded() == []
    assert invoke(args, {**pod, "KUBERNETES_SERVICE_HOST": ""}).exit_code == 0  # outside a pod: a file is fine


def test_reading_commands_in_a_pod_keep_their_file_store(tmp_path: Path, emulator: Any,
                                                         emu_env: dict[str, str]) -> None:
    """Only the writers refuse: `health` (and `stream-alive`, the liveness probe) only read the store."""
    cfgs = write_configs(tmp_path / "configs", coins=("SOL",))
    result = invoke(["health", str(cfgs)], {**emu_env, "KUBERNETES_SERVICE_HOST": "10.96.0.1",
                                            "CGPRESET_STORE": "cgpreset.db"})
    assert "a file store in a pod" not in result.output, result.output
    # read, not refused: its data is judged (nothing fetched into it yet), and it is not created
    assert result.exit_code == ExitCode.FINDINGS and "6 never fetched" in result.stdout
    assert not Path("cgpreset.db").exists()
