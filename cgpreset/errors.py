"""cgpreset errors: one tree, the exit code on the class, one place that prints them.

* CgPresetError                                       exit 2
  + UsageError           bad flags or arguments        exit 2
  + ConfigError          preset / watchlist / config / template / settings input is wrong   exit 2
  + OutputError          stdout (or another output) cannot be written: disk full, I/O error  exit 2
  + StoreUnavailableError  the store failed for now (restart, failover, lock held, disk full)  exit 75: retry
  + FindingsError        ran fine, but checks failed or drift was found                      exit 1
  + DeadlineExceededError  a request could not finish before the caller's deadline          exit 1
  + ApiError             CoinGlass refused the call or could not be reached (after retries)  exit 3
    - AuthError              key missing or invalid
    - PlanError              endpoint or interval above the key's plan
    - InvalidParameterError  a parameter missing or not accepted                (exit 2: our input)
    - UnsupportedPairError   the exchange does not list that instrument          (exit 2: our input)
    - NotFoundError          unknown path
    - RateLimitedError       "Too Many Requests" (body code 400) or HTTP 429    retried
    - ServerError            body code 500 or HTTP 5xx                          retried
    - TransportError         timeout, connection reset, DNS                     retried
    - MalformedResponseError bad JSON, an HTML page, or the wrong shape
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum, IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    FINDINGS = 1  # ran, but a check failed, data is missing, or --check found drift
    USAGE = 2  # bad usage, config or input
    API = 3  # the API refused or was unreachable (auth, plan, network after retries)
    TEMPFAIL = 75  # the store (or a Pushgateway) failed for now: try again later (EX_TEMPFAIL of sysexits.h)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as a shell reports a process killed by it)
    OUTPUT_CLOSED = 141  # stdout's reader went away, e.g. `| head` (128 + SIGPIPE)
    TERMINATED = 143  # SIGTERM: a CI timeout, `kill`, systemd (128 + SIGTERM)


class ErrorKind(str, Enum):
    """How an API failure is classified; the value is what reports and JSON show."""

    AUTH = "auth"
    PLAN = "plan"
    INVALID_PARAMETER = "invalid_parameter"
    UNSUPPORTED_PAIR = "unsupported_pair"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    SERVER = "server_error"
    TRANSPORT = "transport"
    MALFORMED = "malformed_response"


class CgPresetError(Exception):
    """Base class for every error cgpreset shows to a user."""

    exit_code: ClassVar[int] = ExitCode.USAGE

    def lines(self) -> list[str]:
        """What the user sees, one `Error:` line each (whitespace folded: never a multi-line message)."""
        return [" ".join(str(self).split())]


class UsageError(CgPresetError):
    """Bad flags or arguments."""


class ConfigError(CgPresetError):
    """A preset, watchlist, coin config, template or setting is wrong."""


class PlanMismatchError(ConfigError):
    """Configs ask for what the key's plan cannot serve; `problems` are `file: field: problem` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def lines(self) -> list[str]:
        return [" ".join(p.split()) for p in self.problems]


class OutputError(CgPresetError):
    """An output (stdout, a report) cannot be written: disk full, device error."""


class PushUnavailableError(OutputError):
    """A Pushgateway that could not be reached or failed (a timeout, a refused connection, HTTP 5xx):
    the run's data is stored, and a run again later pushes again (exit 75: retry). A gateway that
    refuses the push itself (HTTP 4xx: a wrong path, credentials) stays an OutputError (exit 2)."""

    exit_code = ExitCode.TEMPFAIL


class StoreUnavailableError(CgPresetError):
    """The store failed for a reason that passes: a restarted or failed-over server, a lock held past
    the wait allowed, a full disk. Whole pages only were stored; a later run resumes (exit 75: retry).

    `reconnect`: the connection itself was lost (or the transaction lost a race), so the same call may
    succeed at once on a fresh connection; False when it was retried already or waiting would not help.
    """

    exit_code = ExitCode.TEMPFAIL

    def __init__(self, message: str, *, reconnect: bool = False) -> None:
        super().__init__(message)
        self.reconnect = reconnect


class FindingsError(CgPresetError):
    """The command ran, but found problems (failed checks, drift)."""

    exit_code = ExitCode.FINDINGS


