"""One answer as the client hands it on, and the HTTP session the client sends it over."""

from __future__ import annotations

import os
from typing import Any

import msgspec
import requests

from cgpreset.errors import MalformedResponseError

__all__ = ["Response", "_session_for"]


class Response:
    """One successful call: `data` as the API sent it, plus what the call cost.

    `raw` is the JSON text of `data` as it came (the run decodes it with the typed decoder);
    `data` is that text parsed into Python objects, on first use (a number beyond a float, which
    the envelope's check lets through, is a MalformedResponseError, not a crash).
    """

    def __init__(self, path: str, params: dict[str, Any], data: Any, latency: float, attempts: int,
                 rate_max: int | None = None, rate_used: int | None = None, *, raw: bytes | None = None) -> None:
        self.path, self.params, self.latency, self.attempts = path, params, latency, attempts
        self.rate_max, self.rate_used, self.raw = rate_max, rate_used, raw
        self._data = data

    @property
    def data(self) -> Any:
        if self._data is None and self.raw is not None:
            try:
                self._data = msgspec.json.decode(self.raw)
            except msgspec.DecodeError as exc:
                raise MalformedResponseError(f"`data`: {exc}", path=self.path) from None
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data, self.raw = value, None


def _session_for(base_url: str) -> requests.Session:
    """A session that reads the environment's proxy and CA settings once, for the one host it talks
    to, instead of on every request (requests otherwise scans os.environ and looks for ~/.netrc per
    call: about 2 ms of CPU each, under the GIL). No netrc credentials are ever added."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and base_url.startswith("https:"):  # (plain http verifies nothing)
        session.verify = bundle
    session.trust_env = False
    return session
