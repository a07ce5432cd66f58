"""Headless Chromium driven over the DevTools protocol (a small client on `websockets`).

Opens a page offline, collects uncaught script errors and console errors, evaluates expressions
once the page has loaded, and takes a screenshot. No real sleeps: every wait is for a browser event
with a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--remote-debugging-port=0")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    """The Debian `chromium` binary (or a chromium/chrome on PATH)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab over a CDP websocket: send commands, gather events."""

    def __init__(self, ws: ClientConnection, session: str) -> None:
        self.ws, self.session, self._id = ws, session, 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params, "sessionId": self.session}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        for e in self.events:
            if e["method"] == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The value of a JS expression; a Promise is awaited."""
        got = self.send("Runtime.evaluate", timeout, expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in got:
            raise RuntimeError(f"evaluate {expression!r}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def script_errors(self) -> list[str]:
        """Uncaught exceptions and console errors seen so far."""
        out = [e["params"]["exceptionDetails"].get("exception", {}).get("description")
               or e["params"]["exceptionDetails"].get("text", "") for e in self.events
               if e["method"] == "Runtime.exceptionThrown"]
        out += [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"])
                for e in self.events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
        out += [e["params"]["entry"]["text"] for e in self.events
                if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
        return out

    def requests(self) -> list[str]:
        """URLs the page asked for (an offline page asks for nothing but itself)."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def open_page(url: str, *, width: int = 1280, height: int = 2000, timeout: float = 90) -> Iterator[Page]:
    """Launch Chromium, open `url` in a fresh profile, yield the loaded page; kill Chromium after."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium")
    profile = tempfile.mkdtemp(prefix="cgpreset-chromium-")
    proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ws_url = _wait_listening(proc, timeout)
        with connect(ws_url, max_size=None, open_timeout=timeout) as ws:
            ws.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}))
            target = _reply(ws, 1, timeout)["targetId"]
            ws.send(json.dumps({"id": 2, "method": "Target.attachToTarget",
                                "params": {"targetId": target, "flatten": True}}))
            page = Page(ws, _reply(ws, 2, timeout)["sessionId"])
            page._id = 100
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.send(f"{domain}.enable")
            page.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            page.send("Page.navigate", url=url)
            page.wait_for("Page.loadEventFired", timeout)
            yield page
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


def _reply(ws: ClientConnection, want: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg.get("id") == want:
            return dict(msg["result"])


def _wait_listening(proc: subprocess.Popen[str], timeout: float) -> str:
    """Chromium prints its DevTools websocket URL on stderr once it is ready."""
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), True)
    lines = []
    for line in proc.stderr:  # ends when Chromium exits; Chromium prints the URL within a second or two
        lines.append(line)
        m = _LISTENING.search(line)
        if m:
            return m.group(1)
    raise RuntimeError("chromium exited before DevTools listened: " + "".join(lines[-5:]))
