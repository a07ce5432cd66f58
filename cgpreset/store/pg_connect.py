"""Connecting to a PostgreSQL store, and turning what the server says into one line naming it.

Imported only when a `postgresql://` store is used: psycopg is loaded here, not at start-up.
libpq's own defaults stay in charge (`PGHOST`, `PGUSER`, `PGPASSWORD`, `~/.pgpass`,
`PGSSLMODE`, ...); cgpreset adds only what the URL and those leave unset: an application name,
a connect timeout (so an unreachable server is an error, not a hang) and TCP keepalives (so a
server that vanished, with its host or the network to it, is noticed within some 25 s).

Errors are classified by SQLSTATE (libpq's own connection failures carry none: those are lost
connections): what passes (a restart, a failover, a full disk, a lock held too long) is
StoreUnavailableError (exit 75, retry later); what needs someone to act (a refused login, no
permission, a foreign database) is ConfigError (exit 2).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from cgpreset.errors import CgPresetError, ConfigError, StopRequestedError, StoreUnavailableError
from cgpreset.store.dsn import PgDsn
from cgpreset.store.waits import Bound

#: Seconds libpq may take to connect, unless the URL or PGCONNECT_TIMEOUT says otherwise.
CONNECT_TIMEOUT_S = 10
APPLICATION_NAME = "cgpreset"
#: TCP keepalives on every connection (unless the URL sets them): a silent peer is probed after
#: 10 s idle, every 5 s, and given up after 3 probes; data unacknowledged for 30 s ends it too.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3",
              "tcp_user_timeout": "30000"}

_LOGIN = ("password authentication failed", "no password supplied", "authentication failed",
          "pg_hba.conf", "role \"", "peer authentication", "ident authentication")
_UNREACHABLE = ("connection refused", "failed to resolve host", "could not translate host name",
                "timeout expired", "no route to host", "network is unreachable", "no such file or directory",
                "could not connect", "server closed the connection", "connection timed out")
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
_PREFIX = re.compile(r"^(connection failed: )?(connection to server (at|on) [^,]*(, port \d+)? failed: )?")

#: SQLSTATEs after which the same call may well succeed at once on a fresh connection: the server
#: shut down, crashed or is starting, the session was ended, a failover left it on a read-only
#: standby, too many sessions, a lost race (serialization failure, deadlock).
RECONNECT_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "25P03", "25006", "53300", "40001", "40P01"})
#: SQLSTATEs that pass, though not within seconds: disk full, out of memory.
LATER_STATES = frozenset({"53100", "53200"})
_STATEMENT_TIMEOUT, _LOCK_TIMEOUT = "57014", "55P03"


def one_line(dsn: PgDsn, text: str) -> str:
    """A driver message on one line: whitespace collapsed, libpq's prefix dropped, secrets removed."""
    text = " ".join(str(text).split())
    return dsn.scrub(_PREFIX.sub("", text).replace("FATAL: ", ""))


def lost(exc: psycopg.Error) -> bool:
    """The connection itself failed (libpq says so without a SQLSTATE, or the server sent a class 08
    or shutdown state): a fresh connection is worth one more try."""
    state = getattr(exc, "sqlstate", None)
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith("08") or state in RECONNECT_STATES


def connect_error(dsn: PgDsn, exc: psycopg.Error) -> CgPresetError:
    """What a failed connection attempt means: unreachable or not accepting connections yet (passes:
    exit 75), login refused, no such database, or other (exit 2)."""
    detail = one_line(dsn, str(exc))
    low = detail.lower()
    state = getattr(exc, "sqlstate", None)
    if _NO_DATABASE.search(low):
        what = "database does not exist"
    elif state is not None and state.startswith("28") or any(m in low for m in _LOGIN):
        what = "login refused"
    elif state is not None and (state.startswith("08") or state in RECONNECT_STATES):
        return StoreUnavailableError(f"{dsn}: server not accepting connections ({detail})", reconnect=True)
    elif any(m in low for m in _UNREACHABLE):
        return StoreUnavailableError(f"{dsn}: server unreachable ({detail})", reconnect=True)
    else:
        what = "cannot connect"
    return ConfigError(f"{dsn}: {what} ({detail})")


