"""The one HTTP client every command uses: auth, timeouts, classification, retries, rate limiting."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception

from cgpreset import __version__
from cgpreset.api import cancel
from cgpreset.api.catalogue import Endpoint, endpoint
from cgpreset.api.cause import transport_cause
from cgpreset.api.deadline import Deadline, earliest
from cgpreset.api.envelope import unwrap_raw
from cgpreset.api.ratelimit import Clock, RateLimiter, Sleep
from cgpreset.api.rows import parse_data
from cgpreset.api.session import Response as Response
from cgpreset.api.session import _session_for
from cgpreset.api.stats import ClientStats as ClientStats  # re-exported: the client's API
from cgpreset.errors import (
    ApiError,
    ConfigError,
    CutAnswerError,
    DeadlineExceededError,
    MalformedResponseError,
    RateLimitedError,
    RedirectError,
    TransportError,
)
from cgpreset.plans import Plan
from cgpreset.redact import redact, redact_key
from cgpreset.settings import Settings

log = logging.getLogger("cgpreset.client")

#: Bytes asked for per read of an answer's body (a read returns as soon as any bytes arrived).
_CHUNK = 256 * 1024

USER_AGENT = f"cgpreset/{__version__} (+https://github.com/cgpreset/cgpreset)"


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _refuse_redirect(resp: requests.Response, path: str) -> None:
    """A redirect is never followed: the next request would carry the key to another host."""
    if not resp.is_redirect and not 300 <= resp.status_code < 400:
        return
    target = urlsplit(urljoin(resp.url or "", resp.headers.get("Location", ""))).hostname
    where = f"to host {target}" if target else "without a target"
    raise RedirectError(f"redirected {where} (HTTP {resp.status_code}); redirects are not followed, "
                         "so the key never leaves the configured host", path=path, http_status=resp.status_code)


class CoinGlassClient:
    """A CoinGlass v4 REST client: one requests.Session, usable as a context manager.

    Only rate-limit, server and transport failures are retried; auth, plan, invalid-parameter
    and unsupported-pair answers fail at once. Every request first passes the shared limiter.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        limiter: RateLimiter | None = None,
        plan: Plan | None = None,
        sleep: Sleep = cancel.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = (base_url or settings.effective_base_url).rstrip("/")
        self._secret = settings.key
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._plan = plan
        self._plan_lock = threading.Lock()
        fixed = None if settings.plan == "auto" else Plan(settings.plan)
        if self._plan is None and fixed is not None:
            self._plan = fixed
        # probe=1: one request first; its answer's API-KEY-USE-LIMIT says how much of the window others use
        self.limiter = limiter or RateLimiter(
            (self._plan or Plan.HOBBYIST).rate_per_minute, clock=clock, sleep=sleep, probe=1, rng=self._rng
        )
        self.stats = ClientStats()
        #: A time on `clock` after which no request starts, waits or keeps its socket open (for every
        #: call; a caller's own Deadline, passed to a call, applies to that call too).
        self.deadline: float | None = None
        self.rate_max: int | None = None
        self.rate_used: int | None = None
        self._session = session or _session_for(self.base_url)
        self._session.headers.update({"accept": "application/json", "User-Agent": USER_AGENT})
        if self._secret:
            self._session.headers["CG-API-KEY"] = self._secret
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(8, settings.concurrency * 2))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CoinGlassClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "<set>" if self._secret else "<missing>"
        return f"CoinGlassClient(base_url={self.base_url!r}, key={key})"

    @property
    def clock(self) -> float:
        """Now, on the client's clock (the one `deadline` is measured on)."""
        return self._clock()

    def _until(self, deadline: Deadline | None) -> float | None:
        """The deadline in force now: the client's own or the caller's, whichever is earlier."""
        return earliest(self.deadline, None if deadline is None else deadline.at)

    def _time_left(self, path: str, deadline: Deadline | None) -> float | None:
        until = self._until(deadline)
        if until is None:
            return None
        left = until - self._clock()
        if left <= 0:
            raise DeadlineExceededError("deadline reached before the request could start", path=path)
        return left

    # -- one attempt -----------------------------------------------------------------------

    def _attempt(self, path: str, params: dict[str, Any], deadline: Deadline | None) -> Response:
        cancel.check(path)
        self._time_left(path, deadline)
        try:
            waited = self.limiter.acquire(deadline=self._until(deadline))
        except TimeoutError as exc:  # the next wait for the rate budget would end past the deadline
            raise DeadlineExceededError(str(exc), path=path, early=True) from None
        self.stats.add(requests=1, rate_wait_seconds=waited)
        try:
            return self._send(path, params, deadline)
        finally:
            self.limiter.release()

    def _send(self, path: str, params: dict[str, Any], deadline: Deadline | None) -> Response:
        left = self._time_left(path, deadline)
        connect_t, read_t = self.settings.timeout
        timeout = (connect_t, read_t) if left is None else (min(connect_t, left), min(read_t, left))
        started = self._clock()
        try:
            resp = self._session.get(self.base_url + path, params=params, timeout=timeout, stream=True,
                                     allow_redirects=False)
        except requests.Timeout as exc:
            until = self._until(deadline)
            if until is not None and self._clock() >= until - 1e-3:
                raise DeadlineExceededError("deadline reached while waiting for the answer", path=path) from None
            raise TransportError(f"timed out after {timeout[1]:g}s", path=path) from exc
        except requests.RequestException as exc:
            raise TransportError(f"connection failed: {transport_cause(exc, self._secret)}", path=path) from exc
        try:
            _refuse_redirect(resp, path)
            body = self._read_body(resp, path, started, deadline)
        finally:
            resp.close()
        latency = self._clock() - started
        log.info("GET %s %s -> HTTP %d, %d bytes, %.0f ms", path, params, resp.status_code, len(body), latency * 1000)
        rate_max = _int_header(resp.headers, "API-KEY-MAX-LIMIT")
        rate_used = _int_header(resp.headers, "API-KEY-USE-LIMIT")
        if rate_max is not None or rate_used is not None:
            self.rate_max, self.rate_used = rate_max or self.rate_max, rate_used
            self.limiter.observe(max_limit=rate_max, used=rate_used)
        try:
            raw = unwrap_raw(path=path, http_status=resp.status_code, body=body, headers=resp.headers)
        except RateLimitedError as exc:
            self.stats.add(rate_limited=1)
            # Everyone pauses, as long as the window needs (the answer's own headers say how long).
            self.limiter.refused(retry_after=exc.retry_after, used=rate_used, max_limit=rate_max)
            raise self._scrub(exc) from None
        except ApiError as exc:
            raise self._scrub(exc) from None
        return Response(path, params, None, latency, 1, rate_max, rate_used, raw=raw)

    def _read_body(self, resp: requests.Response, path: str, started: float, deadline: Deadline | None) -> bytes:
        """The body in chunks, against a whole-answer time limit and a byte cap.

        requests' read timeout applies to each socket read, so a server sending a few bytes a
        second would hold the call (and `--deadline`) forever; each chunk returns as soon as any
        bytes arrive, and the limits are checked between chunks.
        """
        cap = self.settings.max_answer_bytes
        declared = _int_header(resp.headers, "Content-Length")
        if declared is not None and declared > cap:
            raise MalformedResponseError(f"answer of {declared:,} bytes is over the {cap:,}-byte cap "
                                         "(CGPRESET_MAX_ANSWER_BYTES); not read", path=path)
        until = started + self.settings.answer_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            cancel.check(path)
            now, cut_at = self._clock(), self._until(deadline)
            if cut_at is not None and now >= cut_at:
                raise DeadlineExceededError("deadline reached while reading the answer", path=path)
            if now >= until:
                raise TransportError(f"answer not complete after {self.settings.answer_timeout:g}s "
                                     f"({size:,} bytes so far; CGPRESET_ANSWER_TIMEOUT)", path=path)
            try:
                chunk = resp.raw.read1(_CHUNK, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                    raise TransportError("timed out while reading the answer", path=path) from exc
                raise TransportError(f"answer cut off: {transport_cause(exc, self._secret)}", path=path) from exc
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > cap:
                raise MalformedResponseError(f"answer over the {cap:,}-byte cap (CGPRESET_MAX_ANSWER_BYTES) "
                                             f"after {size:,} bytes; not stored", path=path)
            chunks.append(chunk)

    def redact(self, text: str) -> str:
        """`text` with the key (raw, escaped or quoted) replaced by <redacted>, the rest as it was:
        for what is kept of an answer (raw_pages), which a server or a proxy may have made quote it."""
        return redact_key(text, self._secret)

    def _scrub(self, exc: ApiError) -> ApiError:
        """The server's own words (`msg`, an HTML page) may quote the key: redact them at the source,
        so no report, table, JSON document or store that shows the error can carry it."""
        exc.message = redact(exc.message, self._secret)
        exc.args = (exc.message,)
        return exc

    # -- retries ---------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimitedError):
            return 0.0  # the limiter holds everyone back until the window frees up
        base = min(self.settings.backoff_max, 0.5 * 2.0 ** (state.attempt_number - 1))
        return base + self._rng.uniform(0, base / 2)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add(retries=1)
        exc = state.outcome.exception() if state.outcome else None
        log.warning("retrying after attempt %d: %s", state.attempt_number, redact(str(exc), self._secret))

    def request(self, key: str | Endpoint, params: Mapping[str, Any] | None = None, *,
                deadline: Deadline | None = None) -> Response:
        """GET an endpoint (by id, path or Endpoint) and return its raw `data` with call metadata.
        No attempt, limiter wait, retry or read runs past `deadline` (nor past the client's own)."""
        ep = key if isinstance(key, Endpoint) else endpoint(key)
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        missing = [p for p in ep.required if p not in clean]
        if missing:
            raise ConfigError(f"{ep.path}: missing required parameter(s) {', '.join(missing)}")
        unknown = sorted(set(clean) - set(ep.params))
        if unknown:
            raise ConfigError(f"{ep.path}: unknown parameter(s) {', '.join(unknown)}")
        out_of_time = early = False

        def stop(state: RetryCallState) -> bool:
            """Out of attempts, or the next wait would end past the deadline (then say so)."""
            nonlocal out_of_time, early
            if state.attempt_number >= self.settings.max_attempts:
                return True
            until, now = self._until(deadline), self._clock()
            if until is not None and now + (state.upcoming_sleep or 0) >= until:
                out_of_time, early = True, now < until
            return out_of_time

        attempts = 0

        def retryable(exc: BaseException) -> bool:
            # a body cut short once is a glitch on the way, like a reset: one more try
            return isinstance(exc, ApiError) and (exc.retryable or (isinstance(exc, CutAnswerError) and attempts < 2))

        retrying = Retrying(
            stop=stop,
            wait=self._wait,
            retry=retry_if_exception(retryable),
            before_sleep=self._before_sleep,
            sleep=self._sleep,
            reraise=True,
        )

        def once() -> Response:
            nonlocal attempts
            attempts += 1
            return self._attempt(ep.path, clean, deadline)

        try:
            response = retrying(once)
        except ApiError as exc:
            if out_of_time and early:
                raise DeadlineExceededError(f"the wait before the next retry would pass the deadline; last attempt: "
                                            f"{exc}", path=ep.path, early=True) from exc
            if out_of_time:
                raise DeadlineExceededError(f"deadline reached before a retry of: {exc}", path=ep.path) from exc
            raise
        response.attempts = attempts
        self.stats.add(calls=1)
        return response

    def fetch(self, key: str | Endpoint, params: Mapping[str, Any] | None = None, *,
              deadline: Deadline | None = None) -> Any:
        """GET and parse by the one decoder every path uses (api/rows.py): rows as dicts of their
        canonical fields, a list of strings, or one object."""
        ep = key if isinstance(key, Endpoint) else endpoint(key)
        response = self.request(ep, params, deadline=deadline)
        as_text = ep.data == "rows" and response.raw is not None  # rows decode typed from the JSON text
        return parse_data(ep, response.raw if as_text else response.data)

    # -- plan ------------------------------------------------------------------------------

    def plan(self, *, deadline: Deadline | None = None) -> Plan:
        """The key's plan: fixed by settings, else read once from account/subscription,
        else from the API-KEY-MAX-LIMIT header of a cheap call."""
        with self._plan_lock:
            if self._plan is None:
                self._plan = self._detect_plan(deadline)
                self.limiter.set_limit(self._plan.rate_per_minute)
            return self._plan

    def assume_plan(self, plan: Plan) -> Plan:
        """Take a plan known from before (the store's last run) instead of asking the API; a plan
        fixed by the settings or already detected stays. Returns the plan in effect."""
        with self._plan_lock:
            if self._plan is None:
                self._plan = plan
                self.limiter.set_limit(plan.rate_per_minute)
            return self._plan

    def _detect_plan(self, deadline: Deadline | None) -> Plan:
        try:
            info = self.fetch("account-subscription", deadline=deadline)
            return Plan.from_level(str(info["level"]))
        except (ValueError, MalformedResponseError):
            pass
        except ApiError as exc:
            if exc.kind.value in ("auth", "transport"):
                raise
        # Fallback: the header of any cheap answer tells the key's per-minute budget.
        self.request("supported-coins", deadline=deadline)
        if self.rate_max:
            return Plan.from_rate_limit(self.rate_max)
        return Plan.HOBBYIST


