"""PostgreSQL store locations: URL parsing, redaction, libpq's own settings, one-line connect errors."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from cgpreset.errors import ConfigError, ExitCode, StoreUnavailableError
from cgpreset.store.dsn import PgDsn, display, parse_dsn, store_location


def _password(dsn: str) -> str:
    return re.search(r"://[^:/@]+:([^@]+)@", dsn).group(1)  # type: ignore[union-attr]


def _without_password(dsn: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]+@", r"\1@", dsn)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- locations (no server needed) ----------------------------------------------------------------

def test_a_path_is_an_sqlite_store_and_a_url_a_postgres_one() -> None:
    assert store_location("data/cgpreset.db") == Path("data/cgpreset.db")
    loc = store_location("postgresql://ingest:s3cret-pw@db.internal:5433/markets?sslmode=require")
    assert isinstance(loc, PgDsn)
    assert loc.url.endswith("/markets?sslmode=require")
    assert display(loc) == "postgresql://ingest:<redacted>@db.internal:5433/markets?sslmode=require"
    assert "s3cret" not in str(loc) and "s3cret" not in repr(loc) and loc.password == "s3cret-pw"


def test_a_password_in_the_query_or_percent_encoded_is_redacted_too() -> None:
    loc = parse_dsn("postgres://db.internal/markets?user=ingest&password=p%40ss-word")
    assert "p%40ss" not in loc.display and "<redacted>" in loc.display
    assert loc.password == "p@ss-word"
    assert loc.scrub("auth failed for p@ss-word") == "auth failed for <redacted>"


def test_libpq_fills_what_the_url_leaves_out() -> None:
    loc = store_location("postgresql:///markets")  # host, user, password from PG* / .pgpass / defaults
    assert isinstance(loc, PgDsn) and loc.password is None and loc.display == "postgresql:///markets"


@pytest.mark.parametrize(("value", "says"), [
    ("postgresql://u:pw-secret@host:99999/db", "not a valid PostgreSQL URL"),
    ("postgresql://u:pw-secret@host:5432/db#x", "#fragment"),
    ("postgresql://u:pw-secret@host/my db", "spaces or control characters"),
    ("mysql://u:pw-secret@host/db", "unknown store scheme mysql://"),
])
def test_a_malformed_store_url_is_one_line_without_the_password(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        store_location(value)
    text = str(err.value)
    assert says in text and "pw-secret" not in text and "\n" not in text


# -- against a real server -----------------------------------------------------------------------

def test_connects_with_the_password_in_the_url(pg_dsn: str) -> None:
    from cgpreset.store.pg_connect import connect

    with connect(parse_dsn(pg_dsn)) as db:
        assert db.execute("SELECT current_setting('application_name')").fetchone() == ("cgpreset",)


def test_pgpassword_and_pgpass_work_as_libpq_users_expect(pg_dsn: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from cgpreset.store.pg_connect import connect

    bare = parse_dsn(_without_password(pg_dsn))
    monkeypatch.setenv("PGPASSWORD", _password(pg_dsn))
    with connect(bare) as db:
        assert db.execute("SELECT 1").fetchone() == (1,)
    monkeypatch.delenv("PGPASSWORD")
    host, port = re.search(r"@([^:/]+):(\d+)/", pg_dsn).groups()  # type: ignore[union-attr]
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{host}:{port}:*:cgpreset:{_password(pg_dsn)}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("PGAPPNAME", "grafana-loader")
    with connect(bare) as db:
        assert db.execute("SELECT current_setting('application_name')").fetchone() == ("grafana-loader",)


def test_a_refused_login_is_one_line_naming_the_store_without_the_password(pg_dsn: str) -> None:
    from cgpreset.store.pg_connect import connect

    wrong = pg_dsn.replace(_password(pg_dsn), "not-the-password-123")
    with pytest.raises(ConfigError) as err:
        connect(parse_dsn(wrong))
    text = str(err.value)
    assert text.startswith("postgresql://cgpreset:<redacted>@") and "login refused" in text
    assert "not-the-password-123" not in text and _password(pg_dsn) not in text and "\n" not in text


def test_a_missing_database_and_an_unreachable_server_say_so(pg_server: str) -> None:
    """A missing database needs someone to act (exit 2); a server not reachable now may be restarting
    (exit 75: retry later)."""
    from cgpreset.store.pg_connect import connect
    from tests.pg_server import with_database

    with pytest.raises(ConfigError, match=r"database does not exist \(database \"no_such_db\" does not exist\)") as err:
        connect(parse_dsn(with_database(pg_server, "no_such_db")))
    assert err.value.exit_code == ExitCode.USAGE
    closed = re.sub(r"@([^:/]+):\d+/", f"@127.0.0.1:{_free_port()}/", pg_server)
    with pytest.raises(StoreUnavailableError, match="server unreachable") as down:
        connect(parse_dsn(closed))
    assert down.value.exit_code == ExitCode.TEMPFAIL == 75
    assert _password(pg_server) not in str(down.value) and "\n" not in str(down.value)
