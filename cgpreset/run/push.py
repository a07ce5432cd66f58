"""`--pushgateway URL`: deliver a run's metrics to a Prometheus Pushgateway (a pod has no textfile).

A push replaces its group (HTTP PUT, prometheus_client's push_to_gateway): job `cgpreset-run`
(run-preset) or `cgpreset-health` (health), grouping key `shard` = the I of --shard I/N, or "all"
when the run is not sharded. Then the groups of this job that no shard of the current layout
pushes any more are deleted, so a shard count that shrank leaves no stale group behind: a run of
I/N deletes shards >= N and "all", an unsharded run every numbered shard (groups with other labels
are not ours and stay).

Every request has a short timeout (a dead gateway never holds a finished run up); a failure is one
OutputError line naming the gateway with any userinfo password redacted. Credentials in the URL
(`https://user:pass@host`) go as HTTP basic auth, never in a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, delete_from_gateway, push_to_gateway, pushadd_to_gateway
from prometheus_client.exposition import default_handler

from cgpreset.errors import OutputError, PushUnavailableError
from cgpreset.redact import redact, redact_url

RUN_JOB = "cgpreset-run"
HEALTH_JOB = "cgpreset-health"
#: The job each command pushes as.
JOBS = {"run-preset": RUN_JOB, "health": HEALTH_JOB}
#: The grouping key's value when a run is not sharded.
UNSHARDED = "all"
#: Seconds for each request to the gateway (connect and read).
TIMEOUT = 5.0

#: prometheus_client's handler: (url, method, timeout, headers, data) -> a call that sends it.
Handler = Callable[..., Callable[[], None]]


@dataclass(frozen=True)
class Gateway:
    """A Pushgateway: its URL without userinfo, and the basic-auth credentials it carried."""

    url: str
    shown: str  # as messages show it: the password redacted
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Gateway:
        parts = urlsplit(url)
        bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        user = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        return cls(bare, redact_url(url), user, password)

    def auth_headers(self) -> list[tuple[str, str]]:
        """HTTP basic auth when the URL carried credentials."""
        if self.username is None:
            return []
        token = b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return [("Authorization", f"Basic {token}")]

    def handler(self, base: Handler) -> Handler:
        """`base`, sending the basic-auth header too."""
        extra = self.auth_headers()

        def send(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                 data: bytes) -> Callable[[], None]:
            return base(url, method, timeout, [*headers, *extra], data)
        return send


def grouping_key(index: int | None) -> dict[str, str]:
    """The group of shard `index` (None: not sharded)."""
    return {"shard": UNSHARDED if index is None else str(index)}


def stale(value: str, count: int | None) -> bool:
    """Whether a group's shard label belongs to another layout than `count` shards (None: unsharded)."""
    if count is None:
        return value.isdigit()
    return value == UNSHARDED or (value.isdigit() and int(value) >= count)


def push(registry: CollectorRegistry, url: str, *, job: str, index: int | None = None, count: int | None = None,
         timeout: float = TIMEOUT, handler: Handler = default_handler, add: bool = False) -> list[str]:
    """PUT the registry as the group (job, shard=index), then delete the job's stale groups; `add`:
    POST it instead (its metrics replace those of the same names; the group's others stay) and
    delete nothing (a run that stopped early pushes its exit code so).

    Returns the shard labels of the groups deleted. Raises OutputError (one line) when the gateway
    cannot be reached or refuses; the first request that fails ends it.
    """
    gw = Gateway.parse(url)
    send = gw.handler(handler)
    with _talking_to(gw):
        put = pushadd_to_gateway if add else push_to_gateway
        put(gw.url, job, registry, grouping_key=grouping_key(index), timeout=timeout, handler=send)
    if add:
        return []
    with _talking_to(gw):
        gone = sorted(v for v in _shards(gw, job, timeout) if stale(v, count))
        for value in gone:
            delete_from_gateway(gw.url, job, grouping_key={"shard": value}, timeout=timeout, handler=send)
    return gone


def _shards(gw: Gateway, job: str, timeout: float) -> list[str]:
    """The shard labels of the job's groups on the gateway (GET /api/v1/metrics); only groups keyed
    by exactly job and shard."""
    request = urllib.request.Request(f"{gw.url}/api/v1/metrics", headers=dict(gw.auth_headers()))
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body: Any = json.loads(answer.read().decode("utf-8"))
    groups = body.get("data") if isinstance(body, dict) else None
    out = []
    for group in groups if isinstance(groups, list) else []:
        labels = group.get("labels") if isinstance(group, dict) else None
        if isinstance(labels, dict) and set(labels) == {"job", "shard"} and labels["job"] == job:
            out.append(str(labels["shard"]))
    return out


@contextmanager
def _talking_to(gw: Gateway) -> Iterator[None]:
    """Any failure talking to the gateway as one line (never a traceback): PushUnavailableError
    when trying again later can help (unreachable, timed out, HTTP 5xx), else OutputError."""
    try:
        yield
    except (OSError, ValueError, HTTPException) as exc:
        refused = isinstance(exc, urllib.error.HTTPError) and exc.code < 500
        kind = OutputError if refused or isinstance(exc, ValueError) else PushUnavailableError
        raise kind(f"pushgateway {gw.shown}: {redact(_reason(exc), gw.password)}") from None


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: the gateway's own answer for an HTTP error."""
    if isinstance(exc, urllib.error.HTTPError):
        try:
            said = " ".join(exc.read(300).decode("utf-8", "replace").split())
        except OSError:
            said = ""
        return f"HTTP {exc.code} {exc.reason}" + (f": {said}" if said else "")
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
