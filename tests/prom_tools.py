"""Debian's Prometheus tools for the tests: a real Pushgateway (`prometheus-pushgateway`) and
`promtool check metrics` (package `prometheus`), which lints an exposition as Prometheus reads it.

The gateway is started on 127.0.0.1 at a port it picks itself (the port is read from its own "Listening on" log
line: no guessing, no race), with the admin API on so each test starts from a wiped gateway.
On a developer's machine without the binary the tests skip with the reason; in CI (CI=true)
that is a failure, as for PostgreSQL (tests/pg_server.py): .ci/run installs the packages.
The same goes for promtool.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

BINARY = "prometheus-pushgateway"
_LISTENING = re.compile(r'msg="Listening on" address=(\S+)')


def unavailable(reason: str) -> None:
    """Skip (a developer's machine) or fail (CI) for want of a Prometheus tool."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Prometheus tool tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"Prometheus tool tests skipped: {reason}")


def binary(name: str = BINARY) -> str | None:
    found = shutil.which(name)
    return found or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)


def check_metrics(text: str) -> str:
    """`promtool check metrics` on an exposition: its complaints (empty when it has none)."""
    path = binary("promtool")
    if path is None:
        unavailable("no promtool binary (Debian: apt-get install prometheus)")
        return ""
    done = subprocess.run([path, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


@contextmanager
def server() -> Iterator[str]:
    """The base URL of a Pushgateway running for the duration of the block."""
    path = binary()
    if path is None:
        unavailable(f"no {BINARY} binary (Debian: apt-get install {BINARY})")
        return
    # --persistence.file= (empty): in memory. Debian's binary defaults to the shared
    # /var/lib/prometheus/pushgateway.data, so gateways of parallel tests loaded each other's groups.
    proc = subprocess.Popen([path, "--web.listen-address=127.0.0.1:0", "--web.enable-admin-api",
                             "--persistence.file="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        address = None
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks until the gateway says where it listens, or exits
            m = _LISTENING.search(line)
            if m:
                address = m.group(1)
                break
        if address is None:
            unavailable(f"{BINARY} exited with {proc.wait(timeout=10)} before listening")
        # keep reading its log, so a full pipe never blocks it
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield f"http://{address}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wipe(url: str) -> None:
    """Delete every group (the admin API)."""
    request = urllib.request.Request(f"{url}/api/v1/admin/wipe", method="PUT")
    with urllib.request.urlopen(request, timeout=10):
        pass


def get(url: str, path: str) -> str:
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as answer:
        return str(answer.read().decode("utf-8"))


def groups(url: str) -> set[tuple[tuple[str, str], ...]]:
    """Every group on the gateway, as its sorted grouping labels (GET /api/v1/metrics)."""
    data: list[dict[str, Any]] = json.loads(get(url, "/api/v1/metrics"))["data"]
    return {tuple(sorted(g["labels"].items())) for g in data}