def store_error(dsn: PgDsn, exc: psycopg.Error, doing: str, bound: Bound | None = None,
                cut: str | None = None) -> CgPresetError:
    """One line for an error on an open connection: no permission, a timeout (the deadline's, the
    stop's or the cap's: see Bound.timed_out), a lost connection, a full disk, or `doing` failed.
    `cut`: why the watchdog cut the connection ("stopping", "no answer"), if it did."""
    detail = one_line(dsn, str(exc))
    where = f"{dsn}: {doing}"
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return ConfigError(f"{dsn}: no permission: {detail} (see the README: privileges a PostgreSQL store needs)")
    if cut == "stopping":
        return StopRequestedError(f"{where}: the process is stopping", path=where)
    if bound is not None and (cut is not None or state in (_STATEMENT_TIMEOUT, _LOCK_TIMEOUT)):
        waited = "waiting for a lock" if state == _LOCK_TIMEOUT else "waiting for the server's answer"
        return bound.timed_out(where, waited, lock=state == _LOCK_TIMEOUT)
    if lost(exc):
        what = "connection lost" if state is None else "server unavailable"
        return StoreUnavailableError(f"{where}: {what} ({detail})", reconnect=True)
    if state in LATER_STATES:
        return StoreUnavailableError(f"{where}: {detail} (retry later)")
    return ConfigError(f"{where}: {detail}")


@contextmanager
def converting(dsn: PgDsn, doing: str, bound: Bound | None = None, cut: list[str] | None = None) -> Iterator[None]:
    """Every store access runs inside this: a driver error leaves as one line naming the store.
    `bound`: the call's limits (a timeout is then the deadline's, the stop's or the cap's); `cut`:
    filled in by the watchdog when it cut the connection (see pg_guard.Watchdog)."""
    try:
        yield
    except psycopg.Error as exc:
        raise store_error(dsn, exc, doing, bound, cut[0] if cut else None) from None


def _extra_params(dsn: PgDsn, bound: Bound | None) -> tuple[dict[str, str], bool]:
    """Connection parameters cgpreset adds: only those neither the URL nor the environment sets, and
    a connect timeout no longer than the call's limit (libpq waits at least 2 s). Also whether the
    run's deadline set that timeout (running out of it then means "deadline reached")."""
    try:
        given = conninfo_to_dict(dsn.url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{dsn}: not a valid PostgreSQL URL ({one_line(dsn, str(exc))})") from None
    extra = {k: v for k, v in KEEPALIVES.items() if k not in given}
    configured = given.get("connect_timeout") or os.environ.get("PGCONNECT_TIMEOUT")
    if configured is None:
        extra["connect_timeout"] = configured = str(CONNECT_TIMEOUT_S)
    by_deadline = False
    if bound is not None:
        try:
            limit_s = float(configured)
        except ValueError:  # libpq's to refuse, in its words
            limit_s = 0
        if limit_s <= 0 or bound.statement_s < limit_s:
            extra["connect_timeout"] = str(max(2, math.ceil(bound.statement_s)))
            by_deadline = bound.left_s is not None and bound.statement_s >= bound.left_s
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        extra["application_name"] = APPLICATION_NAME
    return extra, by_deadline


def connect(dsn: PgDsn, *, autocommit: bool = True, bound: Bound | None = None) -> psycopg.Connection:
    """An open connection (autocommit: transactions are explicit), or one line: ConfigError, or
    StoreUnavailableError when the server is unreachable or not accepting connections yet (or
    DeadlineExceededError when `bound`, the call's limits, came from the deadline and ran out)."""
    extra, by_deadline = _extra_params(dsn, bound)
    try:
        return psycopg.connect(dsn.url, autocommit=autocommit, **extra)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        if bound is not None and by_deadline and "timeout expired" in str(exc):
            raise bound.timed_out(f"{dsn}: cannot connect", "connecting", lock=False) from None
        raise connect_error(dsn, exc) from None


def limit(db: psycopg.Connection, bound: Bound) -> None:
    """Give the session the call's lock and statement timeouts (server side: a lock held by another
    session, or a slow statement, ends in an error, not a hang). Set before every call, it is also
    the call's first round trip: a connection that died while idle is found here, before any of
    the call's own statements ran."""
    db.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
               (f"{max(1, round(bound.lock_s * 1000))}ms", f"{max(1, round(bound.statement_s * 1000))}ms"))
