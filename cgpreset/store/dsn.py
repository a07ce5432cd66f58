"""Where a store lives: an SQLite file (a path) or a PostgreSQL server (a `postgresql://` URL).

`--store` and `CGPRESET_STORE` take either. A URL is checked here without importing the driver,
and carried as a `PgDsn`, whose `str()` and `repr()` are the redacted form: the password can
reach libpq only through `PgDsn.url`, never a message. What the URL leaves out (host, port,
user, password, database) libpq takes from `PG*` variables, `~/.pgpass` and its defaults, as
psql would: nothing here fills them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from cgpreset.errors import ConfigError
from cgpreset.redact import redact, redact_dsn

SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: `postgresql:` not followed by `//`: a URL mistyped, never a file name to create.
_PG_WITHOUT_SLASHES = re.compile(r"(?i)^(postgresql|postgres):(?!//)")
#: What ends the user:password part for libpq (`@`, `/`) or urllib (`@ / ? #`) when unescaped.
_DELIMITERS = "@/?#"
_ESCAPES = "@ as %40, / as %2F, ? as %3F, # as %23"
_USERINFO_RULE = "everything between :// and the last @ is taken as user:password"
#: A `%` that does not start a byte libpq accepts: it would quote the token (the password, say).
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


@dataclass(frozen=True)
class PgDsn:
    """A PostgreSQL connection URL; prints as its redacted form."""

    url: str = field(repr=False)
    display: str
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.display

    def scrub(self, text: str) -> str:
        """`text` (a driver message, say) with this DSN's password and any other secret-looking value removed."""
        return redact(text, self.password)


StoreLocation = Path | PgDsn


def is_postgres(value: str) -> bool:
    """True for a `postgresql://` or `postgres://` URL (any case)."""
    scheme, sep, _ = value.strip().partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse_dsn(value: str) -> PgDsn:
    """Check a PostgreSQL URL's shape (scheme, printable, a numeric port); one ConfigError line if wrong.

    Host, user and database may be left out (libpq's `PG*` variables and defaults fill them);
    several hosts (`h1:5432,h2:5432`) are passed through as libpq understands them. Everything
    between `://` and the last `@` is the user:password part: an `@ / ? #` in it must be
    percent-encoded, or libpq (which ends it at the first `@`) would take the rest of the password
    for a host, and urllib for a path, and either would show it.
    """
    value = value.strip()
    shown = redact_dsn(value)
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ConfigError(f"store {shown}: the URL contains spaces or control characters")
    scheme, _, rest = value.partition("://")
    userinfo, _, hostpart = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if any(c in password for c in _DELIMITERS):
        raise ConfigError(f"store {shown}: the password holds an unescaped @, /, ? or #: percent-encode it "
                          f"({_ESCAPES}) or give it in PGPASSWORD or ~/.pgpass ({_USERINFO_RULE})")
    if any(c in user for c in _DELIMITERS):
        raise ConfigError(f"store {shown}: the user name holds an unescaped @, /, ? or #: percent-encode it "
                          f"({_ESCAPES}), and an @ after the host too ({_USERINFO_RULE})")
    if _BAD_PERCENT.search(value):
        raise ConfigError(f"store {shown}: a % must start a percent-encoded byte like %40 (% itself is %25, "
                          "and %00 is not allowed)")
    try:
        parts = urlsplit(f"{scheme}://{hostpart}")  # the user:password part is checked above
        if "," not in parts.netloc:
            _ = parts.port  # ValueError when not a number from 0 to 65535
    except ValueError as exc:
        raise ConfigError(f"store {shown}: not a valid PostgreSQL URL ({redact(str(exc))})") from None
    if parts.fragment:
        raise ConfigError(f"store {shown}: the URL must not have a #fragment")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    secret = unquote(password) if colon and password else query.get("password") or None
    return PgDsn(url=value, display=shown, password=secret)


#: What SQLite keeps beside a store file: part of the store, as much as the file itself.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def store_files(location: StoreLocation) -> dict[Path, str]:
    """The files that are the store (path -> how an error names it): an SQLite file and its side
    files; none for PostgreSQL. An output must never be written over one of them."""
    if not isinstance(location, Path):
        return {}
    side = {location.with_name(location.name + s): f"the store's {s[1:]} file" for s in SQLITE_SIDE_FILES}
    return {location: "the store", **side}


def store_location(value: str | Path) -> StoreLocation:
    """A `--store`/`CGPRESET_STORE` value as a path or a PostgreSQL DSN."""
    if isinstance(value, Path):
        return value
    if is_postgres(value):
        return parse_dsn(value)
    mistyped = _PG_WITHOUT_SLASHES.match(value.strip())
    if mistyped:  # shown without the rest: it may hold a password
        raise ConfigError(f"store {mistyped.group(0)}...: a PostgreSQL URL starts with {mistyped.group(1)}:// "
                          "(postgresql://user@host:port/database)")
    scheme = _SCHEME.match(value)
    if scheme:
        raise ConfigError(f"store {redact_dsn(value)}: unknown store scheme {scheme.group(1)}:// "
                          "(a file path, or postgresql://user@host:port/database)")
    return Path(value)


def display(location: StoreLocation) -> str:
    """How reports and messages name a store: the path, or the redacted URL."""
    return location.as_posix() if isinstance(location, Path) else location.display