class DeadlineExceededError(CgPresetError):
    """The caller's deadline came before the request could (re)start or finish; nothing was lost.

    `early`: raised before the deadline, because what had to come next (a wait for the rate budget,
    the pause before a retry) would have ended past it.
    """

    exit_code = ExitCode.FINDINGS

    def __init__(self, message: str, *, path: str = "", early: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.early = early


class StopRequestedError(CgPresetError):
    """The process is stopping (SIGINT/SIGTERM, api/cancel.py): no request starts, waits or reads any
    more. Raised where the signal itself does not reach (worker threads, waits); never a deadline, so a
    run it cuts is recorded as interrupted, not as "deadline reached"."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str = "the process is stopping", *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ApiError(CgPresetError):
    """CoinGlass refused the call or could not be reached."""

    exit_code = ExitCode.API
    kind: ClassVar[ErrorKind] = ErrorKind.SERVER
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"GET {self.path}: " if self.path else ""
        status = []
        if self.http_status is not None and self.http_status != 200:
            status.append(f"HTTP {self.http_status}")
        if self.code is not None:
            status.append(f"code {self.code}")
        suffix = f" ({', '.join(status)})" if status else ""
        return f"{self.kind.value}: {where}{self.message}{suffix}"


class AuthError(ApiError):
    """The API key is missing or invalid."""

    kind = ErrorKind.AUTH


class PlanError(ApiError):
    """The endpoint, interval or history depth is above the key's plan."""

    kind = ErrorKind.PLAN


class InvalidParameterError(ApiError):
    """A parameter is missing or not acceptable."""

    exit_code = ExitCode.USAGE
    kind = ErrorKind.INVALID_PARAMETER


class UnsupportedPairError(ApiError):
    """The exchange does not list the instrument asked for."""

    exit_code = ExitCode.USAGE
    kind = ErrorKind.UNSUPPORTED_PAIR


class NotFoundError(ApiError):
    """The path does not exist on the API."""

    kind = ErrorKind.NOT_FOUND


class RateLimitedError(ApiError):
    """The key's per-minute budget is used up."""

    kind = ErrorKind.RATE_LIMITED
    retryable = True


class ServerError(ApiError):
    """The API failed on its side (body code 500 or HTTP 5xx)."""

    kind = ErrorKind.SERVER
    retryable = True


class TransportError(ApiError):
    """Timeout, connection reset or name resolution failure."""

    kind = ErrorKind.TRANSPORT
    retryable = True


class RedirectError(TransportError):
    """A 3xx answer: a setup problem (a proxy, a moved host), not a glitch; never retried."""

    retryable = False


class MalformedResponseError(ApiError):
    """The answer is not the JSON envelope we expect (bad JSON, HTML, wrong shape)."""

    kind = ErrorKind.MALFORMED


class CutAnswerError(MalformedResponseError):
    """A 200 whose JSON stops short: most likely cut on the way, so the client tries once more."""



class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI timeout, `kill`, systemd): unwinds like Ctrl-C, so runs rows and stores close.

    Not a CgPresetError: like KeyboardInterrupt it must get past `except Exception`.
    """

    exit_code: ClassVar[int] = ExitCode.TERMINATED


#: Failures that mean "the API refused us" (key, plan, unreachable), not "this item is wrong".
REFUSED_KINDS = frozenset({ErrorKind.AUTH, ErrorKind.PLAN, ErrorKind.TRANSPORT})


def outcome_exit_code(failures: Sequence[ApiError | None], *, all_ok: bool) -> ExitCode:
    """The one rule for a run's, a health check's or a probe's exit code, from its items.

    `failures` holds, per item that was attempted, its error if it failed (None otherwise).
    API (3) when there was at least one item and the API refused every one; OK (0) when every
    item is ok (`all_ok`); FINDINGS (1) otherwise.
    """
    if failures and all(e is not None and e.kind in REFUSED_KINDS for e in failures):
        return ExitCode.API
    return ExitCode.OK if all_ok else ExitCode.FINDINGS


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest of `choices` (ignoring case), else ``: every unknown name gets one."""
    import difflib

    by_upper = {c.upper(): c for c in choices}
    close = difflib.get_close_matches(name.upper(), list(by_upper), n=1, cutoff=0.6)
    return f" (did you mean {by_upper[close[0]]}?)" if close else ""
