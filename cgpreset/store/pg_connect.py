"""Connecting to a PostgreSQL store, and turning what the server says into one line naming it.

Imported only when a `postgresql://` store is used: psycopg is loaded here, not at start-up.
libpq's own defaults stay in charge (`PGHOST`, `PGUSER`, `PGPASSWORD`, `~/.pgpass`,
`PGSSLMODE`, ...); cgpreset adds only what the URL and those leave unset: an application name
and a connect timeout, so an unreachable server is an error, not a hang.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from cgpreset.errors import ConfigError
from cgpreset.store.dsn import PgDsn

#: Seconds libpq may take to connect, unless the URL or PGCONNECT_TIMEOUT says otherwise.
CONNECT_TIMEOUT_S = 10
APPLICATION_NAME = "cgpreset"

_LOGIN = ("password authentication failed", "no password supplied", "authentication failed",
          "pg_hba.conf", "role \"", "peer authentication", "ident authentication")
_UNREACHABLE = ("connection refused", "failed to resolve host", "could not translate host name",
                "timeout expired", "no route to host", "network is unreachable", "no such file or directory",
                "could not connect", "server closed the connection", "connection timed out")
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
_PREFIX = re.compile(r"^(connection failed: )?(connection to server (at|on) [^,]*(, port \d+)? failed: )?")


def one_line(dsn: PgDsn, text: str) -> str:
    """A driver message on one line: whitespace collapsed, libpq's prefix dropped, secrets removed."""
    text = " ".join(str(text).split())
    return dsn.scrub(_PREFIX.sub("", text).replace("FATAL: ", ""))


def connect_error(dsn: PgDsn, exc: psycopg.Error) -> ConfigError:
    """What a failed connection attempt means: unreachable, login refused, no such database, or other."""
    detail = one_line(dsn, str(exc))
    low = detail.lower()
    if _NO_DATABASE.search(low):
        what = "database does not exist"
    elif any(m in low for m in _LOGIN):
        what = "login refused"
    elif any(m in low for m in _UNREACHABLE):
        what = "server unreachable"
    else:
        what = "cannot connect"
    return ConfigError(f"{dsn}: {what} ({detail})")


def store_error(dsn: PgDsn, exc: psycopg.Error, doing: str) -> ConfigError:
    """One line for an error on an open connection: no permission, or `doing` failed."""
    detail = one_line(dsn, str(exc))
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return ConfigError(f"{dsn}: no permission: {detail} (see the README: privileges a PostgreSQL store needs)")
    if isinstance(exc, psycopg.OperationalError) and getattr(exc, "sqlstate", None) is None:
        return ConfigError(f"{dsn}: {doing}: connection lost ({detail})")
    return ConfigError(f"{dsn}: {doing}: {detail}")


@contextmanager
def converting(dsn: PgDsn, doing: str) -> Iterator[None]:
    """Every store access runs inside this: a driver error leaves as one ConfigError line naming the store."""
    try:
        yield
    except psycopg.Error as exc:
        raise store_error(dsn, exc, doing) from None


def _extra_params(dsn: PgDsn) -> dict[str, str]:
    """Connection parameters cgpreset adds: only those neither the URL nor the environment sets."""
    try:
        given = conninfo_to_dict(dsn.url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{dsn}: not a valid PostgreSQL URL ({one_line(dsn, str(exc))})") from None
    extra = {}
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        extra["connect_timeout"] = str(CONNECT_TIMEOUT_S)
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        extra["application_name"] = APPLICATION_NAME
    return extra


def connect(dsn: PgDsn, *, autocommit: bool = True) -> psycopg.Connection:
    """An open connection (autocommit: transactions are explicit), or one ConfigError line."""
    extra = _extra_params(dsn)
    try:
        return psycopg.connect(dsn.url, autocommit=autocommit, **extra)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise connect_error(dsn, exc) from None
